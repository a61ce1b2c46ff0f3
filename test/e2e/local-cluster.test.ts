/**
 * `npm run cluster` (dist/bin/cluster.js), started and stopped as an operator would: five node
 * processes come up on free ports in the test's namespace and database, both products nodes serve
 * listings sent through the gateway, and SIGINT (Ctrl-C) stops every node and the script.
 */
import { spawn, type ChildProcess } from "node:child_process";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { alive, ROOT } from "../support/processes";

jest.setTimeout(150_000);

const namespace = testNamespace();
let db: TestDatabase;
let cluster: ChildProcess;
let output = "";

/** Waits until the script's output matches `pattern`, and returns the match. */
async function printed(pattern: RegExp, timeoutMs = 100_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const match = pattern.exec(output);
        if (match) return match;
        if (cluster.exitCode !== null) break;
        await new Promise(resolve => setTimeout(resolve, 100));
    }
    throw new Error(`npm run cluster never printed ${pattern}; it printed:\n${output}`);
}

/** Calls of products actions one node has served, from its /metrics. */
async function productsCalls(metricsPort: string): Promise<number> {
    const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(r => r.text());
    return text
        .split("\n")
        .filter(line => line.startsWith("moleculer_request_total{"))
        .filter(line => line.includes('type="local"') && line.includes('service="products"'))
        .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}

beforeAll(async () => {
    db = await createTestDatabase();
    cluster = spawn(
        "node",
        [
            "dist/bin/cluster.js",
            ...["--ports", "free", "--namespace", namespace, "--database", db.url],
            ...["--nats", NATS_URL, "--redis", REDIS_URL, "--requests", "30"],
        ],
        { cwd: ROOT, env: process.env, stdio: ["ignore", "pipe", "pipe"] },
    );
    cluster.stdout!.on("data", chunk => (output += chunk));
    cluster.stderr!.on("data", chunk => (output += chunk));
});

afterAll(async () => {
    if (cluster.exitCode === null) cluster.kill("SIGKILL");
    await db?.drop();
    await cleanNamespace(namespace);
});

it("runs five nodes, spreads listings over both products nodes, and stops on Ctrl-C", async () => {
    const [, first, second] = await printed(
        /30 listings through the gateway: products-1 served (\d+), products-2 served (\d+)/,
    );
    expect(Number(first)).toBeGreaterThan(0);
    expect(Number(second)).toBeGreaterThan(0);

    const pids = [...output.matchAll(/started (\S+) \(pid (\d+)/g)].map(m => Number(m[2]));
    expect(pids).toHaveLength(5);
    const [, base] = await printed(/REST {5}(http:\/\/127\.0\.0\.1:\d+)\/api\/products/);
    const metricsPort = (name: string) =>
        new RegExp(`${name} +pid \\d+, metrics :(\\d+)`).exec(output)![1];

    // Traffic of our own: both products nodes take a share of it. Thirty different pages: the
    // gateway answers a page it has cached by itself (docs/caching.md).
    const before = await Promise.all(
        ["products-1", "products-2"].map(n => productsCalls(metricsPort(n))),
    );
    for (let i = 0; i < 30; i++) {
        const response = await fetch(`${base}/api/products?pageSize=5&page=${i + 1}`);
        expect(response.status).toBe(200);
    }
    const after = await Promise.all(
        ["products-1", "products-2"].map(n => productsCalls(metricsPort(n))),
    );
    expect(after[0]).toBeGreaterThan(before[0]);
    expect(after[1]).toBeGreaterThan(before[1]);
    expect(after[0] - before[0] + (after[1] - before[1])).toBeGreaterThanOrEqual(30);

    const exited = new Promise<number | null>(resolve => cluster.once("exit", resolve));
    cluster.kill("SIGINT");
    expect(await exited).toBe(0);
    for (const name of ["api-1", "orders-1", "products-2", "products-1", "users-1"]) {
        expect(output).toContain(`[cluster] ${name} stopped`);
    }
    expect(pids.filter(alive)).toEqual([]);
});
