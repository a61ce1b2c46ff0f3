/**
 * products: catalogue, listing filters, inventory and reservations, through broker.call against a
 * real PostgreSQL database of its own.
 */
import type { ServiceBroker } from "moleculer";
import { createTestBroker } from "../support/broker";
import { REDIS_URL, createTestDatabase, type TestDatabase } from "../support/database";
import type { AuthUser, Page, Product } from "../../types";
import { rejectionOf } from "../support/errors";

const admin: AuthUser = {
    id: "00000000-0000-4000-8000-000000000001",
    email: "a@x.io",
    role: "admin",
};
const shopper: AuthUser = {
    id: "00000000-0000-4000-8000-000000000002",
    email: "u@x.io",
    role: "user",
};

let db: TestDatabase;
let broker: ServiceBroker;

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    broker = createTestBroker({ services: ["products"] });
    await broker.start();
});

afterAll(async () => {
    await broker.stop();
    await db.drop();
});

function create(fields: Record<string, unknown>): Promise<Product> {
    return broker.call("products.create", fields, { meta: { user: admin } });
}

function list(params: Record<string, unknown> = {}): Promise<Page<Product>> {
    return broker.call("products.list", params);
}

async function expectError(promise: Promise<unknown>, code: number, type: string) {
    await expect(promise).rejects.toMatchObject({ code, type });
}

describe("catalogue", () => {
    it("creates a product with integer money, the shop currency and ISO timestamps", async () => {
        const product = await create({ name: "Lamp", price: 1999, stock: 3, category: "home" });
        expect(product).toMatchObject({ name: "Lamp", price: 1999, currency: "USD", stock: 3 });
        expect(new Date(product.createdAt).toISOString()).toBe(product.createdAt);
        await expect(broker.call("products.get", { id: product.id })).resolves.toEqual(product);
    });

    it("lets only admins write", async () => {
        await expectError(
            broker.call("products.create", { name: "X", price: 1 }),
            401,
            "UNAUTHORIZED",
        );
        await expectError(
            broker.call("products.create", { name: "X", price: 1 }, { meta: { user: shopper } }),
            403,
            "FORBIDDEN",
        );
    });

    it.each([
        [{ price: 10 }, "name"],
        [{ name: "", price: 10 }, "name"],
        [{ name: "A", price: -1 }, "price"],
        [{ name: "A", price: 1.5 }, "price"],
        [{ name: "A", price: "10" }, "price"],
        [{ name: "A", price: 10, stock: -3 }, "stock"],
        [{ name: "A".repeat(201), price: 10 }, "name"],
        [{ name: "A", price: 1e12 }, "price"],
    ])("rejects %j with a 422 naming %s and stores nothing", async (fields, field) => {
        const before = (await list({ pageSize: 100 })).total;
        const error = await rejectionOf(create(fields));
        expect(error).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
        expect(error.data.map((d: { field: string }) => d.field)).toContain(field);
        expect((await list({ pageSize: 100 })).total).toBe(before);
    });

    it("updates and soft deletes; a deleted product is gone from get, list and resolve", async () => {
        const product = await create({ name: "Chair", price: 5000, stock: 1 });
        const updated = await broker.call<Product, object>(
            "products.update",
            { id: product.id, price: 4500, stock: 999 },
            { meta: { user: admin } },
        );
        expect(updated).toMatchObject({ price: 4500, stock: 1 });
        await broker.call("products.remove", { id: product.id }, { meta: { user: admin } });
        await expectError(broker.call("products.get", { id: product.id }), 404, "NOT_FOUND");
        expect((await list({ pageSize: 100 })).rows.map(p => p.id)).not.toContain(product.id);
        await expect(broker.call("products.resolve", { id: [product.id] })).resolves.toEqual([
            null,
        ]);
        await expectError(
            broker.call("products.remove", { id: product.id }, { meta: { user: admin } }),
            404,
            "NOT_FOUND",
        );
    });

    it("refuses to clear a name or price with null, and changes nothing", async () => {
        const product = await create({ name: "Kept", price: 700 });
        for (const field of ["name", "price"]) {
            const error = await rejectionOf(
                broker.call(
                    "products.update",
                    { id: product.id, [field]: null },
                    { meta: { user: admin } },
                ),
            );
            expect(error).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
            expect(error.data[0].field).toBe(field);
        }
        await expect(broker.call("products.get", { id: product.id })).resolves.toMatchObject({
            name: "Kept",
            price: 700,
        });
    });

    it("answers 422, not 500, for an id that is not a UUID", async () => {
        await expectError(broker.call("products.get", { id: "1 OR 1=1" }), 422, "VALIDATION_ERROR");
    });
});

