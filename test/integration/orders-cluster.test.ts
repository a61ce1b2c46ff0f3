/**
 * Orders in a cluster: users, products, two orders nodes, a gateway and a plain caller, each on its
 * own broker, over NATS with the shared Redis cacher and one PostgreSQL database. Placing, listing
 * and cancelling cross nodes; the settlers finish what the inventory could not answer in time.
 */
import crypto from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
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
import { rejectionOf } from "../support/errors";
import { adminCaller } from "../support/fixtures";
import type { ServiceName } from "../../lib/config";
import {
    OrderStatus,
    type AuthUser,
    type Order,
    type Page,
    type Product,
    type User,
} from "../../types";

// Settlers tick fast here, and (with REQUEST_TIMEOUT below) take PENDING orders after 2 s.
process.env.SETTLE_INTERVAL_MS = "200";

const admin = adminCaller;
const PASSWORD = "correct horse battery";

let db: TestDatabase;
let namespace: string;
const nodes = new Map<string, ServiceBroker>();
let caller: ServiceBroker;
let base: string;
let ada: AuthUser & { token: string };

function node(nodeID: string, services: ServiceName[], env: Record<string, string> = {}) {
    const broker = createTestBroker({
        nodeID,
        namespace,
        transporter: NATS_URL,
        cacher: REDIS_URL,
        services,
        env,
    });
    nodes.set(nodeID, broker);
    return broker;
}

// Orders nodes give the inventory 1 s before answering 202.
const ordersEnv = { REQUEST_TIMEOUT: "2000" };

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    namespace = testNamespace();
    node("users-1", ["users"]);
    node("products-1", ["products"]);
    node("orders-1", ["orders"], ordersEnv);
    node("orders-2", ["orders"], ordersEnv);
    node("api-1", ["api"]);
    caller = node("caller", []);
    await Promise.all([...nodes.values()].map(broker => broker.start()));
    await caller.waitForServices(["users", "products", "orders", "api"], 10_000);
    base = gatewayUrl(nodes.get("api-1")!);
    ada = await signUp("Ada");
}, 30_000);

afterAll(async () => {
    await Promise.all([...nodes.values()].map(broker => broker.stop()));
    await db.drop();
    await cleanNamespace(namespace);
});

async function signUp(name: string): Promise<AuthUser & { token: string }> {
    const email = `${name.toLowerCase()}-${crypto.randomUUID()}@x.io`;
    const user = await caller.call<User, object>("users.register", {
        email,
        password: PASSWORD,
        name,
        address: { line1: "1 Main St", city: "Springfield" },
    });
    const login = await http(base, "POST", "/api/auth/login", {
        body: { email, password: PASSWORD },
    });
    return { id: user.id, email, role: "user", token: login.body.accessToken };
}

function createProduct(stock: number, price = 1500): Promise<Product> {
    return caller.call(
        "products.create",
        { name: `Widget ${crypto.randomUUID().slice(0, 8)}`, price, stock },
        { meta: { user: admin } },
    );
}

async function stockOf(id: string): Promise<number> {
    const product = await caller.call<Product, object>("products.get", { id });
    return product.stock;
}

function as(user: AuthUser) {
    return { meta: { user } };
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error("condition not reached in time");
        await new Promise(resolve => setTimeout(resolve, 100));
    }
}

