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
            async kill(signal = "SIGKILL") {
                if (!child || child.exitCode !== null) return;
                const exited = new Promise(resolve => child!.once("exit", resolve));
                child.kill(signal);
                await exited;
            },
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
