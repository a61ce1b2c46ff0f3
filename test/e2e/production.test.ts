/**
 * `NODE_ENV=production` as real processes: a node with missing or weak secrets refuses to start
 * (exit 1, every reason named, nothing created), and a sound two-node cluster (gateway + a node
 * with users, products and orders) answers without playground, stack traces or internal
 * messages, and writes JSON log lines that carry the request's id on both nodes.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "pg";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { graphql, http } from "../support/http";
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "../support/processes";
import { rsaKeyPair } from "../support/keys";

jest.setTimeout(120_000);

const keys = rsaKeyPair();
const ADMIN = { email: "ops@shop.example", password: "a long and unguessable passphrase" };

let dir: string;
let privateKeyFile: string;
let publicKeyFile: string;

beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-production-"));
    privateKeyFile = path.join(dir, "jwt-private.pem");
    publicKeyFile = path.join(dir, "jwt-public.pem");
    fs.writeFileSync(privateKeyFile, keys.privateKey);
    fs.writeFileSync(publicKeyFile, keys.publicKey);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Settings a test process must not inherit from the runner's environment. */
const CLEAN = {
    NODE_ENV: "production",
    DATABASE_URL: "",
    TRANSPORTER: "",
    CACHER: "",
    JWT_PRIVATE_KEY: "",
    JWT_PUBLIC_KEY: "",
    JWT_PRIVATE_KEY_FILE: "",
    JWT_PUBLIC_KEY_FILE: "",
    ADMIN_EMAIL: "",
    ADMIN_PASSWORD: "",
    BCRYPT_ROUNDS: "",
    METRICS_PORT: "0",
    LOGLEVEL: "info",
};

