/**
 * A shop to put under load in e2e tests, and its books: shoppers and products made through the
 * public API, readers and writers hammering the gateway while something fails, and the checks
 * that nothing was lost on the way (every PENDING order settles, stock is conserved, no
 * reservation without a live order), read straight from the database.
 */
import crypto from "node:crypto";
import type { Client } from "pg";
import { http } from "./http";

export interface Shop {
    adminToken: string;
    shopperTokens: string[];
    productIds: string[];
    category: string;
    initialStock: number;
}

/** Logs the admin in, then makes `products` products and `shoppers` shoppers. */
export async function openShop(
    base: string,
    admin: { email: string; password: string },
    { products = 5, shoppers = 4, initialStock = 100_000 } = {},
): Promise<Shop> {
    const category = `shop-${crypto.randomBytes(4).toString("hex")}`;
    const adminToken = (await http(base, "POST", "/api/auth/login", { body: admin })).body
        .accessToken as string;
    const productIds: string[] = [];
    for (let i = 0; i < products; i++) {
        const created = await http(base, "POST", "/api/products", {
            token: adminToken,
            body: { name: `${category} ${i}`, price: 100 + i, stock: initialStock, category },
        });
        if (created.status !== 201) throw new Error(`product not created: ${created.status}`);
        productIds.push(created.body.id);
    }
    const shopperTokens: string[] = [];
    for (let i = 0; i < shoppers; i++) {
        const email = `shopper-${i}-${crypto.randomUUID()}@example.com`;
        const password = "shopper passphrase";
        await http(base, "POST", "/api/auth/register", {
            body: { email, password, name: `Shopper ${i}` },
        });
        const login = await http(base, "POST", "/api/auth/login", { body: { email, password } });
        shopperTokens.push(login.body.accessToken);
    }
    return { adminToken, shopperTokens, productIds, category, initialStock };
}

export interface Outcome {
    kind: "read" | "write";
    status: number;
    ms: number;
    /** The order a write placed, when it was acknowledged (201 or 202). */
    orderId?: string;
}

/** Readers and writers hammer the gateway for `durationMs`; `during` runs alongside. */
export async function underLoad(
    base: string,
    shop: Shop,
    { durationMs, readers, writers }: { durationMs: number; readers: number; writers: number },
    during: () => Promise<void>,
): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    const until = Date.now() + durationMs;
    const { productIds, shopperTokens, category } = shop;
    const timed = async (kind: Outcome["kind"], request: () => ReturnType<typeof http>) => {
        const started = Date.now();
        const { status, body } = await request().catch(() => ({ status: 0, body: null }));
        const acknowledged = kind === "write" && (status === 201 || status === 202);
        outcomes.push({
            kind,
            status,
            ms: Date.now() - started,
            orderId: acknowledged ? body.id : undefined,
        });
    };
    const reader = async (n: number) => {
        for (let i = 0; Date.now() < until; i++) {
            const id = productIds[(n + i) % productIds.length];
            await timed("read", () =>
                i % 2
                    ? http(base, "GET", `/api/products/${id}`)
                    : http(base, "GET", `/api/products?category=${category}`),
            );
        }
    };
    const writer = async (n: number) => {
        for (let i = 0; Date.now() < until; i++) {
            const productId = productIds[(n * 7 + i) % productIds.length];
            await timed("write", () =>
                http(base, "POST", "/api/orders", {
                    token: shopperTokens[n % shopperTokens.length],
                    body: { items: [{ productId, quantity: 1 + (i % 3) }] },
                }),
            );
        }
    };
    await Promise.all([
        ...Array.from({ length: readers }, (_, n) => reader(n)),
        ...Array.from({ length: writers }, (_, n) => writer(n)),
        during(),
    ]);
    return outcomes;
}

/** One line per load run: answers by status and the slowest, for reads and writes. */
export function printSummary(label: string, outcomes: Outcome[]): void {
    const by = (kind: Outcome["kind"]) => outcomes.filter(o => o.kind === kind);
    const count = (list: Outcome[]) =>
        list.reduce<Record<number, number>>(
            (acc, o) => ((acc[o.status] = (acc[o.status] ?? 0) + 1), acc),
            {},
        );
    const max = (list: Outcome[]) => Math.max(0, ...list.map(o => o.ms));
    process.stdout.write(
        `${label}: reads ${JSON.stringify(count(by("read")))} (max ${max(by("read"))} ms), ` +
            `writes ${JSON.stringify(count(by("write")))} (max ${max(by("write"))} ms)\n`,
    );
}

/** Waits until no order is PENDING; returns how long that took. */
export async function waitUntilSettled(pg: Client, timeoutMs = 15_000): Promise<number> {
    const started = Date.now();
    for (;;) {
        const pending = await pg.query(
            "SELECT count(*)::int AS n FROM orders.orders WHERE status = 'PENDING'",
        );
        if (pending.rows[0].n === 0) return Date.now() - started;
        if (Date.now() - started > timeoutMs) {
            throw new Error(`${pending.rows[0].n} orders still PENDING`);
        }
        await new Promise(resolve => setTimeout(resolve, 250));
    }
}

/**
 * initial stock = stock on the shelf + quantities held by live orders, for every product of the
 * shop, and every held reservation belongs to an order that holds its stock, and the other way round.
 */
export async function expectStockConserved(pg: Client, shop: Shop): Promise<void> {
    const books = await pg.query(
        `SELECT p.id, p.stock,
                COALESCE((SELECT sum((line->>'quantity')::int)
                          FROM orders.orders o, jsonb_array_elements(o.items) line
                          WHERE o.status IN ('CONFIRMED', 'SHIPPED', 'DELIVERED')
                            AND line->>'productId' = p.id::text), 0)::int AS held
         FROM products.products p WHERE p.category = $1`,
        [shop.category],
    );
    expect(books.rows).toHaveLength(shop.productIds.length);
    for (const row of books.rows) {
        expect(row.stock).toBeGreaterThanOrEqual(0);
        expect(row.stock + row.held).toBe(shop.initialStock);
    }
    const orphans = await pg.query(
        `SELECT count(*)::int AS n FROM products.reservations r
         LEFT JOIN orders.orders o ON o.id = r.order_id
         WHERE r.status = 'held' AND (o.id IS NULL OR o.status NOT IN ('CONFIRMED', 'SHIPPED', 'DELIVERED'))`,
    );
    expect(orphans.rows[0].n).toBe(0);
    const unbacked = await pg.query(
        `SELECT count(*)::int AS n FROM orders.orders o
         LEFT JOIN products.reservations r ON r.order_id = o.id AND r.status = 'held'
         WHERE o.status IN ('CONFIRMED', 'SHIPPED', 'DELIVERED') AND r.order_id IS NULL`,
    );
    expect(unbacked.rows[0].n).toBe(0);
}

/** Every order the gateway acknowledged (201, 202) exists, and none of them is PENDING any more. */
export async function expectAcknowledgedOrdersKept(pg: Client, outcomes: Outcome[]): Promise<void> {
    const ids = outcomes.flatMap(o => (o.orderId ? [o.orderId] : []));
    const { rows } = await pg.query(
        "SELECT status, count(*)::int AS n FROM orders.orders WHERE id = ANY($1::uuid[]) GROUP BY status",
        [ids],
    );
    const total = rows.reduce((sum, row) => sum + row.n, 0);
    expect(total).toBe(ids.length);
    expect(rows.filter(row => row.status === "PENDING")).toEqual([]);
}
