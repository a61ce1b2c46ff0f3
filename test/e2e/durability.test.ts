/**
 * What survives a failure of the machinery under the services, with real node processes on a
 * private NATS (JetStream on, its own store) and a private Redis, both killed and restarted:
 * - the orders node killed while profiles change, then started: every change is applied exactly
 *   once, the one it was handling when it died included, and the same events delivered again are
 *   applied no more;
 * - Redis killed: listings are still served, from PostgreSQL, and caching resumes when it is back;
 * - NATS restarted mid-run: every node reconnects, durable events flow again, and no order the
 *   gateway acknowledged is lost.
 */
import fs from "node:fs";
import crypto from "node:crypto";
import Redis from "ioredis";
import { connect } from "nats";
import { Client } from "pg";
import { CLUSTER_ADMIN, NodeCluster } from "../support/cluster";
import { http } from "../support/http";
import { privateNats, privateRedis, type PrivateServer } from "../support/servers";
import { eventually } from "../support/wait";
import {
    expectAcknowledgedOrdersKept,
    expectStockConserved,
    openShop,
    printSummary,
    underLoad,
    waitUntilSettled,
    type Shop,
} from "../support/shop";

jest.setTimeout(120_000);

let nats: PrivateServer & { storeDir: string };
let redis: PrivateServer;
let cluster: NodeCluster;
let shop: Shop;

beforeAll(async () => {
    [nats, redis] = await Promise.all([privateNats(), privateRedis()]);
    await Promise.all([nats.start(), redis.start()]);
    cluster = new NodeCluster({ transporter: nats.url, cacher: redis.url });
    await cluster.create();
    await cluster.startShop();
    shop = await openShop(cluster.base, CLUSTER_ADMIN, { products: 3, shoppers: 3 });
});

afterAll(async () => {
    await cluster?.destroy();
    await Promise.all([nats?.kill(), redis?.kill()]);
    if (nats) fs.rmSync(nats.storeDir, { recursive: true, force: true });
});

const count = async (sql: string, params: unknown[] = []) =>
    (await cluster.pg.query(sql, params)).rows[0].n as number;

/** Profile events of one user the orders service has consumed. */
const consumedProfileEvents = (userId: string) =>
    cluster.pg.query(
        `SELECT p.event_id FROM orders.processed_events p
         JOIN users.outbox o ON o.id = p.event_id WHERE o.payload->>'userId' = $1`,
        [userId],
    );

/** True once the orders group has acknowledged everything its profile stream holds. */
async function profileStreamConsumed(): Promise<boolean> {
    const connection = await connect({ servers: new URL(nats.url).host });
    try {
        const manager = await connection.jetstreamManager();
        const stream = `${cluster.namespace}_user_profileUpdated`;
        const [info, consumer] = await Promise.all([
            manager.streams.info(stream),
            manager.consumers.info(stream, "orders"),
        ]);
        return (
            consumer.ack_floor.stream_seq === info.state.last_seq &&
            consumer.num_ack_pending === 0 &&
            consumer.num_pending === 0
        );
    } finally {
        await connection.close();
    }
}

it("applies every profile change made around an orders node's death exactly once, and a redelivery not again", async () => {
    const email = `durable-${crypto.randomUUID()}@example.com`;
    const password = "durable passphrase";
    const user = await http(cluster.base, "POST", "/api/auth/register", {
        body: { email, password, name: "Before" },
    });
    const token = (
        await http(cluster.base, "POST", "/api/auth/login", { body: { email, password } })
    ).body.accessToken as string;
    const order = await http(cluster.base, "POST", "/api/orders", {
        token,
        body: { items: [{ productId: shop.productIds[0], quantity: 1 }] },
    });
    expect(order.status).toBe(201);
    const rename = (name: string) =>
        http(cluster.base, "PATCH", "/api/users/me", { token, body: { name } });

    // The first change reaches the orders node, whose handler waits on a lock, unacknowledged,
    // when the node is killed: JetStream must deliver it again, to the restarted node.
    const lock = new Client({ connectionString: cluster.db.url });
    await lock.connect();
    try {
        await lock.query("BEGIN");
        await lock.query("LOCK TABLE orders.orders IN ACCESS EXCLUSIVE MODE");
        expect((await rename("Change 1")).status).toBe(200);
        // Read with another connection: inside the lock's transaction pg_stat_activity is frozen.
        await eventually(
            async () =>
                (await count(
                    `SELECT count(*)::int AS n FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'`,
                )) > 0,
        );
        await cluster.node("orders").stop("SIGKILL");
    } finally {
        await lock.query("ROLLBACK").catch(() => undefined);
        await lock.end();
    }
    for (const name of ["Change 2", "Change 3", "Change 4", "Change 5"]) {
        expect((await rename(name)).status).toBe(200);
    }
    // Out of the users outbox and held by JetStream, not by any orders node.
    await eventually(
        async () =>
            (await count("SELECT count(*)::int AS n FROM users.outbox WHERE sent_at IS NULL")) ===
            0,
    );
    await cluster.start("orders");

    const events = (
        await cluster.pg.query(
            "SELECT id FROM users.outbox WHERE payload->>'userId' = $1 ORDER BY created_at",
            [user.body.id],
        )
    ).rows.map(row => row.id as string);
    expect(events).toHaveLength(5);
    await eventually(async () => (await consumedProfileEvents(user.body.id)).rows.length === 5);
    const consumed = (await consumedProfileEvents(user.body.id)).rows.map(row => row.event_id);
    expect(consumed.sort()).toEqual([...events].sort());
    const before = await cluster.pg.query(
        "SELECT shipping->>'name' AS name, updated_at FROM orders.orders WHERE id = $1",
        [order.body.id],
    );
    expect(before.rows[0].name).toBe("Change 5");

    // The relay sends them all once more, as after a crash between sending and marking them.
    await cluster.pg.query("UPDATE users.outbox SET sent_at = NULL WHERE payload->>'userId' = $1", [
        user.body.id,
    ]);
    await eventually(
        async () =>
            (await count("SELECT count(*)::int AS n FROM users.outbox WHERE sent_at IS NULL")) ===
            0,
    );
    await eventually(profileStreamConsumed);
    expect((await consumedProfileEvents(user.body.id)).rows).toHaveLength(5);
    const after = await cluster.pg.query(
        "SELECT shipping->>'name' AS name, updated_at FROM orders.orders WHERE id = $1",
        [order.body.id],
    );
    expect(after.rows[0]).toEqual(before.rows[0]);
});

