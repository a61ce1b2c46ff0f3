/**
 * The cluster as an operator runs it: api, users, products and orders as four separate node
 * processes over NATS, with the Redis cacher and the machine's PostgreSQL, walked over HTTP.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "../support/processes";
import { http } from "../support/http";
import { walkContract } from "./contract-walk";

jest.setTimeout(120_000);

const admin = { email: "root@agora.test", password: "a long admin passphrase" };
let db: TestDatabase;
let dataDir: string;
const namespace = testNamespace();
const nodes: NodeProcess[] = [];
let base: string;

beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-e2e-"));
    const shared = {
        TRANSPORTER: NATS_URL,
        CACHER: REDIS_URL,
        DATABASE_URL: db.url,
        NAMESPACE: namespace,
        DATA_DIR: dataDir,
        ADMIN_EMAIL: admin.email,
        ADMIN_PASSWORD: admin.password,
        METRICS_PORT: "0",
        SETTLE_INTERVAL_MS: "500",
    };
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const kinds = ["users", "products", "orders"];
    for (const kind of kinds) {
        const healthPort = await freePort();
        const node = startNode(kind, {
            ...shared,
            SERVICES: kind,
            NODE_ID: `${kind}-e2e`,
            HEALTH_PORT: String(healthPort),
        });
        nodes.push(node);
        await waitUntilHealthy(node, `http://127.0.0.1:${healthPort}/health/ready`);
    }
    const api = startNode("api", {
        ...shared,
        SERVICES: "api",
        NODE_ID: "api-e2e",
        PORT: String(port),
    });
    nodes.push(api);
    await waitUntilHealthy(api, `${base}/health/ready`);
});

afterAll(async () => {
    await Promise.all(nodes.map(node => node.stop()));
    await db?.drop();
    await cleanNamespace(namespace);
    fs.rmSync(dataDir, { recursive: true, force: true });
});

it("serves the whole contract across four nodes", async () => {
    // The gateway learns the other nodes' services through NATS: wait for the last one.
    const deadline = Date.now() + 20_000;
    while ((await http(base, "GET", "/api/orders")).status === 503 && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 200));
    }
    await walkContract(base, admin);
});

it("stops every node gracefully on SIGTERM", async () => {
    await Promise.all(nodes.map(node => node.stop("SIGTERM")));
    for (const node of nodes) expect(node.child.exitCode).toBe(0);
});