describe("across nodes", () => {
    it("places, lists, reads and cancels an order, with the cached stock following each step", async () => {
        const widget = await createProduct(10);
        expect(await stockOf(widget.id)).toBe(10); // now cached in Redis
        const order = await caller.call<Order, object>(
            "orders.place",
            { items: [{ productId: widget.id, quantity: 3 }] },
            as(ada),
        );
        expect(order).toMatchObject({ status: OrderStatus.Confirmed, total: 4500, userId: ada.id });
        expect(order.shipping).toMatchObject({ name: "Ada", address: { line1: "1 Main St" } });
        expect(await stockOf(widget.id)).toBe(7);

        // Both orders nodes answer the same (round robin spreads the calls).
        for (let i = 0; i < 4; i++) {
            await expect(caller.call("orders.get", { id: order.id }, as(ada))).resolves.toEqual(
                order,
            );
        }
        const mine = await caller.call<Page<Order>, object>("orders.list", {}, as(ada));
        expect(mine.rows.map(o => o.id)).toContain(order.id);

        const cancelled = await caller.call<Order, object>(
            "orders.cancel",
            { id: order.id },
            as(ada),
        );
        expect(cancelled.status).toBe(OrderStatus.Cancelled);
        expect(await stockOf(widget.id)).toBe(10);
    });

    it("sells exactly the stock to a burst spread over both orders nodes", async () => {
        const widget = await createProduct(20);
        const bob = await signUp("Bob");
        const results = await Promise.allSettled(
            Array.from({ length: 120 }, (_, i) =>
                caller.call<Order, object>(
                    "orders.place",
                    { items: [{ productId: widget.id, quantity: 1 }] },
                    as(i % 2 ? ada : bob),
                ),
            ),
        );
        const refused = results.filter(r => r.status === "rejected") as PromiseRejectedResult[];
        expect(new Set(refused.map(r => r.reason.type))).toEqual(new Set(["INSUFFICIENT_STOCK"]));
        // Orders that outlasted placement's wait (202 PENDING, on a loaded machine) are settled
        // by the settler timers; then exactly the 20 in stock are sold.
        const kept = async () => {
            const orders: Order[] = [];
            for (let page = 1; ; page++) {
                const result = await caller.call<Page<Order>, object>(
                    "orders.list",
                    { page, pageSize: 100 },
                    as(admin),
                );
                orders.push(...result.rows.filter(order => order.items[0].productId === widget.id));
                if (page >= result.totalPages) return orders;
            }
        };
        await eventually(async () =>
            (await kept()).every(order => order.status !== OrderStatus.Pending),
        );
        const orders = await kept();
        expect(orders.filter(order => order.status === OrderStatus.Confirmed)).toHaveLength(20);
        expect(refused.length + orders.length).toBe(120);
        expect(await stockOf(widget.id)).toBe(0);
    });
});

describe("through the gateway", () => {
    it("places with an Idempotency-Key over REST: 201, the same answer again, 409 for another body", async () => {
        const widget = await createProduct(5);
        const key = crypto.randomUUID();
        const body = { items: [{ productId: widget.id, quantity: 2 }], userId: admin.id };
        const headers = { "Idempotency-Key": key };
        const first = await http(base, "POST", "/api/orders", { token: ada.token, body, headers });
        expect(first.status).toBe(201);
        expect(first.headers.get("location")).toBe(`/api/orders/${first.body.id}`);
        expect(first.body).toMatchObject({ userId: ada.id, status: "CONFIRMED", total: 3000 });
        const again = await http(base, "POST", "/api/orders", { token: ada.token, body, headers });
        expect(again).toMatchObject({ status: 201, body: { id: first.body.id } });
        const other = await http(base, "POST", "/api/orders", {
            token: ada.token,
            body: { items: [{ productId: widget.id, quantity: 1 }] },
            headers,
        });
        expect(other).toMatchObject({ status: 409, body: { type: "IDEMPOTENCY_CONFLICT" } });
        const short = await http(base, "POST", "/api/orders", {
            token: ada.token,
            body: { items: [{ productId: widget.id, quantity: 4 }] },
        });
        expect(short).toMatchObject({
            status: 409,
            body: {
                type: "INSUFFICIENT_STOCK",
                data: { items: [{ productId: widget.id, requested: 4, available: 3 }] },
            },
        });
        expect(await stockOf(widget.id)).toBe(3);

        const listed = await http(base, "GET", "/api/orders?status=CONFIRMED&pageSize=5", {
            token: ada.token,
        });
        expect(listed.status).toBe(200);
        expect(listed.body.rows.map((o: Order) => o.id)).toContain(first.body.id);
        const cancelled = await http(base, "POST", `/api/orders/${first.body.id}/cancel`, {
            token: ada.token,
        });
        expect(cancelled).toMatchObject({ status: 200, body: { status: "CANCELLED" } });
        expect(await stockOf(widget.id)).toBe(5);
    });

    it("places and reads an order over GraphQL, resolving its user and products from their services", async () => {
        const widget = await createProduct(5, 250);
        const placed = await graphql(
            base,
            `
                mutation Place($input: PlaceOrderInput!, $key: String) {
                    placeOrder(input: $input, idempotencyKey: $key) {
                        id
                        status
                        total
                    }
                }
            `,
            { input: { items: [{ productId: widget.id, quantity: 2 }] }, key: "gql-1" },
            ada.token,
        );
        expect(placed.body.errors).toBeUndefined();
        expect(placed.body.data.placeOrder).toMatchObject({ status: "CONFIRMED", total: 500 });
        const read = await graphql(
            base,
            `
                query One($id: ID!) {
                    order(id: $id) {
                        id
                        status
                        currency
                        user {
                            id
                            name
                        }
                        shipping {
                            name
                            address {
                                line1
                            }
                        }
                        items {
                            productId
                            name
                            unitPrice
                            quantity
                            lineTotal
                            product {
                                id
                                stock
                            }
                        }
                    }
                    orders(status: CONFIRMED, pageSize: 1) {
                        total
                        rows {
                            id
                        }
                    }
                }
            `,
            { id: placed.body.data.placeOrder.id },
            ada.token,
        );
        expect(read.body.errors).toBeUndefined();
        expect(read.body.data.order).toEqual({
            id: placed.body.data.placeOrder.id,
            status: "CONFIRMED",
            currency: "USD",
            user: { id: ada.id, name: "Ada" },
            shipping: { name: "Ada", address: { line1: "1 Main St" } },
            items: [
                {
                    productId: widget.id,
                    name: widget.name,
                    unitPrice: 250,
                    quantity: 2,
                    lineTotal: 500,
                    product: { id: widget.id, stock: 3 },
                },
            ],
        });
        expect(read.body.data.orders.rows).toEqual([{ id: placed.body.data.placeOrder.id }]);

        const shipped = await graphql(
            base,
            `mutation { updateOrderStatus(id: "${placed.body.data.placeOrder.id}", status: SHIPPED) { status } }`,
            {},
            ada.token,
        );
        expect(shipped.body.errors[0].extensions.code).toBe("FORBIDDEN");
        const cancelled = await graphql(
            base,
            `mutation { cancelOrder(id: "${placed.body.data.placeOrder.id}") { status } }`,
            {},
            ada.token,
        );
        expect(cancelled.body.data.cancelOrder).toEqual({ status: "CANCELLED" });
    });
});

