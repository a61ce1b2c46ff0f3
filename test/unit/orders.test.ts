/**
 * orders: placement, idempotency, history, the lifecycle, profile updates and the settler, with the
 * real users and products services on one broker and a real PostgreSQL database of its own.
 */
import crypto from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
import { createTestBroker, serviceSchema } from "../support/broker";
import { adminCaller } from "../support/fixtures";
import { createTestDatabase, type TestDatabase } from "../support/database";
import { rejectionOf } from "../support/errors";
import { QueryTypes, type Sequelize } from "sequelize";
import {
    Channel,
    OrderStatus,
    type AuthUser,
    type ChannelEvent,
    type Order,
    type Page,
    type Product,
    type ShippingDetails,
    type User,
    type UserProfileUpdatedEvent,
} from "../../types";
import type { SettleCounts } from "../../services/orders/orders.service";

// The settler is driven by `orders.settle` here; its timer is exercised by the cluster test.
process.env.SETTLE_INTERVAL_MS = "3600000";

const admin = adminCaller;

let db: TestDatabase;
let broker: ServiceBroker;

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    broker = createTestBroker({ services: ["users", "products", "orders"] });
    await broker.start();
});

afterAll(async () => {
    await broker.stop();
    await db.drop();
});

// --- helpers ---

async function shopper(name = "Ada Lovelace"): Promise<AuthUser & { profile: User }> {
    const profile = await broker.call<User, object>("users.register", {
        email: `${crypto.randomUUID()}@x.io`,
        password: "correct horse battery",
        name,
        phone: "+44 20 7946 0000",
        address: { line1: "12 Analytical St", city: "London", postalCode: "N1", country: "GB" },
    });
    return { id: profile.id, email: profile.email, role: "user", profile };
}

function product(price: number, stock: number): Promise<Product> {
    return broker.call(
        "products.create",
        { name: `Thing ${crypto.randomUUID().slice(0, 8)}`, price, stock },
        { meta: { user: admin } },
    );
}

async function stockOf(id: string): Promise<number> {
    const [found] = await broker.call<(Product | null)[], object>("products.resolve", { id: [id] });
    return found!.stock;
}

function addStock(productId: string, quantity: number): Promise<Product> {
    return broker.call(
        "products.adjustInventory",
        { productId, op: "add", quantity },
        { meta: { user: admin } },
    );
}

interface Answer {
    order: Order;
    status: number;
}

/** Calls `orders.place` and also returns the HTTP status it set (201 / 202). */
async function place(
    user: AuthUser,
    params: Record<string, unknown>,
    meta: Record<string, unknown> = {},
): Promise<Answer> {
    const call = broker.call<Order, object>("orders.place", params, { meta: { user, ...meta } });
    const order = await call;
    const status = (call as unknown as { ctx: { meta: { $statusCode: number } } }).ctx.meta
        .$statusCode;
    return { order, status };
}

function line(p: Product, quantity: number) {
    return { productId: p.id, quantity };
}

function listOrders(user: AuthUser, params: Record<string, unknown> = {}): Promise<Page<Order>> {
    return broker.call("orders.list", params, { meta: { user } });
}

async function orderCount(): Promise<number> {
    return (await listOrders(admin, { pageSize: 1 })).total;
}

function getOrder(user: AuthUser, id: string): Promise<Order> {
    return broker.call("orders.get", { id }, { meta: { user } });
}

function cancel(user: AuthUser, id: string): Promise<Order> {
    return broker.call("orders.cancel", { id }, { meta: { user } });
}

function setStatus(id: string, status: string, user: AuthUser = admin): Promise<Order> {
    return broker.call("orders.updateStatus", { id, status }, { meta: { user } });
}

function settle(): Promise<SettleCounts> {
    return broker.call("orders.settle", { minAgeMs: 0 });
}

/**
 * Runs `work` while the inventory is slow: a transaction holds the products' rows locked, so
 * `products.reserve` waits past the orders service's patience (like a stuck database would).
 */
async function whileInventoryStalls<T>(productIds: string[], work: () => Promise<T>): Promise<T> {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
        await client.query("BEGIN");
        await client.query("SELECT id FROM products.products WHERE id = ANY($1) FOR UPDATE", [
            productIds,
        ]);
        return await work();
    } finally {
        await client.query("ROLLBACK");
        await client.end();
    }
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error("condition not reached in time");
        await new Promise(resolve => setTimeout(resolve, 25));
    }
}

