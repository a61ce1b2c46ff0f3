/**
 * `npm run cluster`: Agora as a real cluster on one machine, without Docker. One gateway, two
 * products nodes, one users and one orders node, each its own `node dist/bin/agora.js` process,
 * over the machine's NATS, Redis and PostgreSQL, in a namespace and database of their own
 * (`agora-cluster`, `agora_cluster` unless told otherwise). Once every node is ready it sends a
 * burst of listings through the gateway and prints how many calls each products node served, and
 * keeps printing that as traffic comes. Ctrl-C (or SIGTERM) stops every node gracefully.
 *
 *   npm run cluster -- [--namespace N] [--database URL] [--nats URL] [--redis URL]
 *                      [--ports fixed|free] [--requests N]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { NODE_FLAGS } from "../lib/node-flags";
import net from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { Client } from "pg";

interface NodeSpec {
    name: string;
    services: string;
    /** The gateway's HTTP port, or the health port of the others. */
    port: number;
    metricsPort: number;
}

interface RunningNode extends NodeSpec {
    child: ChildProcess;
    exited: Promise<void>;
}

const ROOT = path.resolve(__dirname, "../..");
/** How often the per-node call counts are printed while traffic comes. */
const REPORT_INTERVAL_MS = 10_000;
const READY_TIMEOUT_MS = 90_000;
/** After this, a node that hasn't stopped on SIGTERM is killed. */
const STOP_TIMEOUT_MS = 15_000;

const { values: options } = parseArgs({
    options: {
        namespace: { type: "string", default: "agora-cluster" },
        database: {
            type: "string",
            default: "postgres://postgres@127.0.0.1:5432/agora_cluster",
        },
        nats: { type: "string", default: "nats://127.0.0.1:4222" },
        redis: { type: "string", default: "redis://127.0.0.1:6379" },
        // fixed: the ports the README lists; free: any free ones (tests, a second cluster).
        ports: { type: "string", default: "fixed" },
        requests: { type: "string", default: "40" },
    },
});

function log(line: string): void {
    process.stdout.write(`[cluster] ${line}\n`);
}

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

async function nodeSpecs(free: boolean): Promise<NodeSpec[]> {
    const kinds = [
        ["users-1", "users", 3101, 3031],
        ["products-1", "products", 3102, 3032],
        ["products-2", "products", 3103, 3033],
        ["orders-1", "orders", 3104, 3034],
        ["api-1", "api", 3000, 3030],
    ] as const;
    const specs: NodeSpec[] = [];
    for (const [name, services, port, metricsPort] of kinds) {
        specs.push({
            name,
            services,
            port: free ? await freePort() : port,
            metricsPort: free ? await freePort() : metricsPort,
        });
    }
    return specs;
}

/** The cluster's own database on the machine's PostgreSQL, made on the first run. */
async function ensureDatabase(url: string): Promise<void> {
    const target = new URL(url);
    const name = decodeURIComponent(target.pathname.slice(1));
    const admin = new URL(url);
    admin.pathname = "/postgres";
    const client = new Client({ connectionString: admin.toString() });
    await client.connect();
    try {
        const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
        if (found.rowCount === 0) {
            await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
            log(`created database ${name}`);
        }
    } finally {
        await client.end();
    }
}

function startNode(spec: NodeSpec): RunningNode {
    const env: NodeJS.ProcessEnv = {
        // Five consoles of traces and request logs would drown the report: warnings only, unless
        // LOGLEVEL or TRACING say otherwise.
        LOGLEVEL: "warn",
        TRACING: "off",
        ...process.env,
        SERVICES: spec.services,
        NODE_ID: spec.name,
        NAMESPACE: options.namespace,
        TRANSPORTER: options.nats,
        CACHER: options.redis,
        DATABASE_URL: options.database,
        METRICS_PORT: String(spec.metricsPort),
    };
    if (spec.services === "api") env.PORT = String(spec.port);
    else env.HEALTH_PORT = String(spec.port);
    // Its own process group: a terminal's Ctrl-C reaches this script, which stops the nodes in
    // order, rather than all of them at once.
    const child = spawn(process.execPath, [...NODE_FLAGS, "dist/bin/agora.js"], {
        cwd: ROOT,
        env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
    });
    const prefix = `[${spec.name}] `;
    for (const stream of [child.stdout!, child.stderr!]) {
        let pending = "";
        stream.on("data", chunk => {
            const lines = (pending + String(chunk)).split("\n");
            pending = lines.pop()!;
            for (const line of lines) process.stdout.write(prefix + line + "\n");
        });
    }
    const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
    return { ...spec, child, exited };
}

