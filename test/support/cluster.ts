/**
 * A cluster of real Agora node processes for e2e tests, one `node dist/bin/agora.js` per node as
 * an operator runs them: its own database, namespace and data folder, on the machine's NATS and
 * Redis unless the test brings private ones (test/support/servers.ts). `destroy()` removes
 * everything it made.
 */
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
} from "./database";
import { http } from "./http";
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "./processes";

export interface ClusterOptions {
    /** A private NATS (its URL); the machine's by default. */
    transporter?: string;
    /** A private Redis (its URL); the machine's by default. */
    cacher?: string;
    /** More environment for every node. */
    env?: Record<string, string>;
}

export const CLUSTER_ADMIN = {
    email: "cluster-admin@agora.test",
    password: "cluster admin passphrase",
};

interface ClusterNode {
    process: NodeProcess;
    readyUrl: string;
}

export class NodeCluster {
    readonly namespace = testNamespace();
    /** The gateway's base URL. */
    base = "";
    db!: TestDatabase;
    /** A connection to the cluster's database, to read the books behind the API. */
    pg!: Client;
    private dataDir = "";
    private port = 0;
    private readonly nodes = new Map<string, ClusterNode>();

    constructor(private readonly options: ClusterOptions = {}) {}

    async create(): Promise<void> {
        this.db = await createTestDatabase();
        this.pg = new Client({ connectionString: this.db.url });
        await this.pg.connect();
        this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-cluster-"));
        this.port = await freePort();
        this.base = `http://127.0.0.1:${this.port}`;
    }

    private environment(): Record<string, string> {
        return {
            TRANSPORTER: this.options.transporter ?? NATS_URL,
            CACHER: this.options.cacher ?? REDIS_URL,
            DATABASE_URL: this.db.url,
            NAMESPACE: this.namespace,
            DATA_DIR: this.dataDir,
            ADMIN_EMAIL: CLUSTER_ADMIN.email,
            ADMIN_PASSWORD: CLUSTER_ADMIN.password,
            METRICS_PORT: "0",
            SETTLE_INTERVAL_MS: "500",
            BCRYPT_ROUNDS: "4",
            ...this.options.env,
        };
    }

    /** Starts node `name` (its NODE_ID) hosting `services`, and waits until it is ready. */
    async start(name: string, services: string = name): Promise<NodeProcess> {
        const gateway = services === "api";
        const healthPort = gateway ? this.port : await freePort();
        const process = startNode(name, {
            ...this.environment(),
            SERVICES: services,
            NODE_ID: name,
            ...(gateway ? { PORT: String(this.port) } : { HEALTH_PORT: String(healthPort) }),
        });
        const readyUrl = `http://127.0.0.1:${healthPort}/health/ready`;
        this.nodes.set(name, { process, readyUrl });
        await waitUntilHealthy(process, readyUrl);
        return process;
    }

    /** users, products, orders (each its own node), then the gateway once it routes to them. */
    async startShop(): Promise<void> {
        await Promise.all(["users", "products", "orders"].map(kind => this.start(kind)));
        await this.start("api");
        await this.waitUntilRouted();
    }

    /** Until the gateway knows a node for every service (503 means it doesn't yet). */
    async waitUntilRouted(timeoutMs = 20_000): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        for (const route of ["/api/products", "/api/orders", "/api/users/me"]) {
            while ((await http(this.base, "GET", route)).status === 503) {
                if (Date.now() > deadline) throw new Error(`${route} still answers 503`);
                await new Promise(resolve => setTimeout(resolve, 100));
            }
        }
    }

    node(name: string): NodeProcess {
        const node = this.nodes.get(name);
        if (!node) throw new Error(`no node ${name} in the cluster`);
        return node.process;
    }

    /** The node's own readiness answer: its status and the checks it names. */
    async readiness(name: string): Promise<{ status: number; checks: Record<string, string> }> {
        const node = this.nodes.get(name);
        if (!node) throw new Error(`no node ${name} in the cluster`);
        const response = await fetch(node.readyUrl);
        const body = (await response.json()) as { checks: Record<string, string> };
        return { status: response.status, checks: body.checks };
    }

    /** Whether the node's own readiness probe answers 200. */
    async isReady(name: string): Promise<boolean> {
        const node = this.nodes.get(name);
        if (!node) return false;
        try {
            return (await fetch(node.readyUrl)).status === 200;
        } catch {
            return false;
        }
    }

    async destroy(): Promise<void> {
        await Promise.all([...this.nodes.values()].map(node => node.process.stop("SIGKILL")));
        await this.pg?.end();
        await this.db?.drop();
        await cleanNamespace(this.namespace).catch(() => undefined);
        if (this.dataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
    }
}