async function stopProducts(): Promise<void> {
    await broker.destroyService(broker.getLocalService("products"));
}

async function startProducts(): Promise<void> {
    broker.createService(serviceSchema("products"));
    await broker.waitForServices("products");
}

// --- tests ---

describe("placing an order", () => {
    it("copies names, prices and shipping, computes totals on the server and confirms with 201", async () => {
        const ada = await shopper();
        const lamp = await product(1999, 10);
        const desk = await product(25000, 2);
        const { order, status } = await place(ada, {
            items: [
                { productId: lamp.id, quantity: 3, unitPrice: 1, name: "free" },
                { productId: desk.id, quantity: 1 },
            ],
            userId: crypto.randomUUID(),
            total: 1,
            currency: "EUR",
        });
        expect(status).toBe(201);
        expect(order).toEqual({
            id: expect.any(String),
            userId: ada.id,
            status: OrderStatus.Confirmed,
            items: [
                {
                    productId: lamp.id,
                    name: lamp.name,
                    unitPrice: 1999,
                    quantity: 3,
                    lineTotal: 5997,
                },
                {
                    productId: desk.id,
                    name: desk.name,
                    unitPrice: 25000,
                    quantity: 1,
                    lineTotal: 25000,
                },
            ],
            total: 30997,
            currency: "USD",
            shipping: {
                name: ada.profile.name,
                phone: ada.profile.phone,
                address: ada.profile.address,
            },
            rejectionReason: null,
            createdAt: expect.any(String),
            updatedAt: expect.any(String),
        });
        expect(new Date(order.createdAt).toISOString()).toBe(order.createdAt);
        expect(await stockOf(lamp.id)).toBe(7);
        expect(await stockOf(desk.id)).toBe(1);
        await expect(getOrder(ada, order.id)).resolves.toEqual(order);
    });

    it("keeps its copy when the product changes or is deleted later", async () => {
        const ada = await shopper();
        const lamp = await product(1999, 10);
        const { order } = await place(ada, { items: [line(lamp, 1)] });
        await broker.call(
            "products.update",
            { id: lamp.id, name: "Renamed", price: 1 },
            { meta: { user: admin } },
        );
        await broker.call("products.remove", { id: lamp.id }, { meta: { user: admin } });
        const again = await getOrder(ada, order.id);
        expect(again.items[0]).toMatchObject({ name: lamp.name, unitPrice: 1999 });
    });

    it("asks for a signed-in user", async () => {
        const lamp = await product(100, 1);
        const error = await rejectionOf(broker.call("orders.place", { items: [line(lamp, 1)] }));
        expect(error).toMatchObject({ code: 401, type: "UNAUTHORIZED" });
    });

    const validId = "7d3c4c0e-2b7a-4a43-9f55-2a1e4f1b2c3d";
    it.each<[string, (p: Product) => unknown, string]>([
        ["no items", () => [], "items"],
        ["51 items", p => Array.from({ length: 51 }, () => line(p, 1)), "items"],
        ["quantity 0", p => [line(p, 0)], "items[0].quantity"],
        ["quantity 1001", p => [line(p, 1001)], "items[0].quantity"],
        ["quantity 1.5", p => [line(p, 1.5)], "items[0].quantity"],
        ["quantity 'x'", p => [{ productId: p.id, quantity: "x" }], "items[0].quantity"],
        ["quantity '2' as text", p => [{ productId: p.id, quantity: "2" }], "items[0].quantity"],
        [
            "a product id that is not a uuid",
            () => [{ productId: "42", quantity: 1 }],
            "items[0].productId",
        ],
        ["a missing product id", () => [{ quantity: 1 }], "items[0].productId"],
        ["items that are not a list", () => "lamp", "items"],
        [
            "an unknown product",
            p => [line(p, 1), { productId: validId, quantity: 1 }],
            "items[1].productId",
        ],
        [
            "the same product twice",
            p => [line(p, 1), { productId: p.id.toUpperCase(), quantity: 2 }],
            "items[1].productId",
        ],
    ])(
        "rejects %s with a 422 naming the field, storing and reserving nothing",
        async (_, items, field) => {
            const ada = await shopper();
            const lamp = await product(500, 5);
            const before = await orderCount();
            const error = await rejectionOf(place(ada, { items: items(lamp) }));
            expect(error).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
            expect(error.data).toEqual(
                expect.arrayContaining([expect.objectContaining({ field })]),
            );
            expect(await stockOf(lamp.id)).toBe(5);
            expect(await orderCount()).toBe(before);
        },
    );

    it("rejects a deleted product with a 422", async () => {
        const ada = await shopper();
        const lamp = await product(500, 5);
        await broker.call("products.remove", { id: lamp.id }, { meta: { user: admin } });
        const error = await rejectionOf(place(ada, { items: [line(lamp, 1)] }));
        expect(error).toMatchObject({
            code: 422,
            data: [expect.objectContaining({ field: "items[0].productId" })],
        });
    });

    it("rejects an idempotency key over 255 characters, as argument or header, with a 422", async () => {
        const ada = await shopper();
        const lamp = await product(500, 5);
        const key = "k".repeat(256);
        const problem = { code: 422, data: [expect.objectContaining({ field: "idempotencyKey" })] };
        const asArgument = await rejectionOf(
            place(ada, { items: [line(lamp, 1)], idempotencyKey: key }),
        );
        expect(asArgument).toMatchObject(problem);
        const asHeader = await rejectionOf(
            place(ada, { items: [line(lamp, 1)] }, { idempotencyKey: key }),
        );
        expect(asHeader).toMatchObject(problem);
        expect(await stockOf(lamp.id)).toBe(5);
    });

    it("refuses with 409 naming each short item and what is available, reserving nothing and keeping no order", async () => {
        const ada = await shopper();
        const plenty = await product(100, 50);
        const scarce = await product(200, 2);
        const none = await product(300, 0);
        const before = await orderCount();
        const error = await rejectionOf(
            place(ada, { items: [line(plenty, 10), line(scarce, 3), line(none, 1)] }),
        );
        expect(error).toMatchObject({ code: 409, type: "INSUFFICIENT_STOCK" });
        expect(error.data.items).toHaveLength(2);
        expect(error.data.items).toEqual(
            expect.arrayContaining([
                { productId: scarce.id, requested: 3, available: 2 },
                { productId: none.id, requested: 1, available: 0 },
            ]),
        );
        expect(await stockOf(plenty.id)).toBe(50);
        expect(await stockOf(scarce.id)).toBe(2);
        expect(await orderCount()).toBe(before);
    });
});