async function waitUntilReady(node: RunningNode): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
        if (node.child.exitCode !== null) {
            throw new Error(`${node.name} exited with code ${node.child.exitCode}`);
        }
        const ready = await fetch(`http://127.0.0.1:${node.port}/health/ready`).then(
            response => response.ok,
            () => false,
        );
        if (ready) return;
        await new Promise(resolve => setTimeout(resolve, 250));
    }
    throw new Error(`${node.name} was not ready after ${READY_TIMEOUT_MS / 1000} s`);
}

/** Calls of products actions a node has served, from its own Prometheus text. */
async function productsCallsServed(node: NodeSpec): Promise<number> {
    const text = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`).then(r => r.text());
    return text
        .split("\n")
        .filter(line => line.startsWith("moleculer_request_total{"))
        .filter(line => line.includes('type="local"') && line.includes('service="products"'))
        .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}

async function reportSpread(products: NodeSpec[]): Promise<string> {
    const counts = await Promise.all(products.map(productsCallsServed));
    return products.map((node, i) => `${node.name} served ${counts[i]}`).join(", ");
}

async function stopAll(nodes: RunningNode[]): Promise<void> {
    // The gateway first, so that no new request arrives while the others stop.
    for (const node of [...nodes].reverse()) {
        if (node.child.exitCode !== null || node.child.signalCode !== null) continue;
        node.child.kill("SIGTERM");
        const timer = setTimeout(() => node.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await node.exited;
        clearTimeout(timer);
        log(`${node.name} stopped`);
    }
}

async function main(): Promise<void> {
    const specs = await nodeSpecs(options.ports === "free");
    await ensureDatabase(options.database);
    const nodes: RunningNode[] = [];
    let stopping: Promise<void> | null = null;
    const shutdown = (signal: string) => {
        if (stopping) return;
        log(`${signal}: stopping every node`);
        stopping = stopAll(nodes).then(() => {
            log("stopped");
            process.exit(0);
        });
    };
    process.on("SIGINT", () => shutdown("SIGINT"));
    process.on("SIGTERM", () => shutdown("SIGTERM"));

    try {
        for (const spec of specs) {
            const node = startNode(spec);
            nodes.push(node);
            log(`started ${spec.name} (pid ${node.child.pid}, services ${spec.services})`);
            node.exited.then(() => {
                if (!stopping) log(`${spec.name} exited with code ${node.child.exitCode}`);
            });
        }
        await Promise.all(nodes.map(waitUntilReady));
    } catch (error) {
        log(`could not start the cluster: ${(error as Error).message}`);
        await stopAll(nodes);
        process.exit(1);
    }

    const gateway = nodes.find(node => node.services === "api")!;
    const base = `http://127.0.0.1:${gateway.port}`;
    const products = nodes.filter(node => node.services === "products");
    log(`ready in namespace "${options.namespace}", database ${options.database}`);
    for (const node of nodes) {
        const health = node.services === "api" ? "" : `, health :${node.port}/health/ready`;
        log(
            `  ${node.name.padEnd(10)} pid ${node.child.pid}, metrics :${node.metricsPort}${health}`,
        );
    }
    log(`REST     ${base}/api/products`);
    log(`GraphQL  ${base}/graphql (playground in a browser)`);
    log(`API docs ${base}/api/docs`);
    log(`REPL     TRANSPORTER=${options.nats} NAMESPACE=${options.namespace} npm run repl`);

    const requests = Number(options.requests);
    // Each a different page: the gateway answers a cached page itself (docs/caching.md), so only
    // pages it has not cached reach, and show the spread over, the products nodes.
    for (let i = 0; i < requests; i++) {
        await fetch(`${base}/api/products?page=${i + 1}`).then(r => r.text());
    }
    log(`${requests} listings through the gateway: ${await reportSpread(products)}`);
    log("Ctrl-C stops every node.");

    let last = "";
    setInterval(() => {
        if (stopping) return;
        reportSpread(products).then(
            spread => {
                if (spread !== last) log(`products calls: ${spread}`);
                last = spread;
            },
            () => undefined,
        );
    }, REPORT_INTERVAL_MS).unref();
    // Keep running until a signal.
    setInterval(() => undefined, 1 << 30);
}

void main();
