/**
 * Private copies of the backing servers on free ports, for tests that kill, pause or restart them
 * without disturbing anything else that uses the machine's shared servers.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./processes";

export interface PrivateServer {
    port: number;
    url: string;
    start(): Promise<void>;
    kill(signal?: NodeJS.Signals): Promise<void>;
    pause(): void;
    resume(): void;
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const open = await new Promise<boolean>(resolve => {
            const socket = net.connect(port, "127.0.0.1");
            socket.once("connect", () => (socket.destroy(), resolve(true)));
            socket.once("error", () => resolve(false));
        });
        if (open) return;
        if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
        await new Promise(resolve => setTimeout(resolve, 50));
    }
}

/** Sends `signal` to a running child and waits until it has exited. */
async function signalAndWait(child: ChildProcess | null, signal: NodeJS.Signals): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise(resolve => child.once("exit", resolve));
    child.kill(signal);
    await exited;
}

function privateServer(
    command: string,
    args: (port: number) => string[],
    scheme: string,
): Promise<PrivateServer> {
    return freePort().then(port => {
        let child: ChildProcess | null = null;
        const server: PrivateServer = {
            port,
            url: `${scheme}://127.0.0.1:${port}`,
            async start() {
                child = spawn(command, args(port), { stdio: "ignore" });
                await waitForPort(port);
            },
            kill: (signal = "SIGKILL") => signalAndWait(child, signal),
            pause: () => void child?.kill("SIGSTOP"),
            resume: () => void child?.kill("SIGCONT"),
        };
        return server;
    });
}

/** A Redis that keeps nothing on disk. */
export function privateRedis(): Promise<PrivateServer> {
    return privateServer(
        "redis-server",
        port => ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        "redis",
    );
}

/** A NATS server with JetStream, its store in a temporary folder kept across restarts. */
export function privateNats(): Promise<PrivateServer & { storeDir: string }> {
    const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-nats-"));
    return privateServer(
        "/usr/sbin/nats-server",
        port => ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir],
        "nats",
    ).then(server => ({ ...server, storeDir }));
}

/** The machine's PostgreSQL binaries (Debian puts them under a versioned folder). */
function postgresBinary(name: string): string {
    const root = "/usr/lib/postgresql";
    const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => +b - +a) : [];
    const found = versions.map(v => path.join(root, v, "bin", name)).find(fs.existsSync);
    return found ?? name;
}

/** PostgreSQL refuses to run as root: then it runs as the `postgres` user of the machine. */
function postgresUser(): { uid: number; gid: number } | Record<string, never> {
    if (process.getuid?.() !== 0) return {};
    const entry = fs
        .readFileSync("/etc/passwd", "utf8")
        .split("\n")
        .map(line => line.split(":"))
        .find(fields => fields[0] === "postgres");
    if (!entry) throw new Error("running as root needs a `postgres` user for PostgreSQL");
    return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/**
 * A PostgreSQL of its own (trust auth, user `postgres`, database `postgres`) in a temporary data
 * folder, on a free port, not started until `start()`: for nodes that must meet a database that is
 * down, or that comes up late.
 */
export async function privatePostgres(): Promise<PrivateServer & { remove(): void }> {
    const port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-pg-"));
    const user = postgresUser();
    if ("uid" in user) fs.chownSync(dataDir, user.uid, user.gid);
    let child: ChildProcess | null = null;
    let initialised = false;
    return {
        port,
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        async start() {
            if (!initialised) {
                const initdb = spawn(
                    postgresBinary("initdb"),
                    ["-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "--locale=C"],
                    { stdio: "ignore", ...user },
                );
                const code = await new Promise(resolve => initdb.once("exit", resolve));
                if (code !== 0) throw new Error(`initdb exited with ${code}`);
                initialised = true;
            }
            child = spawn(
                postgresBinary("postgres"),
                [
                    "-D",
                    dataDir,
                    "-p",
                    String(port),
                    "-k",
                    dataDir,
                    "-c",
                    "listen_addresses=127.0.0.1",
                ],
                { stdio: "ignore", ...user },
            );
            await waitForPort(port, 30_000);
        },
        // SIGINT: PostgreSQL's fast shutdown.
        kill: (signal = "SIGINT") => signalAndWait(child, signal),
        pause: () => void child?.kill("SIGSTOP"),
        resume: () => void child?.kill("SIGCONT"),
        remove: () => fs.rmSync(dataDir, { recursive: true, force: true }),
    };
}