describe("idempotency", () => {
    it("answers the same key and body with the first order, taking the stock once", async () => {
        const ada = await shopper();
        const lamp = await product(700, 10);
        const desk = await product(900, 10);
        const first = await place(ada, {
            items: [line(lamp, 2), line(desk, 1)],
            idempotencyKey: "k-1",
        });
        // The same lines in another order are the same request.
        const again = await place(ada, {
            items: [line(desk, 1), line(lamp, 2)],
            idempotencyKey: "k-1",
        });
        expect(again).toEqual(first);
        expect(first.status).toBe(201);
        expect(await stockOf(lamp.id)).toBe(8);
        expect(await stockOf(desk.id)).toBe(9);
    });

    it("takes the key from the Idempotency-Key header (meta) too", async () => {
        const ada = await shopper();
        const lamp = await product(700, 10);
        const first = await place(ada, { items: [line(lamp, 1)] }, { idempotencyKey: "hdr-1" });
        const again = await place(ada, { items: [line(lamp, 1)] }, { idempotencyKey: "hdr-1" });
        expect(again.order.id).toBe(first.order.id);
        expect(await stockOf(lamp.id)).toBe(9);
    });

    it("refuses the same key with a different body with 409 IDEMPOTENCY_CONFLICT", async () => {
        const ada = await shopper();
        const lamp = await product(700, 10);
        await place(ada, { items: [line(lamp, 1)], idempotencyKey: "k-2" });
        const error = await rejectionOf(
            place(ada, { items: [line(lamp, 2)], idempotencyKey: "k-2" }),
        );
        expect(error).toMatchObject({ code: 409, type: "IDEMPOTENCY_CONFLICT" });
        expect(await stockOf(lamp.id)).toBe(9);
    });

    it("does not use up a key on an order refused for stock", async () => {
        const ada = await shopper();
        const lamp = await product(700, 1);
        const refused = await rejectionOf(
            place(ada, { items: [line(lamp, 3)], idempotencyKey: "k-3" }),
        );
        expect(refused).toMatchObject({ code: 409, type: "INSUFFICIENT_STOCK" });
        await addStock(lamp.id, 2);
        const placed = await place(ada, { items: [line(lamp, 3)], idempotencyKey: "k-3" });
        expect(placed.status).toBe(201);
        expect(await stockOf(lamp.id)).toBe(0);
    });

    it("scopes keys per user", async () => {
        const ada = await shopper();
        const bob = await shopper("Bob");
        const lamp = await product(700, 10);
        const mine = await place(ada, { items: [line(lamp, 1)], idempotencyKey: "shared" });
        const theirs = await place(bob, { items: [line(lamp, 1)], idempotencyKey: "shared" });
        expect(theirs.order.id).not.toBe(mine.order.id);
        expect(theirs.order.userId).toBe(bob.id);
        expect(await stockOf(lamp.id)).toBe(8);
    });

    it("lets concurrent requests with one key make one order, all answered with it", async () => {
        const ada = await shopper();
        const lamp = await product(700, 100);
        const answers = await Promise.all(
            Array.from({ length: 8 }, () =>
                place(ada, { items: [line(lamp, 4)], idempotencyKey: "race" }),
            ),
        );
        expect(new Set(answers.map(a => a.order.id)).size).toBe(1);
        expect(
            answers.every(a => a.status === 201 && a.order.status === OrderStatus.Confirmed),
        ).toBe(true);
        expect(await stockOf(lamp.id)).toBe(96);
        expect((await listOrders(ada)).total).toBe(1);
    });

    it("makes one order and one reservation from 200 concurrent retries of one request", async () => {
        const ada = await shopper();
        const lamp = await product(700, 1000);
        const answers = await Promise.all(
            Array.from({ length: 200 }, () =>
                place(ada, { items: [line(lamp, 3)], idempotencyKey: "storm" }),
            ),
        );
        await broker.call("orders.settle", { minAgeMs: 0 });
        expect(new Set(answers.map(a => a.order.id)).size).toBe(1);
        expect(answers.every(a => a.status === 201 || a.status === 202)).toBe(true);
        expect(await stockOf(lamp.id)).toBe(997);
        const orders = await listOrders(ada);
        expect(orders.total).toBe(1);
        expect(orders.rows[0].status).toBe(OrderStatus.Confirmed);
    });

    it("frees a key once it has expired: the same key then makes a new order", async () => {
        const ada = await shopper();
        const lamp = await product(700, 10);
        const first = await place(ada, { items: [line(lamp, 1)], idempotencyKey: "old" });
        const client = new Client({ connectionString: db.url });
        await client.connect();
        await client.query(
            "UPDATE orders.orders SET created_at = created_at - interval '25 hours' WHERE id = $1",
            [first.order.id],
        );
        await client.end();
        const second = await place(ada, { items: [line(lamp, 2)], idempotencyKey: "old" });
        expect(second.status).toBe(201);
        expect(second.order.id).not.toBe(first.order.id);
        expect(await stockOf(lamp.id)).toBe(7);
        // The first order is kept; only its key was let go.
        expect((await getOrder(ada, first.order.id)).status).toBe(OrderStatus.Confirmed);
    });
});

