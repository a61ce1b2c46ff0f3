/**
 * What the gateway adds to every answer, on one node as `npm start` runs it (no CACHER, so rate
 * limits count in memory): security headers, `Cache-Control: no-store`, a request id that becomes
 * `ctx.requestID`, CORS from CORS_ORIGINS, and per-IP and per-user limits keyed by the address a
 * trusted proxy saw. Limits shared by several gateways through Redis: test/e2e/rate-limits.test.ts.
 */
import crypto from "node:crypto";
import type { Context, ServiceBroker } from "moleculer";
import { createTestBroker, gatewayUrl } from "../support/broker";
import { createTestDatabase, type TestDatabase } from "../support/database";
import { http, type HttpOptions, type HttpResult } from "../support/http";
import { signAccessToken } from "../../lib/access-token";
import { loadJwtKeys } from "../../lib/jwt-keys";
import { readConfig } from "../../lib/config";

const PER_IP = 5;
const PER_USER = 3;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let db: TestDatabase;
let broker: ServiceBroker;
let base: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
    db = await createTestDatabase();
    Object.assign(process.env, {
        DATABASE_URL: db.url,
        CORS_ORIGINS: "https://shop.example, https://*.agora.test",
        // The test is the proxy: X-Forwarded-For from 127.0.0.1 names the client.
        TRUSTED_PROXIES: "loopback",
        RATE_LIMIT_PER_IP: String(PER_IP),
        RATE_LIMIT_PER_USER: String(PER_USER),
    });
    broker = createTestBroker({ services: ["api", "products"] });
    // What the services see of a request: its id, through GraphQL.
    broker.createService({
        name: "probe",
        actions: {
            requestId: {
                graphql: { query: "probeRequestId: String" },
                handler: (ctx: Context) => ctx.requestID,
            },
        },
    });
    await broker.start();
    base = gatewayUrl(broker);
});

afterAll(async () => {
    await broker?.stop();
    await db?.drop();
    process.env = savedEnv;
});

/** A client address of its own for each call unless given: tests don't share rate counters. */
function fromClient(
    method: string,
    path: string,
    options: HttpOptions & { client?: string } = {},
): Promise<HttpResult> {
    const client = options.client ?? `198.18.${crypto.randomInt(256)}.${crypto.randomInt(256)}`;
    return http(base, method, path, {
        ...options,
        headers: { "X-Forwarded-For": client, ...options.headers },
    });
}

const graphqlBody = (query: string) => ({ body: { query } });

function tokenFor(id = crypto.randomUUID()): string {
    const config = readConfig();
    return signAccessToken(
        { id, email: `${id}@x.io`, role: "user", sessionId: crypto.randomUUID() },
        loadJwtKeys(config),
        config,
    ).token;
}

describe("security headers", () => {
    it("come with every answer: data, errors, unknown routes, health and GraphQL", async () => {
        const answers = await Promise.all([
            fromClient("GET", "/api/products"),
            fromClient("GET", "/api/nowhere"),
            fromClient("GET", "/api/products", { token: "not-a-token" }),
            fromClient("POST", "/api/products", {
                raw: "{oops",
                headers: { "Content-Type": "application/json" },
            }),
            fromClient("GET", "/health/live"),
            fromClient("POST", "/graphql", graphqlBody("{ health }")),
        ]);
        expect(answers.map(answer => answer.status)).toEqual([200, 404, 401, 400, 200, 200]);
        for (const { headers } of answers) {
            expect(headers.get("content-security-policy")).toBe(
                "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'",
            );
            expect(headers.get("x-content-type-options")).toBe("nosniff");
            expect(headers.get("x-frame-options")).toBe("DENY");
            expect(headers.get("strict-transport-security")).toMatch(/^max-age=\d+/);
            expect(headers.get("referrer-policy")).toBe("no-referrer");
            expect(headers.get("cross-origin-opener-policy")).toBe("same-origin");
            expect(headers.get("cache-control")).toBe("no-store");
            expect(headers.get("x-powered-by")).toBeNull();
            expect(headers.get("x-request-id")).toMatch(UUID);
        }
    });

    it("leave the content policy off the GraphQL playground page only (it runs CDN scripts)", async () => {
        const page = await fromClient("GET", "/graphql", { headers: { Accept: "text/html" } });
        expect(page.status).toBe(200);
        expect(page.headers.get("content-type")).toMatch(/^text\/html/);
        expect(page.headers.get("content-security-policy")).toBeNull();
        expect(page.headers.get("x-frame-options")).toBe("DENY");
        expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    });
});

describe("request ids", () => {
    const probe = (headers: Record<string, string> = {}) =>
        fromClient("POST", "/graphql", { ...graphqlBody("{ probeRequestId }"), headers });

    it("keep the client's id, answer it back and make it the services' ctx.requestID", async () => {
        const answer = await probe({ "X-Request-Id": "checkout-7f3a.42" });
        expect(answer.headers.get("x-request-id")).toBe("checkout-7f3a.42");
        expect(answer.body).toEqual({ data: { probeRequestId: "checkout-7f3a.42" } });
    });

    it("are made up when missing, and replace one too long or with unsafe characters", async () => {
        const answers = await Promise.all([
            probe(),
            probe(),
            probe({ "X-Request-Id": "r".repeat(129) }),
            probe({ "X-Request-Id": "<img src=x>" }),
            probe({ "X-Request-Id": "two words" }),
        ]);
        const ids = answers.map(answer => answer.headers.get("x-request-id")!);
        for (const [index, answer] of answers.entries()) {
            expect(ids[index]).toMatch(UUID);
            expect(answer.body.data.probeRequestId).toBe(ids[index]);
        }
        expect(new Set(ids).size).toBe(ids.length);
    });
});

