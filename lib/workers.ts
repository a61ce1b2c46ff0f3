/**
 * `API_WORKERS`: a gateway node as several processes sharing its port (Node's cluster; the primary
 * hands out connections). The primary runs no broker: it starts the workers, each a whole gateway
 * node of its own (lib/config.ts gives it its node id and metrics port), starts again one that
 * dies, and on SIGTERM or SIGINT stops them all and exits when they have.
 */
import cluster, { type Worker } from "node:cluster";

/** How long a worker is given to stop after the signal, before it is killed. */
const STOP_GRACE_MS = 15_000;
/** Pause before a worker that died is started again (a crash loop restarts once a second). */
const RESTART_DELAY_MS = 1000;

export function superviseWorkers(count: number, log: (line: string) => void): void {
    const live = new Set<Worker>();
    let stopping = false;

    const start = (index: number) => {
        const worker = cluster.fork({ AGORA_WORKER_INDEX: String(index) });
        live.add(worker);
        worker.on("exit", (code, signal) => {
            live.delete(worker);
            if (stopping) {
                if (live.size === 0) process.exit(0);
                return;
            }
            log(`gateway worker ${index} exited (${signal ?? `code ${code}`}); starting it again`);
            setTimeout(() => {
                if (!stopping) start(index);
            }, RESTART_DELAY_MS);
        });
    };

    const stop = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        if (live.size === 0) process.exit(0);
        for (const worker of live) worker.process.kill(signal);
        setTimeout(() => {
            for (const worker of live) worker.process.kill("SIGKILL");
            process.exit(1);
        }, STOP_GRACE_MS).unref();
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));

    for (let index = 0; index < count; index++) start(index);
    log(`gateway: ${count} workers`);
}