describe("order history", () => {
    let ada: AuthUser;
    let bob: AuthUser;
    const adaOrders: Order[] = [];
    let bobOrder: Order;

    beforeAll(async () => {
        ada = await shopper();
        bob = await shopper("Bob");
        const lamp = await product(100, 100);
        for (let i = 1; i <= 5; i++)
            adaOrders.push((await place(ada, { items: [line(lamp, i)] })).order);
        bobOrder = (await place(bob, { items: [line(lamp, 1)] })).order;
        await cancel(ada, adaOrders[0].id);
    });

    it("shows a user only their own orders, newest first", async () => {
        const page = await listOrders(ada, { userId: bob.id });
        expect(page).toMatchObject({ total: 5, page: 1, pageSize: 20, totalPages: 1 });
        expect(page.rows.map(o => o.id)).toEqual(adaOrders.map(o => o.id).reverse());
    });

    it("pages through them", async () => {
        const page = await listOrders(ada, { page: "2", pageSize: "2" });
        expect(page).toMatchObject({ total: 5, page: 2, pageSize: 2, totalPages: 3 });
        expect(page.rows.map(o => o.id)).toEqual([adaOrders[2].id, adaOrders[1].id]);
        expect((await listOrders(ada, { page: 9 })).rows).toEqual([]);
    });

    it("filters by status", async () => {
        const cancelled = await listOrders(ada, { status: "CANCELLED" });
        expect(cancelled.rows.map(o => o.id)).toEqual([adaOrders[0].id]);
        expect((await listOrders(ada, { status: "CONFIRMED" })).total).toBe(4);
    });

    it("shows an admin everyone's orders, or one user's", async () => {
        const all = await listOrders(admin, { pageSize: 100 });
        expect(all.rows.map(o => o.id)).toEqual(
            expect.arrayContaining([bobOrder.id, adaOrders[4].id]),
        );
        const bobs = await listOrders(admin, { userId: bob.id });
        expect(bobs.rows.map(o => o.id)).toEqual([bobOrder.id]);
    });

    it("caps the page size at 100", async () => {
        expect(await listOrders(admin, { pageSize: 101 })).toMatchObject({ pageSize: 100 });
    });

    it.each([
        [{ pageSize: 0 }, "pageSize"],
        [{ page: 0 }, "page"],
        [{ status: "LOST" }, "status"],
        [{ userId: "bob" }, "userId"],
    ])("rejects %j with a 422", async (params, field) => {
        const error = await rejectionOf(listOrders(admin, params));
        expect(error).toMatchObject({ code: 422, data: [expect.objectContaining({ field })] });
    });

    it("shows one order to its owner and an admin, and 404 to anyone else", async () => {
        await expect(getOrder(bob, bobOrder.id)).resolves.toMatchObject({ id: bobOrder.id });
        await expect(getOrder(admin, bobOrder.id)).resolves.toMatchObject({ id: bobOrder.id });
        const error = await rejectionOf(getOrder(ada, bobOrder.id));
        expect(error).toMatchObject({ code: 404, type: "NOT_FOUND" });
        const unknown = await rejectionOf(getOrder(admin, crypto.randomUUID()));
        expect(unknown).toMatchObject({ code: 404, type: "NOT_FOUND" });
    });
});

