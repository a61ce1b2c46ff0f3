/**
 * A newcomer's `npm start`: no environment beyond free ports and a fresh data folder. Embedded
 * PostgreSQL, in-process calls, the memory cacher, the default admin; walked over HTTP, then
 * restarted to show the data survives.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "../support/processes";
import { http } from "../support/http";
import { walkContract } from "./contract-walk";

jest.setTimeout(180_000);

const CLUSTER_VARIABLES = [
    "TRANSPORTER",
    "CACHER",
    "DATABASE_URL",
    "SERVICES",
    "NAMESPACE",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
];

let dataDir: string;
let env: Record<string, string>;
let node: NodeProcess;
let base: string;

beforeAll(async () => {
    for (const name of CLUSTER_VARIABLES) delete process.env[name];
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-embedded-"));
    // As root, PostgreSQL runs as the `postgres` user, which must be able to enter the folder.
    fs.chmodSync(dataDir, 0o755);
    const port = await freePort();
    env = {
        PORT: String(port),
        METRICS_PORT: String(await freePort()),
        EMBEDDED_DB_PORT: String(await freePort()),
        DATA_DIR: dataDir,
        LOGLEVEL: "info",
    };
    base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
    await node?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
});

it("starts the whole shop with npm start and prints where everything is", async () => {
    node = startNode("npm start", env, ["npm", "start"]);
    await waitUntilHealthy(node, `${base}/health/ready`, 90_000);
    const logs = node.logs();
    expect(logs).toContain(`http://localhost:${env.PORT}/api`);
    expect(logs).toContain(`http://localhost:${env.PORT}/graphql`);
    expect(logs).toContain(`http://localhost:${env.METRICS_PORT}/metrics`);
    expect(logs).toMatch(/ADMIN_EMAIL \/ ADMIN_PASSWORD are not set/);
    const metrics = await fetch(`http://127.0.0.1:${env.METRICS_PORT}/metrics`);
    expect(await metrics.text()).toContain("moleculer_request_total");
});

it("serves the whole contract on embedded defaults", async () => {
    await walkContract(base, { email: "admin@agora.local", password: "agora-admin-change-me" });
});

it("keeps its data across a restart", async () => {
    const before = await http(base, "GET", "/api/products?pageSize=100");
    expect(before.body.total).toBeGreaterThan(0);
    await node.stop();
    node = startNode("npm start again", env, ["npm", "start"]);
    await waitUntilHealthy(node, `${base}/health/ready`, 90_000);
    const after = await http(base, "GET", "/api/products?pageSize=100");
    expect(after.body.total).toBe(before.body.total);
});