describe("listing", () => {
    beforeAll(async () => {
        await create({ name: "Alpha widget", price: 100, stock: 0, category: "widgets" });
        await create({ name: "Beta widget", price: 300, stock: 5, category: "widgets" });
        await create({ name: "Gamma gadget 100%", price: 200, stock: 5, category: "gadgets" });
    });

    it("filters by search, category, price range and stock", async () => {
        expect((await list({ search: "widget" })).rows.map(p => p.name).sort()).toEqual([
            "Alpha widget",
            "Beta widget",
        ]);
        expect((await list({ category: "gadgets" })).rows.map(p => p.name)).toEqual([
            "Gamma gadget 100%",
        ]);
        expect(
            (await list({ category: "widgets", inStock: "true" })).rows.map(p => p.name),
        ).toEqual(["Beta widget"]);
        const priced = await list({ minPrice: "150", maxPrice: "250" });
        expect(priced.rows.map(p => p.price)).toEqual([200]);
        expect((await list({ search: "100%" })).rows.map(p => p.name)).toEqual([
            "Gamma gadget 100%",
        ]);
        expect((await list({ search: "%" })).total).toBe(1);
    });

    it("sorts and paginates", async () => {
        const byPrice = await list({ category: "widgets", sort: "-price" });
        expect(byPrice.rows.map(p => p.price)).toEqual([300, 100]);
        const page = await list({ search: "g", sort: "name", pageSize: "1", page: "2" });
        expect(page).toMatchObject({ page: 2, pageSize: 1 });
        expect(page.totalPages).toBe(page.total);
        const beyond = await list({ search: "widget", page: 50 });
        expect(beyond).toMatchObject({ rows: [], total: 2, page: 50 });
    });

    it("caps the page size at 100", async () => {
        expect(await list({ pageSize: 1000 })).toMatchObject({ page: 1, pageSize: 100 });
    });

    it.each([{ pageSize: 0 }, { page: 0 }, { sort: "price; DROP TABLE" }, { minPrice: "abc" }])(
        "rejects %j with 422",
        async params => {
            await expectError(list(params), 422, "VALIDATION_ERROR");
        },
    );

    it("never shows a stale listing after a write has answered", async () => {
        const product = await create({ name: "Fresh", price: 10, stock: 5, category: "fresh" });
        expect((await list({ category: "fresh" })).rows[0].stock).toBe(5);
        await broker.call("products.get", { id: product.id });
        await broker.call("products.reserve", {
            orderId: "10000000-0000-4000-8000-000000000000",
            items: [{ productId: product.id, quantity: 2 }],
        });
        expect((await list({ category: "fresh" })).rows[0].stock).toBe(3);
        expect((await broker.call<Product, object>("products.get", { id: product.id })).stock).toBe(
            3,
        );
        await broker.call(
            "products.update",
            { id: product.id, price: 11 },
            { meta: { user: admin } },
        );
        expect((await list({ category: "fresh" })).rows[0].price).toBe(11);
    });
});

