/**
 * Prometheus metrics: Moleculer's built-in ones plus the gateway's HTTP metrics and the business
 * metrics (orders, shortfalls, cache lookups, orders by status, outbox backlog), moving when
 * requests are made; and valid text on every kind of node of a cluster.
 */
import type { ServiceBroker } from "moleculer";
import { createTestBroker, gatewayUrl } from "../support/broker";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { http } from "../support/http";
import { freePort } from "../support/processes";
import { readConfig, type ServiceName } from "../../lib/config";
import { SAMPLE_INTERVAL_MS } from "../../mixins/metrics.mixin";
import type { OutboxBacklog } from "../../types";

async function scrape(metricsUrl: string): Promise<string> {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    return response.text();
}

/**
 * Every line is a comment (`# HELP`, `# TYPE`) or a sample of a metric declared above it, in the
 * text format Prometheus parses.
 */
function expectValidPrometheusText(text: string): void {
    const declared = new Set<string>();
    for (const line of text.split("\n").filter(Boolean)) {
        const type =
            /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(
                line,
            );
        if (type) declared.add(type[1]);
        if (line.startsWith("#")) continue;
        expect(line).toMatch(
            /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.]+(e[+-]?\d+)?|NaN|[+-]Inf)( -?\d+)?$/,
        );
        const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0];
        // Moleculer's reporter adds _min, _mean, … and _rate beside a metric's own samples.
        const family = name.replace(/_(bucket|sum|count|min|mean|variance|stddev|max|rate)$/, "");
        expect({ line, declared: declared.has(name) || declared.has(family) }).toEqual({
            line,
            declared: true,
        });
    }
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

