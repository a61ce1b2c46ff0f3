/**
 * products on two nodes over NATS with the shared Redis cacher: listings are served from the
 * cache, and a write answered by one node is never followed by a stale read from the other.
 */
import type { ServiceBroker } from "moleculer";
import { createTestBroker } from "../support/broker";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import type { AuthUser, Page, Product } from "../../types";

const admin: AuthUser = {
    id: "00000000-0000-4000-8000-000000000001",
    email: "a@x.io",
    role: "admin",
};

let db: TestDatabase;
const brokers: ServiceBroker[] = [];
let caller: ServiceBroker;

const namespace = testNamespace();

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    const cluster = { namespace, transporter: NATS_URL, cacher: REDIS_URL };
    brokers.push(createTestBroker({ ...cluster, nodeID: "products-a", services: ["products"] }));
    brokers.push(createTestBroker({ ...cluster, nodeID: "products-b", services: ["products"] }));
    caller = createTestBroker({ ...cluster, nodeID: "caller" });
    brokers.push(caller);
    await Promise.all(brokers.map(broker => broker.start()));
    await caller.waitForServices(["products"]);
});

afterAll(async () => {
    await Promise.all(brokers.map(broker => broker.stop()));
    await db.drop();
    await cleanNamespace(namespace);
});

const list = (params: object = {}) => caller.call<Page<Product>, object>("products.list", params);

it("spreads calls over both products nodes", async () => {
    const answeredBy = new Set<string>();
    for (let i = 0; i < 10; i++) {
        // The call's context names the node the balancer sent it to.
        const call = caller.call("products.resolve", { id: [] }) as Promise<unknown> & {
            ctx: { nodeID: string };
        };
        await call;
        answeredBy.add(call.ctx.nodeID);
    }
    expect([...answeredBy].sort()).toEqual(["products-a", "products-b"]);
});

it("serves a listing from the shared Redis cache", async () => {
    const created = await caller.call<Product, object>(
        "products.create",
        { name: "Cached", price: 100, stock: 3, category: "cache" },
        { meta: { user: admin } },
    );
    const first = await list({ category: "cache" });
    expect(first.rows.map(p => p.id)).toEqual([created.id]);
    const cacher = brokers[0].cacher!;
    const keys = await (
        cacher as unknown as { getCacheKeys(): Promise<{ key: string }[]> }
    ).getCacheKeys();
    expect(keys.some(k => k.key.includes("products.list"))).toBe(true);
});

it("never answers a stale listing after a write on either node has answered", async () => {
    const product = await caller.call<Product, object>(
        "products.create",
        { name: "Fresh", price: 500, stock: 20, category: "fresh" },
        { meta: { user: admin } },
    );
    for (let round = 0; round < 10; round++) {
        // Warm the cache on whichever node answers, then write through a pinned node.
        await list({ category: "fresh" });
        await caller.call("products.get", { id: product.id });
        const writer = round % 2 ? "products-a" : "products-b";
        await caller.call(
            "products.reserve",
            {
                orderId: `40000000-0000-4000-8000-${String(round).padStart(12, "0")}`,
                items: [{ productId: product.id, quantity: 1 }],
            },
            { nodeID: writer },
        );
        const expected = 20 - round - 1;
        expect((await list({ category: "fresh" })).rows[0].stock).toBe(expected);
        expect((await caller.call<Product, object>("products.get", { id: product.id })).stock).toBe(
            expected,
        );
    }
});

it("carries typed errors across NATS", async () => {
    await expect(
        caller.call("products.get", { id: "00000000-0000-4000-8000-00000000ffff" }),
    ).rejects.toMatchObject({ code: 404, type: "NOT_FOUND", name: "NotFoundError" });
    await expect(
        caller.call("products.reserve", {
            orderId: "50000000-0000-4000-8000-000000000000",
            items: [{ productId: "00000000-0000-4000-8000-00000000ffff", quantity: 1 }],
        }),
    ).rejects.toMatchObject({
        code: 422,
        type: "VALIDATION_ERROR",
        data: [{ field: "items[0].productId", type: "notFound" }],
    });
});
