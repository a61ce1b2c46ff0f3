/**
 * The cluster a benchmark run measures, started from scratch and removed afterwards: a fresh
 * database on the machine's PostgreSQL, a random namespace on its NATS (JetStream streams
 * included) and Redis, and one process per node (api, users, two products, orders), as an
 * operator would run them in production.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Redis from "ioredis";
import { connect } from "nats";
import { Client } from "pg";
import { AgoraClient } from "./client";
import {
    AGORA_ENTRY,
    benchApiWorkers,
    benchNodeFlags,
    freePort,
    freePorts,
    startProcess,
    waitUntilReady,
    type BenchProcess,
} from "./processes";

export const NATS_URL = process.env.BENCH_NATS_URL || "nats://127.0.0.1:4222";
export const REDIS_URL = process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379";
const PG_ADMIN_URL =
    process.env.BENCH_PG_ADMIN_URL || "postgres://postgres@127.0.0.1:5432/postgres";

export const ADMIN = { email: "bench-admin@agora.test", password: "a long benchmark passphrase" };

/** Every setting a node reads: none may leak in from the shell that runs the benchmark. */
const AGORA_VARIABLES = [
    "SERVICES",
    "TRANSPORTER",
    "CACHER",
    "DATABASE_URL",
    "NAMESPACE",
    "NODE_ID",
    "NODE_ENV",
    "LOGLEVEL",
    "PORT",
    "METRICS_PORT",
    "HEALTH_PORT",
    "API_WORKERS",
    "AGORA_WORKER_INDEX",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "JWT_PRIVATE_KEY",
    "JWT_PRIVATE_KEY_FILE",
    "JWT_PUBLIC_KEY",
    "JWT_PUBLIC_KEY_FILE",
    "DATA_DIR",
    "EMBEDDED_DB_PORT",
    "BCRYPT_ROUNDS",
    "REQUEST_TIMEOUT",
    "SETTLE_INTERVAL_MS",
];

/** The benchmark's own environment without any Agora setting. */
export function cleanEnvironment(): NodeJS.ProcessEnv {
    const env = { ...process.env };
    for (const name of AGORA_VARIABLES) delete env[name];
    delete env.NODE_OPTIONS;
    return env;
}

export interface ClusterNode {
    /** Node id, e.g. `products-2`. */
    id: string;
    process: BenchProcess;
    /** Where its readiness is probed. */
    readyUrl: string;
}

export interface ClusterOptions {
    /** Node ids to run with `--cpu-prof`, each writing under `<profileDir>/<id>`. */
    profiled?: string[];
    profileDir?: string;
}

export class BenchCluster {
    readonly namespace = `agora-bench-${crypto.randomBytes(4).toString("hex")}`;
    readonly databaseName = `agora_bench_${crypto.randomBytes(4).toString("hex")}`;
    readonly nodes: ClusterNode[] = [];
    base = "";
    private dataDir = "";
    private databaseCreated = false;

    constructor(private readonly options: ClusterOptions = {}) {}

    get api(): AgoraClient {
        return new AgoraClient(this.base);
    }

    node(id: string): ClusterNode {
        const node = this.nodes.find(candidate => candidate.id === id);
        if (!node) throw new Error(`No node ${id} in the cluster`);
        return node;
    }