describe("one node hosting every service", () => {
    let db: TestDatabase;
    let broker: ServiceBroker;
    let base: string;
    let metricsUrl: string;

    beforeAll(async () => {
        db = await createTestDatabase();
        process.env.DATABASE_URL = db.url;
        // The relay stays idle, so that the outbox keeps a backlog to measure.
        process.env.OUTBOX_RELAY_INTERVAL_MS = String(3600_000);
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

    it("exports valid Prometheus text whose HTTP and business metrics move with traffic", async () => {
        const login = await http(base, "POST", "/api/auth/login", {
            body: { email: readConfig().adminEmail, password: readConfig().adminPassword },
        });
        const token = login.body.accessToken as string;
        const product = await http(base, "POST", "/api/products", {
            token,
            body: { name: "Metered", price: 100, stock: 1 },
        });
        const before = await scrape(metricsUrl);
        const listRoute = { method: "GET", route: "/api/products", status: "200" };

        await http(base, "GET", "/api/products");
        await http(base, "GET", "/api/products");
        const items = [{ productId: product.body.id, quantity: 1 }];
        expect((await http(base, "POST", "/api/orders", { token, body: { items } })).status).toBe(
            201,
        );
        expect((await http(base, "POST", "/api/orders", { token, body: { items } })).status).toBe(
            409,
        );
        await http(base, "GET", "/api/nowhere");

        const after = await scrape(metricsUrl);
        expectValidPrometheusText(after);
        expect(after).toContain("moleculer_request_total");
        // Action latency is a bucketed histogram (Prometheus derives quantiles from it); the
        // in-process quantiles Moleculer would keep are dropped (lib/metrics.ts).
        const listAction = { action: "products.list", type: "local", le: "+Inf" };
        expect(sample(after, "moleculer_request_time_bucket", listAction)).toBeGreaterThan(
            sample(before, "moleculer_request_time_bucket", listAction),
        );
        expect(after).toMatch(/^# TYPE moleculer_request_time histogram$/m);
        expect(after).not.toMatch(/^moleculer_(request|event_received)_time\{[^}]*quantile=/m);
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
        expect(sample(after, "agora_orders_placed_total", { outcome: "insufficient_stock" })).toBe(
            1,
        );
        expect(sample(after, "agora_inventory_reservation_shortfalls_total", {})).toBe(1);
        expect(sample(after, "moleculer_cacher_found_total", {})).toBeGreaterThan(
            sample(before, "moleculer_cacher_found_total", {}),
        );
        // The first listing after the product was written misses (the write cleaned the cache), the
        // second is a hit.
        const lookups = (result: string) => ({ action: "products.list", result });
        for (const result of ["hit", "miss"]) {
            expect(sample(after, "agora_cache_lookups_total", lookups(result))).toBe(
                sample(before, "agora_cache_lookups_total", lookups(result)) + 1,
            );
        }
    });

    it("samples orders by status and the outbox backlog of each service", async () => {
        // Sampled every few seconds: wait for a sample that has seen the confirmed order.
        const text = await waitForScrape(
            metricsUrl,
            t => sample(t, "agora_orders_by_status", { status: "CONFIRMED" }) === 1,
        );
        expect(sample(text, "agora_orders_by_status", { status: "PENDING" })).toBe(0);
        expect(text).toMatch(/^agora_orders_by_status\{[^}]*status="CANCELLED"[^}]*\} 0/m);

        // Creating the product and confirming the order each wrote an inventory.updated event, and
        // the idle relay has sent none.
        const backlog = await broker.call<OutboxBacklog>("products.outboxBacklog");
        expect(backlog.unsent).toBeGreaterThanOrEqual(2);
        expect(backlog.oldestAgeSeconds).toBeGreaterThan(0);
        const withBacklog = await waitForScrape(
            metricsUrl,
            t => sample(t, "agora_outbox_unsent_events", { service: "products" }) >= backlog.unsent,
        );
        expect(
            sample(withBacklog, "agora_outbox_oldest_unsent_age_seconds", { service: "products" }),
        ).toBeGreaterThan(0);
        for (const service of ["users", "orders"]) {
            expect(withBacklog).toMatch(
                new RegExp(`^agora_outbox_unsent_events\\{[^}]*service="${service}"`, "m"),
            );
        }
    });
});

describe("one node of each kind over NATS", () => {
    const namespace = testNamespace();
    const kinds: ServiceName[] = ["api", "users", "products", "orders"];
    const nodes: { kind: ServiceName; broker: ServiceBroker; metricsUrl: string }[] = [];
    let db: TestDatabase;

    beforeAll(async () => {
        db = await createTestDatabase();
        process.env.DATABASE_URL = db.url;
        for (const kind of kinds) {
            const port = await freePort();
            const broker = createTestBroker({
                namespace,
                transporter: NATS_URL,
                cacher: REDIS_URL,
                nodeID: `${kind}-metrics`,
                services: [kind],
                env: { METRICS_PORT: String(port) },
            });
            nodes.push({ kind, broker, metricsUrl: `http://127.0.0.1:${port}/metrics` });
        }
        await Promise.all(nodes.map(node => node.broker.start()));
        await nodes[0].broker.waitForServices(["users", "products", "orders"], 20_000);
    });

    afterAll(async () => {
        await Promise.all(nodes.map(node => node.broker.stop()));
        await db?.drop();
        await cleanNamespace(namespace);
    });

    it("serves valid Prometheus text with request counts on every node kind", async () => {
        const base = gatewayUrl(nodes[0].broker);
        const login = await http(base, "POST", "/api/auth/login", {
            body: { email: readConfig().adminEmail, password: readConfig().adminPassword },
        });
        expect(login.status).toBe(200);
        const token = login.body.accessToken as string;
        expect((await http(base, "GET", "/api/products")).status).toBe(200);
        expect((await http(base, "GET", "/api/orders", { token })).status).toBe(200);

        for (const { kind, metricsUrl } of nodes) {
            const text = await scrape(metricsUrl);
            expectValidPrometheusText(text);
            // The gateway counts the calls it makes, the others the calls they serve.
            const type = kind === "api" ? "remote" : "local";
            const served = text
                .split("\n")
                .filter(line => line.startsWith("moleculer_request_total{"))
                .filter(line => line.includes(`type="${type}"`))
                .filter(line => kind === "api" || line.includes(`service="${kind}"`))
                .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
            expect({ kind, served: served > 0 }).toEqual({ kind, served: true });
            expect(text).toContain(`nodeID="${kind}-metrics"`);
            expect(text).toContain("moleculer_transporter_packets_sent_total");
        }
    });
});

/** Scrapes until `done` holds for the text (the gauges are sampled every few seconds). */
async function waitForScrape(metricsUrl: string, done: (text: string) => boolean): Promise<string> {
    const deadline = Date.now() + 4 * SAMPLE_INTERVAL_MS;
    for (;;) {
        const text = await scrape(metricsUrl);
        if (done(text) || Date.now() > deadline) return text;
        await new Promise(resolve => setTimeout(resolve, 250));
    }
}
