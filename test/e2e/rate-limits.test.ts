/**
 * Rate limits across two real gateway processes that share one Redis (a private one, so the test
 * can take it away), with a users node behind them over NATS. Both gateways trust the test as
 * their proxy (TRUSTED_PROXIES=loopback), so X-Forwarded-For names a different client per case.
 * The limits are small so that a few requests reach them.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
    cleanNatsNamespace,
    createTestDatabase,
    NATS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { http, type HttpOptions, type HttpResult } from "../support/http";
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "../support/processes";
import { privateRedis, type PrivateServer } from "../support/servers";

jest.setTimeout(120_000);

const PER_IP = 12;
const PER_USER = 8;
const AUTH_PER_IP = 6;
const AUTH_PER_EMAIL = 3;
const AUTH_WINDOW_SECONDS = 6;

let db: TestDatabase;
let redis: PrivateServer;
let dataDir: string;
let namespace: string;
const nodes: NodeProcess[] = [];
/** The two gateways' base URLs. */
let gateways: [string, string];

beforeAll(async () => {
    [db, redis] = await Promise.all([createTestDatabase(), privateRedis()]);
    await redis.start();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-rate-limits-"));
    namespace = testNamespace();
    const shared = {
        TRANSPORTER: NATS_URL,
        CACHER: redis.url,
        DATABASE_URL: db.url,
        NAMESPACE: namespace,
        DATA_DIR: dataDir,
        ADMIN_EMAIL: "root@agora.test",
        ADMIN_PASSWORD: "a long admin passphrase",
        METRICS_PORT: "0",
        BCRYPT_ROUNDS: "4",
        TRUSTED_PROXIES: "loopback",
        RATE_LIMIT_WINDOW_SECONDS: "60",
        RATE_LIMIT_PER_IP: String(PER_IP),
        RATE_LIMIT_PER_USER: String(PER_USER),
        RATE_LIMIT_AUTH_WINDOW_SECONDS: String(AUTH_WINDOW_SECONDS),
        RATE_LIMIT_AUTH_PER_IP: String(AUTH_PER_IP),
        RATE_LIMIT_AUTH_PER_EMAIL: String(AUTH_PER_EMAIL),
    };
    const healthPort = await freePort();
    const users = startNode("users", {
        ...shared,
        SERVICES: "users",
        NODE_ID: "users-rl",
        HEALTH_PORT: String(healthPort),
    });
    nodes.push(users);
    await waitUntilHealthy(users, `http://127.0.0.1:${healthPort}/health/ready`);
    const bases = await Promise.all(
        ["a", "b"].map(async name => {
            const port = await freePort();
            const node = startNode(`api-${name}`, {
                ...shared,
                SERVICES: "api",
                NODE_ID: `api-rl-${name}`,
                PORT: String(port),
            });
            nodes.push(node);
            const base = `http://127.0.0.1:${port}`;
            await waitUntilHealthy(node, `${base}/health/ready`);
            return base;
        }),
    );
    gateways = [bases[0], bases[1]];
    // Until both gateways have the users service in their GraphQL schema and answer a query of
    // their own: right after start, a gateway's first call over NATS has been seen to time out.
    for (const base of gateways) {
        const deadline = Date.now() + 30_000;
        while (!(await schemaHasLogin(base)) || !(await answersHealth(base))) {
            if (Date.now() > deadline) throw new Error(`${base} never saw the users service`);
            await new Promise(resolve => setTimeout(resolve, 250));
        }
    }
});