describe("CORS", () => {
    const preflight = (origin: string, path = "/api/products") =>
        fromClient("OPTIONS", path, {
            headers: {
                Origin: origin,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        });

    it("answers a configured origin's preflight, and its wildcard subdomains'", async () => {
        for (const origin of ["https://shop.example", "https://admin.agora.test"]) {
            const answer = await preflight(origin);
            expect(answer.status).toBe(204);
            expect(answer.headers.get("access-control-allow-origin")).toBe(origin);
            expect(answer.headers.get("vary")).toMatch(/Origin/);
            expect(answer.headers.get("access-control-allow-methods")).toMatch(/PATCH/);
            expect(answer.headers.get("access-control-allow-headers")).toBe(
                "Authorization, Content-Type, Idempotency-Key, X-Request-Id",
            );
            expect(answer.headers.get("access-control-max-age")).toBe("600");
            expect(answer.headers.get("access-control-allow-credentials")).toBeNull();
        }
    });

    it("lets a configured origin read the request id and limit headers", async () => {
        const answer = await fromClient("GET", "/api/products", {
            headers: { Origin: "https://shop.example" },
        });
        expect(answer.status).toBe(200);
        expect(answer.headers.get("access-control-allow-origin")).toBe("https://shop.example");
        expect(answer.headers.get("access-control-expose-headers")).toBe(
            "X-Request-Id, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset",
        );
    });

    it("refuses any other origin with 403 in the contract's shape, on REST and GraphQL", async () => {
        for (const path of ["/api/products", "/graphql"]) {
            const answer = await preflight("https://evil.example", path);
            expect(answer.status).toBe(403);
            expect(answer.body).toMatchObject({ code: 403, type: "ORIGIN_NOT_ALLOWED" });
            expect(answer.headers.get("access-control-allow-origin")).toBeNull();
        }
    });
});

describe("rate limits on one node (memory counters)", () => {
    it("show the client's standing on every answer but health, and refuse the one over", async () => {
        const client = "198.19.0.1";
        const answers: HttpResult[] = [];
        for (const [method, path, options] of [
            ["GET", "/api/products", {}],
            ["POST", "/graphql", graphqlBody("{ health }")],
            ["GET", "/api/nowhere", {}],
            ["POST", "/api/products", { body: { name: "Kettle", price: 100 } }],
            ["POST", "/graphql", graphqlBody("{ health }")],
        ] as const) {
            answers.push(await fromClient(method, path, { ...options, client }));
            expect((await fromClient("GET", "/health/ready", { client })).status).toBe(200);
        }
        expect(answers.map(answer => answer.status)).toEqual([200, 200, 404, 401, 200]);
        answers.forEach((answer, index) => {
            expect(answer.headers.get("ratelimit-limit")).toBe(String(PER_IP));
            expect(answer.headers.get("ratelimit-remaining")).toBe(String(PER_IP - 1 - index));
            expect(Number(answer.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
        });
        const health = await fromClient("GET", "/health/live", { client });
        expect(health.headers.get("ratelimit-limit")).toBeNull();

        const refused = await fromClient("POST", "/graphql", {
            ...graphqlBody("{ health }"),
            client,
        });
        expect(refused.status).toBe(429);
        expect(refused.body).toEqual({
            name: "RateLimitedError",
            message: "Too many requests, try again later",
            code: 429,
            type: "RATE_LIMITED",
            data: { retryAfter: Number(refused.headers.get("retry-after")) },
        });
        expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
        expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
        expect(refused.headers.get("ratelimit-remaining")).toBe("0");
        expect(refused.headers.get("x-request-id")).toMatch(UUID);
        expect(refused.headers.get("x-content-type-options")).toBe("nosniff");
    });

    it("count what a trusted proxy saw, not what the client wrote before it", async () => {
        const statuses: number[] = [];
        for (let i = 0; i <= PER_IP; i++) {
            const spoofed = `203.0.113.${i}, 198.19.0.2`;
            statuses.push((await fromClient("GET", "/api/products", { client: spoofed })).status);
        }
        expect(statuses).toEqual([...Array(PER_IP).fill(200), 429]);
    });

    it("count an IPv6 client by its /64", async () => {
        const statuses: number[] = [];
        for (let i = 1; i <= PER_IP + 1; i++) {
            const client = `2001:db8:77:1::${i.toString(16)}`;
            statuses.push((await fromClient("GET", "/api/products", { client })).status);
        }
        expect(statuses).toEqual([...Array(PER_IP).fill(200), 429]);
        const neighbour = await fromClient("GET", "/api/products", { client: "2001:db8:77:2::1" });
        expect(neighbour.status).toBe(200);
    });

    it("count a signed-in user across addresses", async () => {
        const token = tokenFor();
        const answers: HttpResult[] = [];
        for (let i = 0; i <= PER_USER; i++) {
            answers.push(await fromClient("GET", "/api/products", { token }));
        }
        expect(answers.map(answer => answer.status)).toEqual([...Array(PER_USER).fill(200), 429]);
        // Each address has made one request: the user's counter is the one shown.
        expect(answers[0].headers.get("ratelimit-limit")).toBe(String(PER_USER));
        expect((await fromClient("GET", "/api/products", { token: tokenFor() })).status).toBe(200);
    });
});
