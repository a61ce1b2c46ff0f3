/**
 * GraphQL resolves `Order.user` and `OrderItem.product` from their own services, batched: one
 * call per service for a whole page of orders, not one per order or item (no N+1).
 */
import type { Middleware, ServiceBroker } from "moleculer";
import { createTestBroker, gatewayUrl } from "../support/broker";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { graphql, http } from "../support/http";
import { readConfig } from "../../lib/config";

const calls = new Map<string, number>();
const CallCounter = {
    name: "CallCounter",
    localAction(handler: (ctx: unknown) => unknown, action: { name: string }) {
        return (ctx: unknown) => {
            calls.set(action.name, (calls.get(action.name) ?? 0) + 1);
            return handler(ctx);
        };
    },
} as unknown as Middleware;

let db: TestDatabase;
const namespace = testNamespace();
const brokers: ServiceBroker[] = [];
let base: string;

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    const cluster = { namespace, transporter: NATS_URL, cacher: REDIS_URL };
    for (const name of ["users", "products", "orders"] as const) {
        brokers.push(
            createTestBroker({
                ...cluster,
                nodeID: name,
                services: [name],
                middlewares: [CallCounter],
            }),
        );
    }
    const api = createTestBroker({ ...cluster, nodeID: "api", services: ["api"] });
    brokers.push(api);
    await Promise.all(brokers.map(broker => broker.start()));
    await api.waitForServices(["users", "products", "orders"]);
    base = gatewayUrl(api);
});

afterAll(async () => {
    await Promise.all(brokers.map(broker => broker.stop()));
    await db.drop();
    await cleanNamespace(namespace);
});

async function signUp(name: string): Promise<string> {
    const email = `${name}-${crypto.randomUUID()}@example.com`;
    const password = "batching passphrase";
    await http(base, "POST", "/api/auth/register", { body: { email, password, name } });
    return (await http(base, "POST", "/api/auth/login", { body: { email, password } })).body
        .accessToken;
}

it("resolves users and products of a page of orders with one call each", async () => {
    const admin = (
        await http(base, "POST", "/api/auth/login", {
            body: { email: readConfig().adminEmail, password: readConfig().adminPassword },
        })
    ).body.accessToken;
    const products = [];
    for (const name of ["A", "B", "C"]) {
        const created = await http(base, "POST", "/api/products", {
            token: admin,
            body: { name, price: 100, stock: 100 },
        });
        products.push(created.body.id as string);
    }
    for (const buyer of ["ann", "ben", "cat"]) {
        const token = await signUp(buyer);
        for (let i = 0; i < 2; i++) {
            const placed = await http(base, "POST", "/api/orders", {
                token,
                body: { items: products.map(productId => ({ productId, quantity: 1 })) },
            });
            expect(placed.status).toBe(201);
        }
    }

    calls.clear();
    const result = await graphql(
        base,
        "{ orders(pageSize: 10) { total rows { user { name } items { product { name } } } } }",
        {},
        admin,
    );
    expect(result.body.errors).toBeUndefined();
    const rows = result.body.data.orders.rows as {
        user: { name: string };
        items: { product: { name: string } }[];
    }[];
    expect(rows).toHaveLength(6);
    expect(new Set(rows.map(row => row.user.name))).toEqual(new Set(["ann", "ben", "cat"]));
    expect(rows.every(row => row.items.map(item => item.product.name).join() === "A,B,C")).toBe(
        true,
    );
    expect(calls.get("orders.list")).toBe(1);
    expect(calls.get("users.resolve")).toBe(1);
    expect(calls.get("products.resolve")).toBe(1);
});