it("serves listings from PostgreSQL while Redis is dead, and caches again once it is back", async () => {
    const keys = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const cachedKeys = async () => {
        await keys.connect().catch(() => undefined);
        return (await keys.keys(`${cluster.namespace}-cache*`)).length;
    };
    const listing = () =>
        http(cluster.base, "GET", `/api/products?category=${shop.category}&sort=price`);
    try {
        expect((await listing()).status).toBe(200);
        await eventually(async () => (await cachedKeys()) > 0);

        keys.disconnect();
        await redis.kill("SIGKILL");
        for (let i = 0; i < 5; i++) {
            const served = await listing();
            expect(served.status).toBe(200);
            expect(served.body.rows.map((p: { id: string }) => p.id)).toEqual(shop.productIds);
        }
        const updated = await http(cluster.base, "PATCH", `/api/products/${shop.productIds[0]}`, {
            token: shop.adminToken,
            body: { price: 99 },
        });
        expect(updated.status).toBe(200);
        expect((await listing()).body.rows[0]).toMatchObject({ id: shop.productIds[0], price: 99 });

        await redis.start();
        await eventually(async () => (await listing()).status === 200 && (await cachedKeys()) > 0);
        expect((await listing()).body.rows[0]).toMatchObject({ id: shop.productIds[0], price: 99 });
    } finally {
        keys.disconnect();
    }
});

it("reconnects every node after a NATS restart mid-run, and loses no acknowledged order", async () => {
    const outcomes = await underLoad(
        cluster.base,
        shop,
        { durationMs: 8000, readers: 2, writers: 3 },
        async () => {
            await new Promise(resolve => setTimeout(resolve, 2000));
            await nats.kill("SIGKILL");
            // Cut off from NATS, a node is not ready (its probe says why), whatever Moleculer's
            // own flag says.
            await eventually(async () => {
                const { status, checks } = await cluster.readiness("orders");
                return status === 503 && checks.transporter === "disconnected";
            }, 10_000);
            await nats.start();
        },
    );
    printSummary("NATS restarted", outcomes);
    // While NATS is down the gateway reaches nobody: 503, never a 500 or no answer at all.
    expect(outcomes.filter(o => o.kind === "read" && ![200, 503].includes(o.status))).toEqual([]);
    expect(outcomes.filter(o => o.kind === "write" && ![201, 202, 503].includes(o.status))).toEqual(
        [],
    );
    expect(outcomes.filter(o => o.status === 201).length).toBeGreaterThan(0);

    // Everyone is back: ready again, the gateway routes to every service, orders are confirmed
    // at once, and the outboxes drain through JetStream again.
    for (const name of ["users", "products", "orders"]) {
        await eventually(async () => (await cluster.readiness(name)).status === 200);
    }
    await cluster.waitUntilRouted();
    await eventually(async () => {
        const placed = await http(cluster.base, "POST", "/api/orders", {
            token: shop.shopperTokens[0],
            body: { items: [{ productId: shop.productIds[1], quantity: 1 }] },
        });
        return placed.status === 201;
    });
    await waitUntilSettled(cluster.pg, 15_000);
    await eventually(
        async () =>
            (await count(
                `SELECT ((SELECT count(*) FROM orders.outbox WHERE sent_at IS NULL)
                      + (SELECT count(*) FROM products.outbox WHERE sent_at IS NULL)
                      + (SELECT count(*) FROM users.outbox WHERE sent_at IS NULL))::int AS n`,
            )) === 0,
    );
    await expectAcknowledgedOrdersKept(cluster.pg, outcomes);
    await expectStockConserved(cluster.pg, shop);
});
