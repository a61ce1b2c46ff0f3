/**
 * Every test file gets its own PostgreSQL database on the machine's server, dropped afterwards,
 * so runs and files never see each other's data.
 */
import crypto from "node:crypto";
import Redis from "ioredis";
import { connect } from "nats";
import { Client } from "pg";

const ADMIN_URL = process.env.TEST_PG_ADMIN_URL || "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
    name: string;
    url: string;
    drop(): Promise<void>;
}

async function withAdmin<T>(work: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ connectionString: ADMIN_URL });
    await client.connect();
    try {
        return await work(client);
    } finally {
        await client.end();
    }
}

export async function createTestDatabase(): Promise<TestDatabase> {
    const name = `agora_test_${crypto.randomBytes(6).toString("hex")}`;
    await withAdmin(client => client.query(`CREATE DATABASE "${name}"`));
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    return {
        name,
        url: url.toString(),
        drop: () =>
            withAdmin(client =>
                client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
            ).then(() => undefined),
    };
}

/** A fresh namespace, so that brokers of parallel runs on the same NATS never meet. */
export function testNamespace(): string {
    return `agora-test-${crypto.randomBytes(5).toString("hex")}`;
}

export const NATS_URL = process.env.TEST_NATS_URL || "nats://127.0.0.1:4222";
export const REDIS_URL = process.env.TEST_REDIS_URL || "redis://127.0.0.1:6379";

/** Deletes what processes of a test namespace left in Redis (their cache keys). */
export async function cleanRedisNamespace(namespace: string): Promise<void> {
    const redis = new Redis(REDIS_URL, { lazyConnect: true });
    await redis.connect();
    try {
        const stream = redis.scanStream({ match: `${namespace}-*`, count: 500 });
        for await (const keys of stream) {
            if ((keys as string[]).length) await redis.del(...(keys as string[]));
        }
    } finally {
        redis.disconnect();
    }
}

/** Deletes the JetStream streams (and their consumers) of a test namespace's durable channels. */
export async function cleanNatsNamespace(namespace: string): Promise<void> {
    const connection = await connect({ servers: new URL(NATS_URL).host });
    try {
        const manager = await connection.jetstreamManager();
        for await (const stream of manager.streams.list()) {
            if (stream.config.name.startsWith(`${namespace}_`)) {
                await manager.streams.delete(stream.config.name);
            }
        }
    } finally {
        await connection.close();
    }
}

/** Everything a test namespace left in the shared NATS and Redis. */
export async function cleanNamespace(namespace: string): Promise<void> {
    await Promise.all([cleanNatsNamespace(namespace), cleanRedisNamespace(namespace)]);
}
