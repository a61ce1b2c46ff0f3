/**
 * `API_WORKERS=2` (lib/workers.ts): one gateway node as two processes on one port, each its own
 * Moleculer node with its own metrics port. Connections are spread over both; a worker that dies
 * is started again; SIGTERM to the primary stops both and the primary, leaving no process behind.
 */
import http from "node:http";
import { cleanNamespace, NATS_URL, REDIS_URL, testNamespace } from "../support/database";
import {
    alive,
    freePort,
    startNode,
    waitUntilHealthy,
    type NodeProcess,
} from "../support/processes";

jest.setTimeout(120_000);

const namespace = testNamespace();
let gateway: NodeProcess;
let port: number;
let metricsPort: number;

/** A GET on a connection of its own (no keep-alive): each one is handed to some worker. */
function getOnNewConnection(path: string): Promise<number> {
    return new Promise((resolve, reject) => {
        const request = http.get({ host: "127.0.0.1", port, path, agent: false }, response => {
            response.resume();
            response.on("end", () => resolve(response.statusCode ?? 0));
        });
        request.setTimeout(5000, () => request.destroy(new Error(`no answer to ${path} in 5 s`)));
        request.on("error", reject);
    });
}

async function metricsOf(worker: number): Promise<string | null> {
    try {
        const response = await fetch(`http://127.0.0.1:${metricsPort + worker}/metrics`);
        return response.status === 200 ? await response.text() : null;
    } catch {
        return null;
    }
}

function sample(text: string, pattern: RegExp): number {
    const line = text.split("\n").find(l => pattern.test(l));
    return line ? Number(line.split(" ").pop()) : 0;
}

/** A worker's pid, from Moleculer's `process_pid{…,value="<pid>"} 1`; 0 while it doesn't answer. */
async function pidOf(worker: number): Promise<number> {
    const text = (await metricsOf(worker)) ?? "";
    const match = /^process_pid\{[^}]*value="(\d+)"/m.exec(text);
    const pid = match ? Number(match[1]) : 0;
    // Never a pid this test must not signal.
    return pid > 1 && pid !== process.pid ? pid : 0;
}

async function until<T>(what: string, probe: () => Promise<T | null>, ms = 30_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await probe();
        if (value !== null) return value;
        if (Date.now() > deadline) throw new Error(`${what} never happened:\n${gateway.logs()}`);
        await new Promise(resolve => setTimeout(resolve, 200));
    }
}

beforeAll(async () => {
    port = await freePort();
    // Two consecutive free ports for the workers' metrics.
    do metricsPort = await freePort();
    while (
        !(await new Promise<boolean>(resolve => {
            const probe = http.createServer().once("error", () => resolve(false));
            probe.listen(metricsPort + 1, "127.0.0.1", () => probe.close(() => resolve(true)));
        }))
    );
    gateway = startNode("api-workers", {
        SERVICES: "api",
        API_WORKERS: "2",
        NODE_ID: "api",
        NODE_ENV: "development",
        TRANSPORTER: NATS_URL,
        CACHER: REDIS_URL,
        NAMESPACE: namespace,
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
    });
    await waitUntilHealthy(gateway, `http://127.0.0.1:${port}/health/live`);
    await until("both workers serving metrics", async () =>
        (await metricsOf(0)) && (await metricsOf(1)) ? true : null,
    );
});

afterAll(async () => {
    await gateway?.stop("SIGKILL");
    await cleanNamespace(namespace);
});

it("serves one port from two workers, each its own node with its own metrics", async () => {
    for (let i = 0; i < 40; i++) expect(await getOnNewConnection("/health/live")).toBe(200);
    const served = await Promise.all(
        [0, 1].map(async worker =>
            sample(
                (await metricsOf(worker))!,
                /^agora_http_requests_total\{.*route="\/health\/live"/,
            ),
        ),
    );
    // Each worker answered some of them, and together all 40 (and the readiness polls before).
    expect(served[0]).toBeGreaterThan(0);
    expect(served[1]).toBeGreaterThan(0);
    expect(served[0] + served[1]).toBeGreaterThanOrEqual(40);
    const [first, second] = [await metricsOf(0), await metricsOf(1)];
    expect(first).toMatch(/nodeID="api-w0"/);
    expect(second).toMatch(/nodeID="api-w1"/);
    expect(await pidOf(0)).not.toBe(await pidOf(1));
});

it("starts a worker again when it dies, and keeps answering meanwhile", async () => {
    const before = await pidOf(0);
    expect(before).toBeGreaterThan(0);
    process.kill(before, "SIGKILL");
    // A connection handed to the worker as it dies is lost with it (Node's cluster); once the
    // primary has seen the exit, the other worker takes every connection until the new one is up.
    await until("worker 0 gone", async () => (alive(before) ? null : true));
    await new Promise(resolve => setTimeout(resolve, 300));
    for (let i = 0; i < 10; i++) expect(await getOnNewConnection("/health/live")).toBe(200);
    const after = await until("worker 0 started again", async () => {
        const pid = await pidOf(0);
        return pid > 0 && pid !== before ? pid : null;
    });
    expect(alive(before)).toBe(false);
    expect(alive(after)).toBe(true);
});

it("stops every worker on SIGTERM to the primary, then exits", async () => {
    const workers = [await pidOf(0), await pidOf(1)];
    const exited = new Promise<number | null>(resolve =>
        gateway.child.once("exit", code => resolve(code)),
    );
    process.kill(gateway.child.pid!, "SIGTERM");
    expect(await exited).toBe(0);
    for (const pid of workers) expect(alive(pid)).toBe(false);
    await expect(getOnNewConnection("/health/live")).rejects.toThrow();
});