describe("when the inventory can't answer", () => {
    it("answers 202 PENDING and the settlers confirm the order without anyone asking", async () => {
        const widget = await createProduct(4);
        // A transaction holding the product's row keeps `products.reserve` waiting too long.
        const blocker = new Client({ connectionString: db.url });
        await blocker.connect();
        await blocker.query("BEGIN");
        await blocker.query("SELECT id FROM products.products WHERE id = $1 FOR UPDATE", [
            widget.id,
        ]);
        const pending = await http(base, "POST", "/api/orders", {
            token: ada.token,
            body: { items: [{ productId: widget.id, quantity: 4 }] },
        }).finally(async () => {
            await blocker.query("ROLLBACK");
            await blocker.end();
        });
        expect(pending).toMatchObject({ status: 202, body: { status: "PENDING" } });
        await eventually(async () => {
            const order = await caller.call<Order, object>(
                "orders.get",
                { id: pending.body.id },
                as(ada),
            );
            return order.status === OrderStatus.Confirmed;
        });
        expect(await stockOf(widget.id)).toBe(0);
    });

    it("takes orders PENDING while products is down and settles them once it is back; an owed release is retried", async () => {
        const widget = await createProduct(6);
        const order = await caller.call<Order, object>(
            "orders.place",
            { items: [{ productId: widget.id, quantity: 5 }] },
            as(ada),
        );

        await nodes.get("products-1")!.stop();
        nodes.delete("products-1");
        const taken = await http(base, "POST", "/api/orders", {
            token: ada.token,
            body: { items: [{ productId: widget.id, quantity: 1 }] },
        });
        // Not priced yet: the price is the one the reservation finds.
        expect(taken).toMatchObject({
            status: 202,
            body: {
                status: "PENDING",
                total: null,
                items: [{ productId: widget.id, quantity: 1 }],
            },
        });
        // The cancel is answered at once; its stock goes back once products is back.
        const cancelled = await caller.call<Order, object>(
            "orders.cancel",
            { id: order.id },
            as(ada),
        );
        expect(cancelled.status).toBe(OrderStatus.Cancelled);

        const revived = node("products-2", ["products"]);
        await revived.start();
        await caller.waitForServices("products", 10_000);
        // The cancelled order's 5 are back, and the order taken meanwhile holds its 1.
        await eventually(async () => (await stockOf(widget.id)) === 5);
        await eventually(async () => {
            const settled = await caller.call<Order, object>(
                "orders.get",
                { id: taken.body.id },
                as(ada),
            );
            return settled.status === OrderStatus.Confirmed;
        });
        expect(
            await caller.call<Order, object>("orders.get", { id: taken.body.id }, as(ada)),
        ).toMatchObject({
            total: widget.price,
            items: [
                {
                    productId: widget.id,
                    name: widget.name,
                    unitPrice: widget.price,
                    lineTotal: widget.price,
                },
            ],
        });
        const error = await rejectionOf(caller.call("orders.cancel", { id: order.id }, as(ada)));
        expect(error).toMatchObject({ code: 409, type: "INVALID_TRANSITION" });
    });
});
