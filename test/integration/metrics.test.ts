/**
 * Prometheus metrics of a node: Moleculer's built-in ones plus the gateway's HTTP metrics and the
 * business counters, all moving when requests are made.
 */
import type { ServiceBroker } from "moleculer";
import { createTestBroker, gatewayUrl } from "../support/broker";
import { createTestDatabase, type TestDatabase } from "../support/database";
import { http } from "../support/http";
import { freePort } from "../support/processes";
import { readConfig } from "../../lib/config";

let db: TestDatabase;
let broker: ServiceBroker;
let base: string;
let metricsUrl: string;

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    broker = createTestBroker({
        services: ["api", "users", "products", "orders"],
        env: { METRICS_PORT: String(port) },
    });
    await broker.start();
    base = gatewayUrl(broker);
});

afterAll(async () => {
    await broker.stop();
    await db.drop();
});

async function scrape(): Promise<string> {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    return response.text();
}

/** The value of one sample line, 0 when the series doesn't exist yet. */
function sample(text: string, name: string, labels: Record<string, string>): number {
    const line = text
        .split("\n")
        .find(
            l =>
                l.startsWith(`${name}{`) &&
                Object.entries(labels).every(([key, value]) => l.includes(`${key}="${value}"`)),
        );
    return line ? Number(line.split(" ").pop()) : 0;
}

it("exports valid Prometheus text whose HTTP and business metrics move with traffic", async () => {
    const login = await http(base, "POST", "/api/auth/login", {
        body: { email: readConfig().adminEmail, password: readConfig().adminPassword },
    });
    const token = login.body.accessToken as string;
    const product = await http(base, "POST", "/api/products", {
        token,
        body: { name: "Metered", price: 100, stock: 1 },
    });
    const before = await scrape();
    const listRoute = { method: "GET", route: "/api/products", status: "200" };

    await http(base, "GET", "/api/products");
    await http(base, "GET", "/api/products");
    const items = [{ productId: product.body.id, quantity: 1 }];
    expect((await http(base, "POST", "/api/orders", { token, body: { items } })).status).toBe(201);
    expect((await http(base, "POST", "/api/orders", { token, body: { items } })).status).toBe(409);
    await http(base, "GET", "/api/nowhere");

    const after = await scrape();
    for (const line of after.split("\n").filter(l => l && !l.startsWith("#"))) {
        expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+-]+|NaN|\+Inf$/);
    }
    expect(after).toContain("moleculer_request_total");
    expect(sample(after, "agora_http_requests_total", listRoute)).toBe(
        sample(before, "agora_http_requests_total", listRoute) + 2,
    );
    expect(
        sample(after, "agora_http_request_duration_seconds_bucket", {
            le: "+Inf",
            method: "GET",
            route: "/api/products",
        }),
    ).toBeGreaterThanOrEqual(2);
    expect(
        sample(after, "agora_http_requests_total", { route: "unmatched", status: "404" }),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(after, "agora_orders_placed_total", { outcome: "confirmed" })).toBe(1);
    expect(sample(after, "agora_orders_placed_total", { outcome: "insufficient_stock" })).toBe(1);
    expect(sample(after, "agora_inventory_reservation_shortfalls_total", {})).toBe(1);
    expect(sample(after, "moleculer_cacher_found_total", {})).toBeGreaterThan(
        sample(before, "moleculer_cacher_found_total", {}),
    );
});
