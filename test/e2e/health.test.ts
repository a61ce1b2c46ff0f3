/**
 * Health of every node kind as real processes, when PostgreSQL is down at start: the nodes with a
 * database stay alive, answer live 200 and ready 503 naming their database, stop cleanly on
 * SIGTERM, and become ready by themselves once PostgreSQL is up. The gateway (no database of its
 * own) stays ready and answers 503 for what its services can't serve yet.
 */
import { cleanNamespace, NATS_URL, REDIS_URL, testNamespace } from "../support/database";
import { http } from "../support/http";
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "../support/processes";
import { privatePostgres, type PrivateServer } from "../support/servers";

jest.setTimeout(180_000);

const namespace = testNamespace();
const nodes: NodeProcess[] = [];
let postgres: PrivateServer & { remove(): void };

interface Probe {
    node: NodeProcess;
    base: string;
    database: string | null;
}
const probes: Probe[] = [];

async function ready(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const { status, body } = await http(base, "GET", "/health/ready");
    return { status, body };
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 90_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (await check().catch(() => false)) return;
        await new Promise(resolve => setTimeout(resolve, 250));
    }
    throw new Error(`timed out waiting for ${what}:\n${nodes.map(n => n.logs()).join("\n")}`);
}

beforeAll(async () => {
    postgres = await privatePostgres();
    const shared = {
        TRANSPORTER: NATS_URL,
        CACHER: REDIS_URL,
        NAMESPACE: namespace,
        DATABASE_URL: postgres.url,
        METRICS_PORT: "0",
    };
    for (const kind of ["users", "products", "orders"]) {
        const port = await freePort();
        const node = startNode(kind, { ...shared, SERVICES: kind, HEALTH_PORT: String(port) });
        nodes.push(node);
        probes.push({ node, base: `http://127.0.0.1:${port}`, database: `database:${kind}` });
    }
    const apiPort = await freePort();
    const api = startNode("api", { ...shared, SERVICES: "api", PORT: String(apiPort) });
    nodes.push(api);
    probes.push({ node: api, base: `http://127.0.0.1:${apiPort}`, database: null });
    // Every service in one process (no transporter): the gateway beside the databases.
    const allPort = await freePort();
    const all = startNode("all-in-one", {
        DATABASE_URL: postgres.url,
        NAMESPACE: testNamespace(),
        METRICS_PORT: "0",
        PORT: String(allPort),
    });
    nodes.push(all);
    probes.push({ node: all, base: `http://127.0.0.1:${allPort}`, database: "database:products" });
});

afterAll(async () => {
    await Promise.all(nodes.map(node => node.stop()));
    await postgres?.kill();
    postgres?.remove();
    await cleanNamespace(namespace);
});

it("keeps every node kind alive and not ready while PostgreSQL is down, then ready once it is up", async () => {
    for (const { node, base, database } of probes) {
        await waitFor(
            async () => (await http(base, "GET", "/health/live")).status === 200,
            node.name,
        );
        if (database === null) {
            // The gateway has no database: it is ready, and says 503 for the services not up.
            await waitUntilHealthy(node, `${base}/health/ready`);
            const products = await http(base, "GET", "/api/products");
            expect(products.status).toBe(503);
            expect(products.body).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE" });
            continue;
        }
        const { status, body } = await ready(base);
        expect({ node: node.name, status }).toEqual({ node: node.name, status: 503 });
        expect(body.ready).toBe(false);
        const checks = body.checks as Record<string, string>;
        expect(checks.broker).toBe("starting");
        expect(checks[database]).toMatch(/^unavailable: /);
    }

    // Several reconnect attempts later, nobody has crashed or become ready.
    await waitFor(
        async () =>
            probes
                .filter(probe => probe.database)
                .every(({ node }) => (node.logs().match(/Reconnecting/g) ?? []).length >= 3),
        "three reconnect attempts on every node with a database",
    );
    for (const { node, base, database } of probes) {
        expect({ node: node.name, exited: node.child.exitCode }).toEqual({
            node: node.name,
            exited: null,
        });
        if (database) expect((await ready(base)).status).toBe(503);
    }

    await postgres.start();
    for (const { node, base } of probes)
        await waitUntilHealthy(node, `${base}/health/ready`, 90_000);
    const cluster = probes.find(probe => probe.node.name === "api")!;
    await waitFor(
        async () => (await http(cluster.base, "GET", "/api/products")).status === 200,
        "the gateway to reach products",
    );
    const allInOne = probes.find(probe => probe.node.name === "all-in-one")!;
    expect((await http(allInOne.base, "GET", "/api/products")).status).toBe(200);
    const { body } = await ready(cluster.base);
    expect(body.checks).toEqual({ broker: "ok", transporter: "ok" });
});

it("stops a node that is still waiting for PostgreSQL on SIGTERM, without being killed", async () => {
    const closedPort = await freePort();
    const healthPort = await freePort();
    const waiting = startNode("waiting-products", {
        TRANSPORTER: NATS_URL,
        CACHER: REDIS_URL,
        NAMESPACE: namespace,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/postgres`,
        METRICS_PORT: "0",
        SERVICES: "products",
        HEALTH_PORT: String(healthPort),
    });
    nodes.push(waiting);
    const base = `http://127.0.0.1:${healthPort}`;
    // Once the service has tried its database, the check names the failure.
    await waitFor(async () => {
        const { status, body } = await ready(base);
        const checks = body.checks as Record<string, string>;
        return status === 503 && /ECONNREFUSED/.test(checks["database:products"]);
    }, "the waiting node to report its refused database");
    await waiting.stop("SIGTERM");
    // `stop` falls back to SIGKILL after 10 s: the node must have exited by itself.
    expect(waiting.child.signalCode).toBeNull();
    expect(waiting.child.exitCode).toBe(0);
});