describe("the order lifecycle", () => {
    it("cancels a confirmed order and puts its stock back; a second cancel is a 409", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 4)] });
        expect(await stockOf(lamp.id)).toBe(6);
        const cancelled = await cancel(ada, order.id);
        expect(cancelled).toMatchObject({ id: order.id, status: OrderStatus.Cancelled });
        expect(await stockOf(lamp.id)).toBe(10);
        const again = await rejectionOf(cancel(ada, order.id));
        expect(again).toMatchObject({ code: 409, type: "INVALID_TRANSITION" });
        expect(await stockOf(lamp.id)).toBe(10);
        expect(await settle()).toMatchObject({ released: 0, releaseFailed: 0 });
    });

    it("lets nobody but the owner or an admin cancel (404 for others)", async () => {
        const ada = await shopper();
        const bob = await shopper("Bob");
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 1)] });
        expect(await rejectionOf(cancel(bob, order.id))).toMatchObject({ code: 404 });
        expect((await getOrder(ada, order.id)).status).toBe(OrderStatus.Confirmed);
        await expect(cancel(admin, order.id)).resolves.toMatchObject({
            status: OrderStatus.Cancelled,
        });
        expect(await stockOf(lamp.id)).toBe(10);
    });

    it("ships and delivers, and refuses to cancel once shipped", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 2)] });
        await expect(setStatus(order.id, "SHIPPED")).resolves.toMatchObject({ status: "SHIPPED" });
        const error = await rejectionOf(cancel(ada, order.id));
        expect(error).toMatchObject({
            code: 409,
            type: "INVALID_TRANSITION",
            data: { from: "SHIPPED", to: "CANCELLED" },
        });
        expect(await rejectionOf(setStatus(order.id, "CANCELLED"))).toMatchObject({ code: 409 });
        await expect(setStatus(order.id, "DELIVERED")).resolves.toMatchObject({
            status: "DELIVERED",
        });
        expect(await stockOf(lamp.id)).toBe(8);
    });

    it.each([
        ["CONFIRMED", "DELIVERED"],
        ["CONFIRMED", "PENDING"],
        ["CONFIRMED", "CONFIRMED"],
        ["CONFIRMED", "REJECTED"],
        ["SHIPPED", "CONFIRMED"],
        ["SHIPPED", "SHIPPED"],
        ["DELIVERED", "SHIPPED"],
        ["DELIVERED", "CANCELLED"],
        ["CANCELLED", "CONFIRMED"],
        ["CANCELLED", "SHIPPED"],
    ])("refuses %s → %s with 409 INVALID_TRANSITION", async (from, to) => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 1)] });
        const path: Record<string, string[]> = {
            CONFIRMED: [],
            SHIPPED: ["SHIPPED"],
            DELIVERED: ["SHIPPED", "DELIVERED"],
            CANCELLED: ["CANCELLED"],
        };
        for (const step of path[from]) await setStatus(order.id, step);
        const error = await rejectionOf(setStatus(order.id, to));
        expect(error).toMatchObject({ code: 409, type: "INVALID_TRANSITION", data: { from, to } });
        expect((await getOrder(admin, order.id)).status).toBe(from);
    });

    it("lets an admin cancel through updateStatus, which puts the stock back", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 3)] });
        await expect(setStatus(order.id, "CANCELLED")).resolves.toMatchObject({
            status: "CANCELLED",
        });
        expect(await stockOf(lamp.id)).toBe(10);
    });

    it("keeps status changes for admins, and validates them", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 1)] });
        expect(await rejectionOf(setStatus(order.id, "SHIPPED", ada))).toMatchObject({ code: 403 });
        expect(await rejectionOf(setStatus(order.id, "LOST"))).toMatchObject({ code: 422 });
        expect(await rejectionOf(setStatus("nope", "SHIPPED"))).toMatchObject({ code: 422 });
        expect(await rejectionOf(setStatus(crypto.randomUUID(), "SHIPPED"))).toMatchObject({
            code: 404,
        });
    });

    it("lets only one of a concurrent cancel and ship win", async () => {
        const ada = await shopper();
        const lamp = await product(100, 50);
        let expectedStock = 50;
        for (let i = 0; i < 6; i++) {
            const { order } = await place(ada, { items: [line(lamp, 1)] });
            expectedStock -= 1;
            const results = await Promise.allSettled([
                cancel(ada, order.id),
                setStatus(order.id, "SHIPPED"),
            ]);
            expect(results.filter(r => r.status === "fulfilled")).toHaveLength(1);
            const loser = results.find(r => r.status === "rejected") as PromiseRejectedResult;
            expect(loser.reason).toMatchObject({ code: 409, type: "INVALID_TRANSITION" });
            if ((await getOrder(ada, order.id)).status === OrderStatus.Cancelled)
                expectedStock += 1;
            expect(await stockOf(lamp.id)).toBe(expectedStock);
        }
    });
});

