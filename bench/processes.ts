/**
 * The processes a benchmark run owns: Agora nodes and the baseline server, each started in its own
 * process group so that a stop takes its children (embedded PostgreSQL) with it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { NODE_FLAGS } from "../lib/node-flags";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

/** The repository root: `dist/bench/*.js` runs two levels below it. */
export const ROOT = path.resolve(__dirname, "../..");
export const AGORA_ENTRY = path.join(ROOT, "dist/bin/agora.js");

/**
 * The Node flags of the nodes: production's (lib/node-flags.ts), or `BENCH_NODE_FLAGS` (`none`
 * for no flags at all) to measure others.
 */
export function benchNodeFlags(): string[] {
    const chosen = process.env.BENCH_NODE_FLAGS;
    if (chosen === undefined || chosen === "") return [...NODE_FLAGS];
    return chosen === "none" ? [] : chosen.split(/\s+/).filter(Boolean);
}

/**
 * Gateway processes of the bench's `api` node (`API_WORKERS`): 2 by default, one per core of this
 * 2-core machine; `BENCH_API_WORKERS=1` for a single process.
 */
export function benchApiWorkers(): number {
    const chosen = process.env.BENCH_API_WORKERS;
    const count = chosen === undefined || chosen === "" ? 2 : Number(chosen);
    if (!Number.isInteger(count) || count < 1) {
        throw new Error(`BENCH_API_WORKERS must be a whole number of at least 1, got "${chosen}"`);
    }
    return count;
}

export interface BenchProcess {
    name: string;
    child: ChildProcess;
    /** Milliseconds since the epoch when it was spawned. */
    startedAt: number;
    logs(): string;
    alive(): boolean;
    /** Resident memory in MB, from /proc (Linux). */
    rssMb(): number | null;
    /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
    stop(graceMs?: number): Promise<void>;
    /** SIGKILL now, as a crash would. */
    kill(): void;
    /** SIGSTOP / SIGCONT: a hung node, whose connections stay open. */
    pause(): void;
    resume(): void;
}

/** Bounds what a node's output keeps in memory: only the tail matters when it fails. */
const LOG_TAIL_CHARS = 20_000;

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/** True when `port` can be listened on now. */
function portIsFree(port: number): Promise<boolean> {
    return new Promise(resolve => {
        const server = net.createServer();
        server.unref();
        server.on("error", () => resolve(false));
        server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
}

/** The first of `count` consecutive free ports (the gateway workers' metrics ports). */
export async function freePorts(count: number): Promise<number> {
    for (;;) {
        const first = await freePort();
        let free = true;
        for (let next = first + 1; free && next < first + count; next++) {
            free = await portIsFree(next);
        }
        if (free) return first;
    }
}

/** Resident memory (VmRSS) of a process in MB, or null when it is gone. */
export function rssMbOf(pid: number): number | null {
    try {
        const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
        const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
        return kb ? Number(kb[1]) / 1024 : null;
    } catch {
        return null;
    }
}

/** The live child processes of `pid` (a gateway's `API_WORKERS`), oldest first; none if unknown. */
export function childPids(pid: number): number[] {
    try {
        return fs
            .readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
            .split(" ")
            .filter(Boolean)
            .map(Number);
    } catch {
        return [];
    }
}

export function startProcess(
    name: string,
    script: string,
    env: NodeJS.ProcessEnv,
    nodeOptions: string[] = [],
): BenchProcess {
    const child = spawn(process.execPath, [...nodeOptions, script], {
        cwd: ROOT,
        env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
    });
    let output = "";
    const keep = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-LOG_TAIL_CHARS);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
    const alive = () => child.exitCode === null && child.signalCode === null;
    const signalGroup = (signal: NodeJS.Signals) => {
        try {
            process.kill(-child.pid!, signal);
        } catch {
            // Already gone.
        }
    };
    return {
        name,
        child,
        startedAt: Date.now(),
        logs: () => output,
        alive,
        rssMb() {
            return alive() ? rssMbOf(child.pid!) : null;
        },
        async stop(graceMs = 10_000) {
            if (!alive()) return;
            signalGroup("SIGTERM");
            const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
            await exited;
            clearTimeout(timer);
            // Whatever the node left in its group (an embedded PostgreSQL) goes too.
            signalGroup("SIGKILL");
        },
        kill() {
            if (alive()) child.kill("SIGKILL");
        },
        pause() {
            if (alive()) child.kill("SIGSTOP");
        },
        resume() {
            if (alive()) child.kill("SIGCONT");
        },
    };
}

/** Polls `url` until it answers 200; fails with the process's log tail after `timeoutMs`. */
export async function waitUntilReady(
    node: BenchProcess,
    url: string,
    timeoutMs = 90_000,
    intervalMs = 100,
): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (!node.alive()) {
            throw new Error(`${node.name} exited (${node.child.exitCode}):\n${node.logs()}`);
        }
        try {
            const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
            await response.arrayBuffer();
            if (response.status === 200) return;
        } catch {
            // Not listening yet.
        }
        await sleep(intervalMs);
    }
    throw new Error(`${node.name} was not ready at ${url} after ${timeoutMs} ms:\n${node.logs()}`);
}

export function sleep(ms: number): Promise<void> {
    return new Promise(resolve => setTimeout(resolve, ms));
}