describe("a production node with missing or weak secrets", () => {
    /** Starts a node and waits for it to exit; its code and what it printed. */
    async function refusedStart(env: Record<string, string>) {
        const dataDir = fs.mkdtempSync(path.join(dir, "data-"));
        const node = startNode("refused", {
            ...CLEAN,
            DATA_DIR: dataDir,
            PORT: String(await freePort()),
            ...env,
        });
        const exited = new Promise<number | null>(resolve =>
            node.child.once("exit", code => resolve(code)),
        );
        const deadline = new Promise<"still running">(resolve =>
            setTimeout(() => resolve("still running"), 30_000).unref(),
        );
        const code = await Promise.race([exited, deadline]);
        await node.stop("SIGKILL");
        return { code, logs: node.logs(), created: fs.readdirSync(dataDir) };
    }

    it.each<[string, Record<string, string>, RegExp[]]>([
        ["nothing set at all", {}, [/No JWT keys in the environment/, /ADMIN_PASSWORD is not set/]],
        [
            "the k8s Secret template's placeholders",
            {
                JWT_PRIVATE_KEY: "change-me (PEM of the RS256 private key)",
                JWT_PUBLIC_KEY: "change-me (PEM of the RS256 public key)",
                ADMIN_EMAIL: "admin@agora.local",
                ADMIN_PASSWORD: "change-me-admin",
            },
            [/JWT_PRIVATE_KEY is not a PEM private key/, /ADMIN_PASSWORD is still a change-me/],
        ],
        [
            "real keys but a short admin password",
            {
                JWT_PRIVATE_KEY_FILE: "<private>",
                JWT_PUBLIC_KEY_FILE: "<public>",
                ADMIN_EMAIL: ADMIN.email,
                ADMIN_PASSWORD: "s3cret!",
            },
            [/ADMIN_PASSWORD is shorter than 12 characters/],
        ],
        [
            "a gateway without the public key",
            { SERVICES: "api" },
            [/No JWT keys in the environment/],
        ],
        [
            "a key file that isn't there",
            {
                SERVICES: "api",
                JWT_PUBLIC_KEY_FILE: "/nowhere/jwt-public.pem",
            },
            [/JWT_PUBLIC_KEY_FILE: can't read \/nowhere\/jwt-public\.pem/],
        ],
    ])("refuses to start with %s, saying why, before creating anything", async (_, env, why) => {
        const resolved = Object.fromEntries(
            Object.entries(env).map(([name, value]) => [
                name,
                value.replace("<private>", privateKeyFile).replace("<public>", publicKeyFile),
            ]),
        );
        const { code, logs, created } = await refusedStart(resolved);
        expect(code).toBe(1);
        expect(logs).toContain("Agora refuses to start in production");
        for (const reason of why) expect(logs).toMatch(reason);
        // Neither a generated key nor an embedded database was made.
        expect(created).toEqual([]);
    });
});

describe("a production cluster", () => {
    let db: TestDatabase;
    let namespace: string;
    let base: string;
    let gateway: NodeProcess;
    let backend: NodeProcess;

    beforeAll(async () => {
        db = await createTestDatabase();
        namespace = testNamespace();
        const shared = {
            ...CLEAN,
            TRANSPORTER: NATS_URL,
            CACHER: REDIS_URL,
            NAMESPACE: namespace,
            DATA_DIR: fs.mkdtempSync(path.join(dir, "data-")),
            JWT_PUBLIC_KEY_FILE: publicKeyFile,
        };
        const healthPort = await freePort();
        backend = startNode("backend", {
            ...shared,
            SERVICES: "users,products,orders",
            NODE_ID: "backend-prod",
            HEALTH_PORT: String(healthPort),
            DATABASE_URL: db.url,
            JWT_PRIVATE_KEY_FILE: privateKeyFile,
            ADMIN_EMAIL: ADMIN.email,
            ADMIN_PASSWORD: ADMIN.password,
        });
        const port = await freePort();
        base = `http://127.0.0.1:${port}`;
        // Debug on the gateway: moleculer-web logs every request it routes.
        gateway = startNode("gateway", {
            ...shared,
            SERVICES: "api",
            NODE_ID: "api-prod",
            PORT: String(port),
            LOGLEVEL: "debug",
        });
        await waitUntilHealthy(backend, `http://127.0.0.1:${healthPort}/health/ready`);
        await waitUntilHealthy(gateway, `${base}/health/ready`);
        const deadline = Date.now() + 30_000;
        while ((await http(base, "GET", "/api/products")).status !== 200) {
            if (Date.now() > deadline) throw new Error("the gateway never reached products");
            await new Promise(resolve => setTimeout(resolve, 250));
        }
    });

    afterAll(async () => {
        await Promise.all([gateway?.stop(), backend?.stop()]);
        await db?.drop();
        if (namespace) await cleanNamespace(namespace);
    });

    it("serves no playground, with a content policy that allows nothing", async () => {
        const page = await http(base, "GET", "/graphql", { headers: { Accept: "text/html" } });
        expect(page.status).toBe(405);
        expect(page.body).toMatchObject({ code: 405, type: "METHOD_NOT_ALLOWED" });
        expect(page.headers.get("content-security-policy")).toMatch(/^default-src 'none'/);
        expect(page.headers.get("x-frame-options")).toBe("DENY");
    });

    it("puts the request's id on the JSON log lines of every node that handled it", async () => {
        const login = await http(base, "POST", "/api/auth/login", { body: ADMIN });
        expect(login.status).toBe(200);
        const first = login.body.refreshToken as string;
        expect(
            (await http(base, "POST", "/api/auth/refresh", { body: { refreshToken: first } }))
                .status,
        ).toBe(200);
        // A rotated token used again: the users service logs a warning for it.
        const requestId = `reuse-${crypto.randomBytes(6).toString("hex")}`;
        const reuse = await http(base, "POST", "/api/auth/refresh", {
            body: { refreshToken: first },
            headers: { "X-Request-Id": requestId },
        });
        expect(reuse.status).toBe(401);
        expect(reuse.headers.get("x-request-id")).toBe(requestId);

        const linesOf = (node: NodeProcess) =>
            node
                .logs()
                .split("\n")
                .filter(line => line.includes(requestId))
                .map(line => JSON.parse(line));
        const deadline = Date.now() + 10_000;
        while (!linesOf(backend).length && Date.now() < deadline) {
            await new Promise(resolve => setTimeout(resolve, 100));
        }
        const backendLines = linesOf(backend);
        const gatewayLines = linesOf(gateway);
        expect(backendLines).toContainEqual(
            expect.objectContaining({
                level: "warn",
                nodeID: "backend-prod",
                requestId,
                msg: expect.stringMatching(/rotated refresh token was used again/),
            }),
        );
        expect(gatewayLines.length).toBeGreaterThan(0);
        for (const line of [...backendLines, ...gatewayLines]) {
            expect(line).toMatchObject({ requestId, ts: expect.any(Number) });
        }
        expect(gatewayLines.every(line => line.nodeID === "api-prod")).toBe(true);
    });

    it("says only 'Internal server error' when a service fails, on REST and GraphQL", async () => {
        // A real failure inside the products service: its tables are gone.
        const pg = new Client({ connectionString: db.url });
        await pg.connect();
        try {
            await pg.query("DROP SCHEMA products CASCADE");
        } finally {
            await pg.end();
        }
        const id = crypto.randomUUID();
        const rest = await http(base, "GET", `/api/products/${id}`);
        expect(rest.status).toBe(500);
        expect(rest.body).toEqual({
            name: "InternalServerError",
            message: "Internal server error",
            code: 500,
            type: "INTERNAL_ERROR",
        });
        const viaGraphql = await graphql(
            base,
            `
                query ($id: ID!) {
                    product(id: $id) {
                        id
                    }
                }
            `,
            {
                id,
            },
        );
        expect(viaGraphql.body.errors).toEqual([
            {
                message: "Internal server error",
                locations: expect.any(Array),
                path: ["product"],
                extensions: { code: "INTERNAL_ERROR", status: 500 },
            },
        ]);
        for (const text of [JSON.stringify(rest.body), JSON.stringify(viaGraphql.body)]) {
            expect(text).not.toMatch(/relation|products\.|sequelize|stack|\bat \S+:\d+/i);
        }
    });
});