describe("profile updates", () => {
    it("change the shipping details of unshipped orders only", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const confirmed = (await place(ada, { items: [line(lamp, 1)] })).order;
        const shipped = (await place(ada, { items: [line(lamp, 1)] })).order;
        await setStatus(shipped.id, "SHIPPED");
        const pending = await whileInventoryStalls([lamp.id], () =>
            place(ada, { items: [line(lamp, 1)] }),
        );
        expect(pending.status).toBe(202);

        const updated = await broker.call<User, object>(
            "users.updateProfile",
            { name: "Ada King", address: { line1: "1 Difference Rd" } },
            { meta: { user: ada } },
        );
        const expected = { name: "Ada King", phone: updated.phone, address: updated.address };
        await eventually(
            async () => (await getOrder(ada, confirmed.id)).shipping.name === "Ada King",
        );
        expect((await getOrder(ada, confirmed.id)).shipping).toEqual(expected);
        expect((await getOrder(ada, pending.order.id)).shipping).toEqual(expected);
        expect((await getOrder(ada, shipped.id)).shipping).toEqual(shipped.shipping);
        await settle();
    });

    it("are on the orders as soon as the change is answered, and the event then changes nothing", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const order = (await place(ada, { items: [line(lamp, 1)] })).order;
        const sequelize = (
            broker.getLocalService("orders") as unknown as { sql(): Sequelize }
        ).sql();
        const touched = async () => {
            const [row] = await sequelize.query<{ updated_at: Date }>(
                `SELECT updated_at FROM orders.orders WHERE id = :id`,
                { replacements: { id: order.id }, type: QueryTypes.SELECT },
            );
            return row.updated_at.getTime();
        };

        await broker.call(
            "users.updateProfile",
            { phone: "+44 20 7946 0999" },
            { meta: { user: ada } },
        );
        // No waiting: the next read after the answer has it.
        expect((await getOrder(ada, order.id)).shipping.phone).toBe("+44 20 7946 0999");
        const appliedAt = await touched();
        // The same change also went out durably (user.profileUpdated); once that event has been
        // consumed, the order was not written again.
        const [event] = await sequelize.query<{ id: string }>(
            `SELECT id FROM users.outbox WHERE payload->>'userId' = :userId
             ORDER BY created_at DESC LIMIT 1`,
            { replacements: { userId: ada.id }, type: QueryTypes.SELECT },
        );
        await eventually(async () => {
            const consumed = await sequelize.query(
                `SELECT 1 FROM orders.processed_events WHERE event_id = :id`,
                { replacements: { id: event.id }, type: QueryTypes.SELECT },
            );
            return consumed.length === 1;
        });
        expect(await touched()).toBe(appliedAt);
    });

    /** Hands a `user.profileUpdated` event to the orders service's channel handler. */
    const deliver = (event: ChannelEvent<UserProfileUpdatedEvent>) =>
        (
            broker.getLocalService("orders") as unknown as {
                emitLocalChannelHandler(channel: string, payload: unknown): Promise<void>;
            }
        ).emitLocalChannelHandler(Channel.UserProfileUpdated, event);

    const profileEvent = (
        user: { id: string },
        shipping: ShippingDetails,
        updatedAt: number,
    ): ChannelEvent<UserProfileUpdatedEvent> => ({
        eventId: crypto.randomUUID(),
        channel: Channel.UserProfileUpdated,
        occurredAt: new Date().toISOString(),
        data: { userId: user.id, shipping, updatedAt: new Date(updatedAt).toISOString() },
    });

    it("ignore an update older than the order's copy", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 1)] });
        const update = (name: string, updatedAt: number) =>
            deliver(profileEvent(ada, { ...order.shipping, name }, updatedAt));
        const placedFrom = Date.parse(ada.profile.updatedAt);
        await update("Stale", placedFrom - 60_000);
        expect((await getOrder(ada, order.id)).shipping.name).toBe(ada.profile.name);
        await update("Fresh", placedFrom + 60_000);
        expect((await getOrder(ada, order.id)).shipping.name).toBe("Fresh");
        await update("Between", placedFrom + 30_000);
        expect((await getOrder(ada, order.id)).shipping.name).toBe("Fresh");
    });

    it("applies the same event delivered twice only once", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 1)] });
        const event = profileEvent(
            ada,
            { ...order.shipping, name: "Once" },
            Date.parse(ada.profile.updatedAt) + 60_000,
        );
        await deliver(event);
        expect((await getOrder(ada, order.id)).shipping.name).toBe("Once");
        // Wind the copy back behind the event: only the event-id record can stop a second apply.
        const sequelize = (
            broker.getLocalService("orders") as unknown as { sql(): Sequelize }
        ).sql();
        await sequelize.query(
            `UPDATE orders.orders SET shipping = jsonb_set(shipping, '{name}', '"Reset"'),
                 shipping_as_of = shipping_as_of - interval '1 day' WHERE id = :id`,
            { replacements: { id: order.id } },
        );
        await deliver(event);
        expect((await getOrder(ada, order.id)).shipping.name).toBe("Reset");
    });
});