describe("cache freshness under concurrent reservations (Redis)", () => {
    let cached: ServiceBroker;

    beforeAll(async () => {
        cached = createTestBroker({
            services: ["products"],
            cacher: REDIS_URL,
            namespace: `products-fresh-${process.pid}-${Date.now()}`,
        });
        await cached.start();
    });

    afterAll(() => cached.stop());

    it("never shows stock older than a reservation that has answered, while many run at once", async () => {
        const product = await cached.call<Product, object>(
            "products.create",
            { name: "Busy", price: 1, stock: 100, category: "busy" },
            { meta: { user: admin } },
        );
        let answered = 0;
        const violations: string[] = [];
        const reservations = Array.from({ length: 40 }, async (_, i) => {
            // Reads between the writes keep caching intermediate stock.
            await cached.call("products.get", { id: product.id });
            await cached.call("products.reserve", {
                orderId: `40000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
                items: [{ productId: product.id, quantity: 1 }],
            });
            // Every reservation counted here has committed before it answered.
            const committed = ++answered;
            const [got, page] = await Promise.all([
                cached.call<Product, object>("products.get", { id: product.id }),
                cached.call<Page<Product>, object>("products.list", { category: "busy" }),
            ]);
            for (const stock of [got.stock, page.rows[0].stock]) {
                if (stock > 100 - committed) violations.push(`${stock} after ${committed}`);
            }
        });
        await Promise.all(reservations);
        expect(violations).toEqual([]);
        expect((await cached.call<Product, object>("products.get", { id: product.id })).stock).toBe(
            60,
        );
    });
});

describe("inventory", () => {
    it("adds, subtracts and sets, never below zero", async () => {
        const product = await create({ name: "Stocked", price: 1, stock: 2 });
        const adjust = (op: string, quantity: number) =>
            broker.call<Product, object>(
                "products.adjustInventory",
                { productId: product.id, op, quantity },
                { meta: { user: admin } },
            );
        expect((await adjust("add", 5)).stock).toBe(7);
        expect((await adjust("subtract", 3)).stock).toBe(4);
        const error = await rejectionOf(adjust("subtract", 5));
        expect(error).toMatchObject({ code: 409, type: "INSUFFICIENT_STOCK" });
        expect(error.data.items).toEqual([{ productId: product.id, requested: 5, available: 4 }]);
        expect((await adjust("set", 0)).stock).toBe(0);
        await expectError(adjust("add", -1), 422, "VALIDATION_ERROR");
        await expectError(adjust("multiply", 2), 422, "VALIDATION_ERROR");
    });
});

describe("reservations", () => {
    it("reserves all lines or none, names every short line, and is idempotent by order", async () => {
        const a = await create({ name: "A", price: 1, stock: 5 });
        const b = await create({ name: "B", price: 1, stock: 1 });
        const orderId = "20000000-0000-4000-8000-000000000000";
        const error = await rejectionOf(
            broker.call("products.reserve", {
                orderId,
                items: [
                    { productId: a.id, quantity: 2 },
                    { productId: b.id, quantity: 3 },
                ],
            }),
        );
        expect(error).toMatchObject({ code: 409, type: "INSUFFICIENT_STOCK" });
        expect(error.data.items).toEqual([{ productId: b.id, requested: 3, available: 1 }]);
        const stocks = async () =>
            (
                await broker.call<(Product | null)[], object>("products.resolve", {
                    id: [a.id, b.id],
                })
            ).map(p => p?.stock);
        expect(await stocks()).toEqual([5, 1]);

        const items = [
            { productId: a.id, quantity: 2 },
            { productId: b.id, quantity: 1 },
        ];
        const first = await broker.call("products.reserve", { orderId, items });
        const again = await broker.call("products.reserve", { orderId, items });
        expect(again).toEqual(first);
        expect(await stocks()).toEqual([3, 0]);

        await expect(broker.call("products.release", { orderId })).resolves.toEqual({
            orderId,
            released: true,
        });
        await expect(broker.call("products.release", { orderId })).resolves.toEqual({
            orderId,
            released: false,
        });
        expect(await stocks()).toEqual([5, 1]);
    });

    it("never oversells under concurrent reservations", async () => {
        const product = await create({ name: "Hot", price: 1, stock: 10 });
        const attempts = Array.from({ length: 60 }, (_, i) =>
            broker
                .call("products.reserve", {
                    orderId: `30000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
                    items: [{ productId: product.id, quantity: 1 }],
                })
                .then(
                    () => "ok",
                    (e: { type: string }) => e.type,
                ),
        );
        const outcomes = await Promise.all(attempts);
        expect(outcomes.filter(o => o === "ok")).toHaveLength(10);
        expect(outcomes.filter(o => o === "INSUFFICIENT_STOCK")).toHaveLength(50);
        expect((await broker.call<Product, object>("products.get", { id: product.id })).stock).toBe(
            0,
        );
    });
});
