/**
 * Redis killed or hung: listings are still served (from PostgreSQL), writes still answer and are
 * never hidden by an entry cached before the outage, and caching resumes when Redis is back.
 */
import type { ServiceBroker } from "moleculer";
import { createTestBroker } from "../support/broker";
import { createTestDatabase, testNamespace, type TestDatabase } from "../support/database";
import { adminCaller } from "../support/fixtures";
import { privateRedis, type PrivateServer } from "../support/servers";
import type { Page, Product } from "../../types";

jest.setTimeout(60_000);

let db: TestDatabase;
let redis: PrivateServer;
let broker: ServiceBroker;

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    redis = await privateRedis();
    await redis.start();
    broker = createTestBroker({
        namespace: testNamespace(),
        cacher: redis.url,
        services: ["products"],
    });
    await broker.start();
});

afterAll(async () => {
    await broker.stop();
    await redis.kill();
    await db.drop();
});

const list = () => broker.call<Page<Product>, object>("products.list", { category: "outage" });
const cachedKeys = async () =>
    (
        await (
            broker.cacher as unknown as { getCacheKeys(): Promise<{ key: string }[]> }
        ).getCacheKeys()
    ).length;

async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
        if (Date.now() > deadline) throw new Error("condition not met in time");
        await new Promise(resolve => setTimeout(resolve, 200));
    }
}

it("serves listings from PostgreSQL while Redis is dead, and caches again once it is back", async () => {
    const product = await broker.call<Product, object>(
        "products.create",
        { name: "Resilient", price: 100, stock: 5, category: "outage" },
        { meta: { user: adminCaller } },
    );
    expect((await list()).rows[0].price).toBe(100);
    expect(await cachedKeys()).toBeGreaterThan(0);

    await redis.kill("SIGKILL");
    for (let i = 0; i < 5; i++) expect((await list()).rows[0].price).toBe(100);
    await broker.call(
        "products.update",
        { id: product.id, price: 150 },
        { meta: { user: adminCaller } },
    );
    expect((await list()).rows[0].price).toBe(150);

    await redis.start();
    await eventually(async () => {
        await list();
        return (await cachedKeys()) > 0;
    });
    expect((await list()).rows[0].price).toBe(150);
});

it("never serves an entry cached before a hang once a change was made during it", async () => {
    const product = await broker.call<Product, object>(
        "products.create",
        { name: "Paused", price: 200, stock: 5, category: "pause" },
        { meta: { user: adminCaller } },
    );
    const listPaused = () =>
        broker.call<Page<Product>, object>("products.list", { category: "pause" });
    expect((await listPaused()).rows[0].price).toBe(200);

    // A hung Redis keeps its data: the entry above is still in it when Redis comes back.
    redis.pause();
    try {
        await broker.call(
            "products.update",
            { id: product.id, price: 250 },
            { meta: { user: adminCaller } },
        );
        expect((await listPaused()).rows[0].price).toBe(250);
    } finally {
        redis.resume();
    }
    for (let i = 0; i < 10; i++) {
        expect((await listPaused()).rows[0].price).toBe(250);
        await new Promise(resolve => setTimeout(resolve, 200));
    }
    await eventually(async () => {
        await listPaused();
        return (await cachedKeys()) > 0;
    });
    expect((await listPaused()).rows[0].price).toBe(250);
});