describe("the settler", () => {
    it("answers 202 PENDING when the inventory is too slow, then confirms the order", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order, status } = await whileInventoryStalls([lamp.id], () =>
            place(ada, { items: [line(lamp, 4)], idempotencyKey: "slow" }),
        );
        expect(status).toBe(202);
        expect(order.status).toBe(OrderStatus.Pending);
        // The timed-out reservation went through once the rows were free; settling confirms it
        // without taking the stock twice.
        await eventually(async () => (await stockOf(lamp.id)) === 6);
        const again = await place(ada, { items: [line(lamp, 4)], idempotencyKey: "slow" });
        expect(again).toMatchObject({ status: 202, order: { id: order.id, status: "PENDING" } });
        expect(await settle()).toMatchObject({ confirmed: 1 });
        expect(await getOrder(ada, order.id)).toMatchObject({ status: "CONFIRMED" });
        expect(await stockOf(lamp.id)).toBe(6);
        const replay = await place(ada, { items: [line(lamp, 4)], idempotencyKey: "slow" });
        expect(replay).toMatchObject({ status: 201, order: { id: order.id, status: "CONFIRMED" } });
    });

    it("leaves orders PENDING while products is down, and confirms them once it is back", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await whileInventoryStalls([lamp.id], () =>
            place(ada, { items: [line(lamp, 2)] }),
        );
        await eventually(async () => (await stockOf(lamp.id)) === 8);
        await stopProducts();
        try {
            expect(await settle()).toMatchObject({ confirmed: 0, unsettled: 1 });
            expect((await getOrder(ada, order.id)).status).toBe(OrderStatus.Pending);
        } finally {
            await startProducts();
        }
        expect(await settle()).toMatchObject({ confirmed: 1, unsettled: 0 });
        expect((await getOrder(ada, order.id)).status).toBe(OrderStatus.Confirmed);
        expect(await stockOf(lamp.id)).toBe(8);
    });

    it("rejects a PENDING order whose stock went to someone else meanwhile", async () => {
        const ada = await shopper();
        const bob = await shopper("Bob");
        const lamp = await product(100, 5);
        const [first, second] = await whileInventoryStalls([lamp.id], () =>
            Promise.all([
                place(ada, { items: [line(lamp, 5)] }),
                place(bob, { items: [line(lamp, 5)] }),
            ]),
        );
        expect([first.status, second.status]).toEqual([202, 202]);
        // The rejected order also owes one last release, in case its first reservation was still
        // on its way; it changes nothing.
        expect(await settle()).toMatchObject({ confirmed: 1, rejected: 1, released: 1 });
        const orders = [await getOrder(ada, first.order.id), await getOrder(bob, second.order.id)];
        const rejected = orders.find(o => o.status === OrderStatus.Rejected)!;
        expect(orders.map(o => o.status).sort()).toEqual(["CONFIRMED", "REJECTED"]);
        expect(rejected.rejectionReason).toContain(lamp.id);
        expect(rejected.rejectionReason).toContain("available 0");
        expect(await stockOf(lamp.id)).toBe(0);
    });

    it("retries the release of a cancel that could not reach products", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const { order } = await place(ada, { items: [line(lamp, 3)] });
        await stopProducts();
        try {
            await expect(cancel(ada, order.id)).resolves.toMatchObject({ status: "CANCELLED" });
            expect(await settle()).toMatchObject({ released: 0, releaseFailed: 1 });
        } finally {
            await startProducts();
        }
        expect(await stockOf(lamp.id)).toBe(7);
        expect(await settle()).toMatchObject({ released: 1, releaseFailed: 0 });
        expect(await stockOf(lamp.id)).toBe(10);
        expect(await settle()).toMatchObject({ released: 0, releaseFailed: 0 });
    });

    it("gives back the stock of a PENDING order cancelled while its reservation was on its way", async () => {
        const ada = await shopper();
        const lamp = await product(100, 10);
        const client = new Client({ connectionString: db.url });
        await client.connect();
        await client.query("BEGIN");
        await client.query("SELECT id FROM products.products WHERE id = $1 FOR UPDATE", [lamp.id]);
        const { order, status } = await place(ada, { items: [line(lamp, 4)] });
        expect(status).toBe(202);
        // The reservation still waits on the lock: the cancel's release finds nothing to release.
        await expect(cancel(ada, order.id)).resolves.toMatchObject({ status: "CANCELLED" });
        await client.query("ROLLBACK");
        await client.end();
        await eventually(async () => (await stockOf(lamp.id)) === 6);
        expect(await settle()).toMatchObject({ released: 1 });
        expect(await stockOf(lamp.id)).toBe(10);
    });
});
