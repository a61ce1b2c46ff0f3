/**
 * One load run with autocannon, reduced to the figures the report shows. A run may also keep a
 * timeline (answers per 250 ms, good and bad), which the failover scenario needs to show when
 * the errors happened.
 */
import os from "node:os";
import autocannon from "autocannon";
import { cpuShares, cpuSnapshot } from "./cpu";

export interface LoadOptions {
    url: string;
    /** Seconds. */
    duration: number;
    connections: number;
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
    /** Builds each request anew (rotating tokens, ids, bodies). */
    setupRequest?: (request: autocannon.Request) => autocannon.Request;
    /** Keep a timeline of answers, for runs where something happens midway. */
    timeline?: boolean;
    /** Called once the load is running, with the time it started. */
    onStart?: (startedAt: number) => void;
    /** Processes whose CPU use is reported beside the load tool's and the servers'. */
    watch?: { id: string; pid: number | undefined }[];
}

export interface TimelineSlot {
    /** Milliseconds since the start of the run. */
    atMs: number;
    ok: number;
    failed: number;
}

export interface LoadResult {
    /** Mean of the per-second samples, as autocannon reports it. */
    reqPerSec: number;
    latencyP50Ms: number;
    latencyP99Ms: number;
    latencyMaxMs: number;
    durationSec: number;
    completed: number;
    /** Connection errors and timeouts (no HTTP answer at all). */
    socketErrors: number;
    /** Answers outside 2xx. */
    non2xx: number;
    statusCodes: Record<string, number>;
    /** The machine's 1-minute load average when the run started: others may share the cores. */
    loadAverage: number;
    /** Percent of one core used during the run, per process (see cpu.ts). */
    cpuPercent: Record<string, number>;
    /** When it ran, in CLOCK_MONOTONIC µs: the clock of V8 CPU profiles, to cut one to this run. */
    window: { fromUs: number; toUs: number };
    timeline?: TimelineSlot[];
}

const SLOT_MS = 250;

function monotonicUs(): number {
    return Number(process.hrtime.bigint() / 1000n);
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
    const request: autocannon.Request = {
        method: options.method ?? "GET",
        path: options.path ?? "/",
        headers: options.headers,
        body: options.body,
    };
    if (options.setupRequest) request.setupRequest = options.setupRequest;
    const instance = autocannon({
        url: options.url,
        connections: options.connections,
        duration: options.duration,
        timeout: 10,
        requests: [request],
    });
    const startedAt = Date.now();
    const loadAverage = Math.round(os.loadavg()[0] * 100) / 100;
    const slots: TimelineSlot[] = [];
    if (options.timeline) {
        const slotAt = () => {
            const index = Math.floor((Date.now() - startedAt) / SLOT_MS);
            while (slots.length <= index)
                slots.push({ atMs: slots.length * SLOT_MS, ok: 0, failed: 0 });
            return slots[index];
        };
        instance.on("response", (_client: unknown, statusCode: number) => {
            if (statusCode >= 200 && statusCode < 300) slotAt().ok++;
            else slotAt().failed++;
        });
        instance.on("reqError", () => slotAt().failed++);
    }
    const watched = options.watch ?? [];
    const cpuBefore = cpuSnapshot(watched);
    const fromUs = monotonicUs();
    options.onStart?.(startedAt);
    const result = await instance;
    const toUs = monotonicUs();
    const cpuPercent = cpuShares(cpuBefore, cpuSnapshot(watched));
    const statusCodes: Record<string, number> = {};
    for (const [code, stats] of Object.entries(result.statusCodeStats)) {
        statusCodes[code] = stats.count;
    }
    return {
        reqPerSec: result.requests.average,
        latencyP50Ms: result.latency.p50,
        latencyP99Ms: result.latency.p99,
        latencyMaxMs: result.latency.max,
        durationSec: result.duration,
        completed: result.requests.total,
        socketErrors: result.errors,
        non2xx: result.non2xx,
        statusCodes,
        loadAverage,
        cpuPercent,
        window: { fromUs, toUs },
        timeline: options.timeline ? slots : undefined,
    };
}

/** A short run whose figures are thrown away: JIT, connection pools and caches get warm. */
export async function warmUp(options: LoadOptions, seconds: number): Promise<void> {
    if (seconds <= 0) return;
    await runLoad({ ...options, duration: seconds, timeline: false, onStart: undefined });
}

/** Answers with this status per second of the run. */
export function statusRate(result: LoadResult, status: number): number {
    return (result.statusCodes[String(status)] ?? 0) / result.durationSec;
}
