/**
 * Real Agora nodes as child processes (`node dist/bin/agora.js`, or `npm start`), for e2e tests:
 * start with an environment, wait until healthy, read their logs, stop them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export const ROOT = path.resolve(__dirname, "../..");

export interface NodeProcess {
    name: string;
    child: ChildProcess;
    logs(): string;
    stop(signal?: NodeJS.Signals): Promise<void>;
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

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

export function startNode(
    name: string,
    env: Record<string, string>,
    command: string[] = ["node", "dist/bin/agora.js"],
): NodeProcess {
    const child = spawn(command[0], command.slice(1), {
        cwd: ROOT,
        env: { ...process.env, LOGLEVEL: "warn", ...env },
        stdio: ["ignore", "pipe", "pipe"],
        // Its own process group, so that `npm start` and its node child stop together.
        detached: true,
    });
    let output = "";
    // TEST_NODE_LOG_DIR: every node's output also goes to a file there, to read after a failed run.
    const logDir = process.env.TEST_NODE_LOG_DIR;
    const logFile = logDir
        ? fs.createWriteStream(path.join(logDir, `${name}-${child.pid}.log`))
        : null;
    const keep = (chunk: Buffer) => {
        output += chunk;
        logFile?.write(chunk);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("exit", () => logFile?.end());
    const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
    return {
        name,
        child,
        logs: () => output,
        async stop(signal: NodeJS.Signals = "SIGTERM") {
            if (child.exitCode !== null || child.signalCode !== null) return;
            try {
                process.kill(-child.pid!, signal);
            } catch {
                return;
            }
            const timer = setTimeout(() => {
                try {
                    process.kill(-child.pid!, "SIGKILL");
                } catch {
                    // Already gone.
                }
            }, 10_000);
            await exited;
            clearTimeout(timer);
        },
    };
}

/** Polls `url` until it answers 200, or fails with the node's logs after `timeoutMs`. */
export async function waitUntilHealthy(
    node: NodeProcess,
    url: string,
    timeoutMs = 60_000,
): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (node.child.exitCode !== null) {
            throw new Error(`${node.name} exited with ${node.child.exitCode}:\n${node.logs()}`);
        }
        try {
            const response = await fetch(url);
            if (response.status === 200) return;
        } catch {
            // Not listening yet.
        }
        await new Promise(resolve => setTimeout(resolve, 200));
    }
    throw new Error(
        `${node.name} was not healthy at ${url} after ${timeoutMs} ms:\n${node.logs()}`,
    );
}
