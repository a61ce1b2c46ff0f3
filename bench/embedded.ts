/**
 * The newcomer's `npm start`: the whole shop in one process on embedded defaults, timed from
 * spawn to a 200 on `/health/ready`. The first start creates the embedded PostgreSQL (initdb);
 * the second finds it. The build step of `npm start` is not counted: it is the same `tsc` for
 * every start and says nothing about the shop.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cleanEnvironment } from "./cluster";
import { AGORA_ENTRY, benchNodeFlags, freePort, startProcess, waitUntilReady } from "./processes";

export interface EmbeddedStartTimes {
    firstMs: number;
    secondMs: number;
}

export async function timeEmbeddedStarts(): Promise<EmbeddedStartTimes> {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-bench-embedded-"));
    // As root, PostgreSQL runs as the `postgres` user, which must be able to enter the folder.
    fs.chmodSync(dataDir, 0o755);
    const port = await freePort();
    const env = {
        ...cleanEnvironment(),
        LOGLEVEL: "warn",
        DATA_DIR: dataDir,
        PORT: String(port),
        METRICS_PORT: String(await freePort()),
        EMBEDDED_DB_PORT: String(await freePort()),
    };
    const timeOneStart = async (name: string): Promise<number> => {
        const node = startProcess(name, AGORA_ENTRY, env, benchNodeFlags());
        try {
            await waitUntilReady(node, `http://127.0.0.1:${port}/health/ready`, 120_000, 25);
            return Date.now() - node.startedAt;
        } finally {
            await node.stop();
        }
    };
    try {
        const firstMs = await timeOneStart("embedded (first start)");
        const secondMs = await timeOneStart("embedded (second start)");
        return { firstMs, secondMs };
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
}