afterAll(async () => {
    await Promise.all(nodes.map(node => node.stop()));
    await redis?.kill();
    await db?.drop();
    if (namespace) await cleanNatsNamespace(namespace);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

async function schemaHasLogin(base: string): Promise<boolean> {
    const answer = await http(base, "POST", "/graphql", {
        body: { query: "{ __schema { mutationType { fields { name } } } }" },
        headers: { "X-Forwarded-For": newClient() },
    });
    const fields = answer.body?.data?.__schema?.mutationType?.fields ?? [];
    return fields.some((field: { name: string }) => field.name === "login");
}

async function answersHealth(base: string): Promise<boolean> {
    const answer = await http(base, "POST", "/graphql", {
        ...health,
        headers: { "X-Forwarded-For": newClient() },
    });
    return answer.body?.data?.health === "ok";
}

/** A client address no other case uses (TEST-NET and benchmarking ranges: never routed). */
function newClient(): string {
    return `198.18.${crypto.randomInt(256)}.${crypto.randomInt(1, 255)}`;
}

function send(
    gateway: 0 | 1,
    client: string,
    method: string,
    urlPath: string,
    options: HttpOptions = {},
): Promise<HttpResult> {
    return http(gateways[gateway], method, urlPath, {
        ...options,
        headers: { "X-Forwarded-For": client, ...options.headers },
    });
}

const health = { body: { query: "{ health }" } };
const loginMutation = (email: string, password: string) => ({
    body: {
        query: `mutation($input: LoginInput!) { login(input: $input) { accessToken } }`,
        variables: { input: { email, password } },
    },
});

async function registerUser(): Promise<{ email: string; password: string }> {
    const account = {
        email: `rl-${crypto.randomBytes(5).toString("hex")}@example.com`,
        password: "a long enough password",
    };
    const created = await send(0, newClient(), "POST", "/api/auth/register", {
        body: { ...account, name: "Limited" },
    });
    expect(created.status).toBe(201);
    return account;
}

function expectRateLimited(answer: HttpResult, maxRetryAfter: number): number {
    expect(answer.status).toBe(429);
    expect(answer.body).toMatchObject({ code: 429, type: "RATE_LIMITED" });
    const retryAfter = Number(answer.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(maxRetryAfter);
    expect(answer.body.data).toEqual({ retryAfter });
    expect(answer.headers.get("ratelimit-remaining")).toBe("0");
    return retryAfter;
}

describe("limits shared by two gateways through Redis", () => {
    it("count a client's requests on either gateway, REST and GraphQL alike, once", async () => {
        const client = newClient();
        const remaining: string[] = [];
        for (let i = 0; i < PER_IP; i++) {
            const gateway = (i % 2) as 0 | 1;
            const answer =
                i % 3 === 0
                    ? await send(gateway, client, "POST", "/graphql", health)
                    : await send(gateway, client, "GET", "/api/users/me");
            expect(answer.status).toBe(i % 3 === 0 ? 200 : 401);
            expect(answer.headers.get("ratelimit-limit")).toBe(String(PER_IP));
            remaining.push(answer.headers.get("ratelimit-remaining")!);
        }
        expect(remaining).toEqual(Array.from({ length: PER_IP }, (_, i) => String(PER_IP - 1 - i)));
        expectRateLimited(await send(0, client, "GET", "/api/users/me"), 60);
        expectRateLimited(await send(1, client, "POST", "/graphql", health), 60);
        // Another client is not affected.
        expect((await send(1, newClient(), "POST", "/graphql", health)).status).toBe(200);
    });

    it("count a signed-in user across gateways and addresses", async () => {
        const account = await registerUser();
        const login = await send(1, newClient(), "POST", "/api/auth/login", { body: account });
        expect(login.status).toBe(200);
        const token = login.body.accessToken as string;
        for (let i = 0; i < PER_USER; i++) {
            const answer = await send((i % 2) as 0 | 1, newClient(), "GET", "/api/users/me", {
                token,
            });
            expect(answer.status).toBe(200);
            expect(answer.headers.get("ratelimit-remaining")).toBe(String(PER_USER - 1 - i));
        }
        expectRateLimited(await send(0, newClient(), "GET", "/api/users/me", { token }), 60);
    });

    it("allow few register and login attempts per email, over both gateways, REST and GraphQL, and lift after the window", async () => {
        // Registering was the email's first attempt; two wrong passwords make three.
        const account = await registerUser();
        const wrong = { ...account, password: "not the password" };
        expect(
            (await send(0, newClient(), "POST", "/api/auth/login", { body: wrong })).status,
        ).toBe(401);
        const viaGraphql = await send(
            1,
            newClient(),
            "POST",
            "/graphql",
            loginMutation(wrong.email, wrong.password),
        );
        expect(viaGraphql.body.errors[0].extensions.code).toBe("INVALID_CREDENTIALS");

        // Three attempts made: even the right password, from a fresh address, must wait now.
        const refused = await send(1, newClient(), "POST", "/api/auth/login", { body: account });
        const retryAfter = expectRateLimited(refused, AUTH_WINDOW_SECONDS);
        const refusedGraphql = await send(
            0,
            newClient(),
            "POST",
            "/graphql",
            loginMutation(account.email, account.password),
        );
        expect(refusedGraphql.status).toBe(200);
        expect(refusedGraphql.body.data.login).toBeNull();
        expect(refusedGraphql.body.errors).toEqual([
            expect.objectContaining({
                path: ["login"],
                extensions: expect.objectContaining({ code: "RATE_LIMITED", status: 429 }),
            }),
        ]);
        expect(Number(refusedGraphql.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

        // Once the window the 429 named has passed, the account may log in again.
        await new Promise(resolve => setTimeout(resolve, retryAfter * 1000 + 250));
        const after = await send(0, newClient(), "POST", "/api/auth/login", { body: account });
        expect(after.status).toBe(200);
        expect(after.body.accessToken).toEqual(expect.any(String));
    });

    it("allow few login, register and refresh attempts per address, whatever the email", async () => {
        const client = newClient();
        const attempts: [string, object][] = [
            ["/api/auth/login", { email: "nobody-1@example.com", password: "whatever1" }],
            ["/api/auth/register", { email: "not-an-email", password: "x", name: "" }],
            ["/api/auth/refresh", { refreshToken: "never-issued" }],
            ["/api/auth/login", { email: "nobody-2@example.com", password: "whatever2" }],
            ["/api/auth/refresh", { refreshToken: "never-issued-either" }],
            ["/api/auth/login", { email: "nobody-3@example.com", password: "whatever3" }],
        ];
        expect(attempts).toHaveLength(AUTH_PER_IP);
        const statuses: number[] = [];
        for (const [index, [urlPath, body]] of attempts.entries()) {
            statuses.push(
                (await send((index % 2) as 0 | 1, client, "POST", urlPath, { body })).status,
            );
        }
        expect(statuses).toEqual([401, 422, 401, 401, 401, 401]);
        expectRateLimited(
            await send(1, client, "POST", "/api/auth/refresh", { body: { refreshToken: "x" } }),
            AUTH_WINDOW_SECONDS,
        );
        // Other routes have their own, looser count.
        expect((await send(0, client, "POST", "/graphql", health)).status).toBe(200);
    });
});

describe("without Redis", () => {
    it("still answers, counting on each gateway alone, and shares counts again once Redis is back", async () => {
        await redis.kill();
        const client = newClient();
        for (let i = 0; i < PER_IP; i++) {
            const answer = await send(0, client, "POST", "/graphql", health);
            expect(answer.status).toBe(200);
            expect(answer.headers.get("ratelimit-remaining")).toBe(String(PER_IP - 1 - i));
        }
        expectRateLimited(await send(0, client, "POST", "/graphql", health), 60);
        // The other gateway has its own count while Redis is away.
        const other = await send(1, client, "POST", "/graphql", health);
        expect(other.status).toBe(200);
        expect(other.headers.get("ratelimit-remaining")).toBe(String(PER_IP - 1));

        await redis.start();
        // Shared again: one request on each gateway leaves a fresh client two fewer.
        const deadline = Date.now() + 30_000;
        for (;;) {
            const fresh = newClient();
            await send(0, fresh, "POST", "/graphql", health);
            const second = await send(1, fresh, "POST", "/graphql", health);
            if (second.headers.get("ratelimit-remaining") === String(PER_IP - 2)) break;
            if (Date.now() > deadline) throw new Error("the gateways never shared counts again");
            await new Promise(resolve => setTimeout(resolve, 250));
        }
    });
});
