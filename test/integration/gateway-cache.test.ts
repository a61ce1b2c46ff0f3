/**
 * The gateway reads the shared stamped cache itself (lib/product-cache.ts): over NATS and the real
 * Redis, a gateway node answers a cached product or listing without a call to a products node
 * (unless the call is aimed at one), a write answered by the products node is seen by the very
 * next read through the gateway, and a slow reader that read the old row before a write can't leave
 * it in the cache.
 */
import type { ServiceBroker } from "moleculer";
import { createTestBroker, gatewayUrl } from "../support/broker";
import { countProductReads } from "../support/product-reads";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { graphql, http } from "../support/http";
import { adminCaller } from "../support/fixtures";
import { stampedCache } from "../../lib/stamped-cache";
import type { Product } from "../../types";

jest.setTimeout(60_000);

let db: TestDatabase;
let products: ServiceBroker;
let gateway: ServiceBroker;
let writer: ServiceBroker;
let base: string;
const namespace = testNamespace();

/** Product reads that reached the products node. */
const served: string[] = [];
const CountReads = countProductReads(served);

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    const cluster = { namespace, transporter: NATS_URL, cacher: REDIS_URL };
    products = createTestBroker({
        ...cluster,
        nodeID: "products-1",
        services: ["products"],
        middlewares: [CountReads],
    });
    gateway = createTestBroker({ ...cluster, nodeID: "api", services: ["api"] });
    writer = createTestBroker({ ...cluster, nodeID: "writer" });
    await Promise.all([products.start(), gateway.start(), writer.start()]);
    await Promise.all([
        gateway.waitForServices(["products"]),
        writer.waitForServices(["products"]),
    ]);
    base = gatewayUrl(gateway);
});

afterAll(async () => {
    await Promise.all([gateway.stop(), writer.stop(), products.stop()]);
    await db.drop();
    await cleanNamespace(namespace);
});

const create = (name: string, category: string, price = 100) =>
    writer.call<Product, object>(
        "products.create",
        { name, price, stock: 5, category },
        { meta: { user: adminCaller } },
    );
const update = (id: string, price: number) =>
    writer.call<Product, object>("products.update", { id, price }, { meta: { user: adminCaller } });

it("answers a cached product and listing at the gateway, without a products node", async () => {
    const product = await create("Gateway", "gw");
    const path = `/api/products?category=gw&page=1&pageSize=20`;
    expect((await http(base, "GET", path)).body.rows[0].id).toBe(product.id);
    expect((await http(base, "GET", `/api/products/${product.id}`)).body.price).toBe(100);
    served.length = 0;
    const hit = await http(base, "GET", path);
    // A REST hit is the entry's JSON text, sent as it is, with the usual type.
    expect(hit.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(hit.body).toMatchObject({ page: 1, pageSize: 20, total: 1 });
    expect(hit.body.rows[0].price).toBe(100);
    expect((await http(base, "GET", `/api/products/${product.id}`)).body.price).toBe(100);
    // The same entries through GraphQL.
    const query = `{ products(category: "gw", page: 1, pageSize: 20) { rows { id price } }
        product(id: "${product.id}") { price } }`;
    const answer = await graphql(base, query);
    expect(answer.body.data).toEqual({
        products: { rows: [{ id: product.id, price: 100 }] },
        product: { price: 100 },
    });
    expect(served).toEqual([]);
    // A call aimed at one node goes there, cached or not.
    const aimed = await gateway.call<Product, object>(
        "products.get",
        { id: product.id },
        { nodeID: "products-1" },
    );
    expect(aimed.price).toBe(100);
    expect(served).toEqual(["products.get"]);
    // Bad parameters are not looked up: the products node refuses them, as before.
    expect((await http(base, "GET", `/api/products/not-a-uuid`)).status).toBe(422);
});

it("shows a write answered on the products node to the next read through the gateway", async () => {
    const product = await create("Fresh", "fresh");
    const path = `/api/products?category=fresh`;
    for (let price = 101; price < 106; price++) {
        // Warm both entries, then write.
        await http(base, "GET", path);
        await http(base, "GET", `/api/products/${product.id}`);
        await update(product.id, price);
        expect((await http(base, "GET", path)).body.rows[0].price).toBe(price);
        expect((await http(base, "GET", `/api/products/${product.id}`)).body.price).toBe(price);
    }
});

it("never keeps the old row a slow reader read before a write (the store is guarded)", async () => {
    const product = await create("Slow", "slow", 300);
    const cache = stampedCache(products);
    let held!: () => void;
    const reached = new Promise<void>(resolve => {
        cache.beforeStore = (group, key) => {
            if (group !== "products.get" || key !== product.id) return Promise.resolve();
            cache.beforeStore = null;
            resolve();
            // The reader has read the row (price 300) and waits before storing it.
            return new Promise<void>(release => (held = release));
        };
    });
    const slowRead = http(base, "GET", `/api/products/${product.id}`);
    await reached;
    await update(product.id, 350);
    held();
    expect((await slowRead).body.price).toBe(300);
    // The read that starts after the write answered sees the new price, now and from the cache.
    expect((await http(base, "GET", `/api/products/${product.id}`)).body.price).toBe(350);
    expect((await http(base, "GET", `/api/products/${product.id}`)).body.price).toBe(350);
});

it("answers a read with its own status and headers, never those of a call before it", async () => {
    // The create's answer carries `$statusCode: 201` in its meta; the read that follows misses
    // (the create gave the groups new stamps) and is routed after the cache lookup.
    const product = await gateway.call<Product, object>(
        "products.create",
        { name: "Own answer", price: 100, stock: 5, category: "own" },
        { meta: { user: adminCaller } },
    );
    const read = await http(base, "GET", `/api/products/${product.id}`);
    expect(read.status).toBe(200);
    expect(read.headers.get("location")).toBeNull();
    expect(read.body.id).toBe(product.id);
    const listed = await http(base, "GET", `/api/products?category=own`);
    expect(listed.status).toBe(200);
    expect(listed.body.rows.map((row: Product) => row.id)).toEqual([product.id]);
});
