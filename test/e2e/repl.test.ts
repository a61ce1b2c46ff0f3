/**
 * `npm run repl` driven over its stdin, as an operator types: it joins a running cluster node
 * (another process, same TRANSPORTER and NAMESPACE), lists nodes and services, calls an action,
 * and runs the operator's commands (stock, orders, outbox, settle). Ctrl-D (end of input) ends it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { stripVTControlCharacters } from "node:util";
import { readConfig } from "../../lib/config";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { http } from "../support/http";
import {
    freePort,
    ROOT,
    startNode,
    waitUntilHealthy,
    type NodeProcess,
} from "../support/processes";

jest.setTimeout(120_000);

const namespace = testNamespace();
let db: TestDatabase;
let node: NodeProcess;
let repl: ChildProcessWithoutNullStreams;
let output = "";
let productId: string;
let orderId: string;

/** Types a line, then waits until the REPL has printed `expected` after it. */
async function type(line: string, expected: RegExp): Promise<string> {
    const start = output.length;
    repl.stdin.write(`${line}\n`);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
        const answer = output.slice(start);
        if (expected.test(answer)) return answer;
        if (repl.exitCode !== null) break;
        await new Promise(resolve => setTimeout(resolve, 50));
    }
    throw new Error(
        `"${line}" did not print ${expected}; the REPL printed:\n${output.slice(start)}`,
    );
}

beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    node = startNode("cluster node", {
        TRANSPORTER: NATS_URL,
        CACHER: REDIS_URL,
        NAMESPACE: namespace,
        DATABASE_URL: db.url,
        NODE_ID: "shop-node",
        PORT: String(port),
        METRICS_PORT: "0",
    });
    await waitUntilHealthy(node, `${base}/health/ready`);
    const config = readConfig();
    const login = await http(base, "POST", "/api/auth/login", {
        body: { email: config.adminEmail, password: config.adminPassword },
    });
    const token = login.body.accessToken as string;
    const product = await http(base, "POST", "/api/products", {
        token,
        body: { name: "Teapot from the REPL test", price: 1250, stock: 7 },
    });
    expect(product.status).toBe(201);
    productId = product.body.id;
    const order = await http(base, "POST", "/api/orders", {
        token,
        body: { items: [{ productId, quantity: 2 }] },
    });
    expect(order.status).toBe(201);
    orderId = order.body.id;

    repl = spawn("node", ["dist/bin/repl.js"], {
        cwd: ROOT,
        env: {
            ...process.env,
            TRANSPORTER: NATS_URL,
            NAMESPACE: namespace,
            NODE_ID: "repl-test",
            // The REPL keeps its history under $HOME: the run's temporary folder, not root's.
            HOME: process.env.DATA_DIR!,
        },
    });
    // moleculer-repl prints responses with util.inspect colours, even into a pipe: drop them.
    const keep = (chunk: Buffer) => (output += stripVTControlCharacters(String(chunk)));
    repl.stdout.on("data", keep);
    repl.stderr.on("data", keep);
});

afterAll(async () => {
    if (repl && repl.exitCode === null) repl.kill("SIGKILL");
    await node?.stop();
    await db?.drop();
    await cleanNamespace(namespace);
});

it("joins the running cluster and calls its actions", async () => {
    await type("", /1 other node\(s\) online/);
    expect(output).toContain(`Joined namespace "${namespace}"`);
    await type("nodes", /shop-node/);
    const services = await type("services", /orders[\s\S]*products[\s\S]*users/);
    expect(services).toMatch(/products/);
    const listed = await type("call products.list --pageSize 5", /Teapot from the REPL test/);
    expect(listed).toMatch(/stock: 5/);
});

it("answers the operator's own commands", async () => {
    const stock = await type(`stock ${productId}`, /stock: \d+/);
    expect(stock).toContain("Teapot from the REPL test");
    expect(stock).toMatch(/stock: 5\b/);
    expect(await type("stock 6b1f5a30-0000-4000-8000-000000000000", /NotFoundError/)).toMatch(
        /404 NOT_FOUND/,
    );

    const confirmed = await type("orders confirmed", /CONFIRMED order/);
    expect(confirmed).toMatch(/^1 CONFIRMED order\(s\)/m);
    expect(confirmed).toContain(orderId);
    expect(await type("pending", /PENDING order/)).toMatch(/^0 PENDING order\(s\)/m);

    const outbox = await type("outbox", /orders\s+\d+/);
    for (const service of ["users", "products", "orders"]) {
        expect(outbox).toMatch(new RegExp(`^${service}\\s+\\d+\\s+\\d+\\.\\d`, "m"));
    }
    expect(await type("settle", /unsettled\s+\d+/)).toMatch(/confirmed\s+0/);
});

it("leaves the cluster at the end of its input", async () => {
    const exited = new Promise<number | null>(resolve => repl.once("exit", resolve));
    repl.stdin.end();
    expect(await exited).toBe(0);
});