    async start(log: (line: string) => void): Promise<void> {
        await withAdmin(client => client.query(`CREATE DATABASE "${this.databaseName}"`));
        this.databaseCreated = true;
        this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-bench-"));
        const databaseUrl = new URL(PG_ADMIN_URL);
        databaseUrl.pathname = `/${this.databaseName}`;
        const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", {
            modulusLength: 2048,
            publicKeyEncoding: { type: "spki", format: "pem" },
            privateKeyEncoding: { type: "pkcs8", format: "pem" },
        });
        const shared: NodeJS.ProcessEnv = {
            ...cleanEnvironment(),
            NODE_ENV: "production",
            LOGLEVEL: "warn",
            TRANSPORTER: NATS_URL,
            CACHER: REDIS_URL,
            DATABASE_URL: databaseUrl.toString(),
            NAMESPACE: this.namespace,
            DATA_DIR: this.dataDir,
            ADMIN_EMAIL: ADMIN.email,
            ADMIN_PASSWORD: ADMIN.password,
            JWT_PRIVATE_KEY: privateKey,
            JWT_PUBLIC_KEY: publicKey,
            // The load tool is one client address: production's limits (10 registrations per IP
            // per window) would refuse the seeding and most of the load. The limiter still runs,
            // in Redis, on every request, so its cost is in the figures.
            RATE_LIMIT_PER_IP: "1000000000",
            RATE_LIMIT_PER_USER: "1000000000",
            RATE_LIMIT_AUTH_PER_IP: "1000000000",
            RATE_LIMIT_AUTH_PER_EMAIL: "1000000000",
        };

        const started = Date.now();
        // Service nodes first, together (migrations take an advisory lock); the gateway last, so
        // that it learns every service from the first INFO packets it gets.
        const serviceNodes = ["users", "products-1", "products-2", "orders"];
        for (const id of serviceNodes) {
            const healthPort = await freePort();
            const env = {
                ...shared,
                SERVICES: id.replace(/-\d+$/, ""),
                NODE_ID: id,
                HEALTH_PORT: String(healthPort),
                METRICS_PORT: String(await freePort()),
            };
            this.nodes.push({
                id,
                process: startProcess(id, AGORA_ENTRY, env, this.nodeOptions(id)),
                readyUrl: `http://127.0.0.1:${healthPort}/health/ready`,
            });
        }
        await Promise.all(this.nodes.map(node => waitUntilReady(node.process, node.readyUrl)));

        const port = await freePort();
        this.base = `http://127.0.0.1:${port}`;
        const api = startProcess(
            "api",
            AGORA_ENTRY,
            {
                ...shared,
                SERVICES: "api",
                NODE_ID: "api",
                PORT: String(port),
                METRICS_PORT: String(await freePorts(benchApiWorkers())),
                API_WORKERS: String(benchApiWorkers()),
            },
            this.nodeOptions("api"),
        );
        this.nodes.push({ id: "api", process: api, readyUrl: `${this.base}/health/ready` });
        await waitUntilReady(api, `${this.base}/health/ready`);
        await this.waitForServices();
        log(`cluster of ${this.nodes.length} nodes ready in ${Date.now() - started} ms`);
    }

    /** Every node's Node flags (benchNodeFlags), and the profiler's. */
    private nodeOptions(id: string): string[] {
        const flags = benchNodeFlags();
        if (!this.options.profiled?.includes(id)) return flags;
        return [
            ...flags,
            "--cpu-prof",
            `--cpu-prof-dir=${path.join(this.options.profileDir!, id)}`,
        ];
    }

    /** The gateway answers for every service: it has seen each node's INFO packet. */
    private async waitForServices(): Promise<void> {
        const deadline = Date.now() + 30_000;
        for (;;) {
            const login = await this.api.request<{ accessToken?: string }>(
                "POST",
                "/api/auth/login",
                { body: ADMIN },
            );
            const token = login.body?.accessToken;
            const products = await this.api.request("GET", "/api/products?pageSize=1");
            const orders = token
                ? await this.api.request("GET", "/api/orders?pageSize=1", { token })
                : null;
            if (login.status === 200 && products.status === 200 && orders?.status === 200) return;
            if (Date.now() > deadline) {
                const answers = [login, products, orders]
                    .map(answer => `${answer?.status} ${answer?.text.slice(0, 300)}`)
                    .join("\n");
                const logs = this.nodes.map(node => `--- ${node.id}\n${node.process.logs()}`);
                throw new Error(
                    `The gateway does not reach every service (login, products, orders):\n${answers}\n${logs.join("\n")}`,
                );
            }
            await new Promise(resolve => setTimeout(resolve, 250));
        }
    }

    /** Stops every node, drops the database and the namespace's Redis keys; safe to call twice. */
    async stop(): Promise<void> {
        await Promise.all(this.nodes.map(node => node.process.stop()));
        if (this.databaseCreated) {
            this.databaseCreated = false;
            await withAdmin(client =>
                client.query(`DROP DATABASE IF EXISTS "${this.databaseName}" WITH (FORCE)`),
            );
        }
        await Promise.all([
            cleanRedisNamespace(this.namespace),
            cleanJetStreamNamespace(this.namespace),
        ]);
        if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
    }
}

async function withAdmin<T>(work: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    try {
        return await work(client);
    } finally {
        await client.end();
    }
}

/**
 * The durable-event streams the nodes made (`<namespace>_<channel>`). Each one reserves its
 * `max_bytes` of JetStream storage, so streams left behind soon make the shared NATS refuse new
 * ones ("insufficient storage resources") for every later run.
 */
async function cleanJetStreamNamespace(namespace: string): Promise<void> {
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

async function cleanRedisNamespace(namespace: string): Promise<void> {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
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
