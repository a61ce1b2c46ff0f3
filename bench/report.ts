/**
 * The figures of a run against the goals of issue 6: a table on the terminal, and
 * `bench/results/latest.json` / `latest.md` (small, Prettier-formatted, meant to be committed).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as prettier from "prettier";
import type { LoadResult } from "./load";
import { ROOT } from "./processes";

export interface Machine {
    cpu: string;
    cores: number;
    ramGb: number;
    node: string;
    os: string;
    /** 1-minute load average before the run: others' work on the same cores skews figures. */
    loadAverage: number;
}

export interface HotProductCheck {
    initialStock: number;
    finalStock: number;
    /** Sum of the quantities of CONFIRMED orders of the hot product, read back as an admin. */
    confirmedQuantity: number;
    /**
     * 201 answers the buyers got. Up to one order per connection more is confirmed: the load
     * stops with those in flight, and they complete after the count.
     */
    confirmedAnswers: number;
    pendingLeft: number;
    oversold: number;
    /** final stock + confirmed quantities == initial stock, and stock >= 0. */
    consistent: boolean;
    /** Products (of all the seeded ones) whose stock doesn't match their confirmed orders. */
    productsOutOfBalance: number;
}

export interface FailoverFigures {
    /** `kill`: SIGKILL; `pause`: SIGSTOP, the process hangs with its connections open. */
    fault: "kill" | "pause";
    killedNode: string;
    killAtMs: number;
    errorsAfterKill: number;
    /** From the kill to the last failed answer, or 0 when none failed. */
    lastErrorAfterKillMs: number;
    /** Time after the kill without a single successful answer (every connection waiting). */
    stalledMs: number;
    /** Time after the kill with fewer than half the successful answers of before it. */
    degradedMs: number;
    timeline: { slotMs: number; ok: number[]; failed: number[] };
}

export interface BenchResults {
    generatedAt: string;
    machine: Machine;
    settings: Record<string, number | string>;
    scenarios: {
        baseline?: LoadResult;
        rest?: LoadResult;
        graphql?: LoadResult;
        graphqlExecuted?: LoadResult;
        product?: LoadResult;
        login?: LoadResult & { connections: number };
        orders?: LoadResult & { confirmedPerSec: number };
        hot?: LoadResult & { confirmedPerSec: number; check: HotProductCheck };
        stall?: Omit<LoadResult, "timeline"> & FailoverFigures;
        failover?: Omit<LoadResult, "timeline"> & FailoverFigures;
        rss?: { idleMb: Record<string, number>; afterLoadMb: Record<string, number> };
        embedded?: { firstMs: number; secondMs: number };
    };
}

export interface Row {
    scenario: string;
    reqPerSec: string;
    p50: string;
    p99: string;
    errors: string;
    figure: string;
    goal: string;
    met: string;
}

export function machineInfo(): Machine {
    const cpus = os.cpus();
    return {
        cpu: cpus[0]?.model.trim() ?? "unknown",
        cores: cpus.length,
        ramGb: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        os: `${os.type()} ${os.release()}`,
        loadAverage: Math.round(os.loadavg()[0] * 100) / 100,
    };
}

const number = (value: number) => Math.round(value).toLocaleString("en-US");
const ms = (value: number) => (value < 10 ? value.toFixed(1) : number(value));
const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
const yesNo = (ok: boolean) => (ok ? "yes" : "**no**");

function loadRow(
    scenario: string,
    result: LoadResult,
    figure: string,
    goal: string,
    met: string,
    reqPerSec = result.reqPerSec,
): Row {
    return {
        scenario,
        reqPerSec: number(reqPerSec),
        p50: ms(result.latencyP50Ms),
        p99: ms(result.latencyP99Ms),
        errors: number(result.socketErrors + result.non2xx),
        figure,
        goal,
        met,
    };
}

export function tableRows(results: BenchResults): Row[] {
    const s = results.scenarios;
    const rows: Row[] = [];
    const raw = s.baseline?.reqPerSec ?? 0;
    if (s.baseline) {
        rows.push(
            loadRow("raw node:http, same bytes (baseline)", s.baseline, "1.00 × raw", "limit", "—"),
        );
    }
    if (s.rest) {
        const r = ratio(s.rest.reqPerSec, raw);
        rows.push(
            loadRow(
                "REST listing, cached (cluster)",
                s.rest,
                raw ? `${r.toFixed(2)} × raw` : "",
                "≥ 0.35 × raw",
                raw ? yesNo(r >= 0.35) : "—",
            ),
        );
    }
    if (s.graphql) {
        const r = ratio(s.graphql.reqPerSec, s.rest?.reqPerSec ?? 0);
        const vsRaw = raw ? ` (${ratio(s.graphql.reqPerSec, raw).toFixed(2)} × raw)` : "";
        rows.push(
            loadRow(
                "GraphQL listing, same page",
                s.graphql,
                s.rest ? `${r.toFixed(2)} × REST${vsRaw}` : "",
                "≥ 0.6 × REST",
                s.rest ? yesNo(r >= 0.6) : "—",
            ),
        );
    }
    if (s.graphqlExecuted) {
        const r = ratio(s.graphqlExecuted.reqPerSec, s.rest?.reqPerSec ?? 0);
        rows.push(
            loadRow(
                "GraphQL listing + health, executed by Apollo",
                s.graphqlExecuted,
                s.rest ? `${r.toFixed(2)} × REST` : "",
                "report",
                "—",
            ),
        );
    }
    if (s.product) {
        const figure = raw ? `${ratio(s.product.reqPerSec, raw).toFixed(2)} × raw` : "";
        rows.push(loadRow("product by id, cached", s.product, figure, "—", "—"));
    }
    if (s.login) {
        rows.push(
            loadRow(
                `login (bcrypt cost 10, CPU-bound; ${s.login.connections} conns)`,
                s.login,
                "bcrypt-bound",
                "report",
                "—",
            ),
        );
    }
    if (s.orders) {
        rows.push(
            loadRow(
                "orders on random products (confirmed/s)",
                s.orders,
                `${number(s.orders.confirmedPerSec)} orders/s`,
                "≥ 1,000/s, p99 ≤ 250 ms",
                yesNo(s.orders.confirmedPerSec >= 1000 && s.orders.latencyP99Ms <= 250),
                s.orders.confirmedPerSec,
            ),
        );
    }
    if (s.hot) {
        const c = s.hot.check;
        rows.push(
            loadRow(
                "hot product (confirmed reservations/s)",
                s.hot,
                `${number(s.hot.confirmedPerSec)}/s, oversold ${c.oversold}` +
                    (c.consistent ? ", stock balances" : ", **stock does not balance**"),
                "≥ 500/s, 0 oversold",
                yesNo(s.hot.confirmedPerSec >= 500 && c.oversold === 0 && c.consistent),
                s.hot.confirmedPerSec,
            ),
        );
    }
    for (const f of [s.stall, s.failover]) {
        if (!f) continue;
        const what = f.fault === "kill" ? "killed (SIGKILL)" : "hung (SIGSTOP)";
        const after = `after the ${f.fault === "kill" ? "kill" : "pause"}`;
        rows.push({
            scenario: `REST listing, uncached, ${f.killedNode} ${what} midway`,
            reqPerSec: number(f.reqPerSec),
            p50: ms(f.latencyP50Ms),
            p99: ms(f.latencyP99Ms),
            errors: number(f.socketErrors + f.non2xx),
            figure:
                (f.errorsAfterKill
                    ? `${f.errorsAfterKill} errors until ${(f.lastErrorAfterKillMs / 1000).toFixed(1)} s ${after}`
                    : "no error") +
                `; ${(f.degradedMs / 1000).toFixed(1)} s below half rate, ` +
                `${(f.stalledMs / 1000).toFixed(1)} s with no answer at all; slowest ${ms(f.latencyMaxMs)} ms`,
            goal: "report",
            met: "—",
        });
    }
    if (s.rss) {
        const idle = Object.values(s.rss.idleMb);
        const worst = Math.max(...idle);
        rows.push({
            scenario: "idle RSS per node (largest)",
            reqPerSec: "",
            p50: "",
            p99: "",
            errors: "",
            figure: Object.entries(s.rss.idleMb)
                .map(([node, mb]) => `${node} ${mb.toFixed(0)}`)
                .join(", ")
                .concat(" MB"),
            goal: "≤ 120 MB",
            met: yesNo(worst <= 120),
        });
    }
    if (s.embedded) {
        for (const [label, value] of [
            ["embedded start to ready, first (initdb)", s.embedded.firstMs],
            ["embedded start to ready, second", s.embedded.secondMs],
        ] as const) {
            rows.push({
                scenario: label,
                reqPerSec: "",
                p50: "",
                p99: "",
                errors: "",
                figure: `${(value / 1000).toFixed(1)} s`,
                goal: "≤ 10 s",
                met: yesNo(value <= 10_000),
            });
        }
    }
    return rows;
}

const HEADERS: Row = {
    scenario: "scenario",
    reqPerSec: "req/s",
    p50: "p50 ms",
    p99: "p99 ms",
    errors: "errors",
    figure: "ratio / figure",
    goal: "goal",
    met: "met?",
};
const COLUMNS = Object.keys(HEADERS) as (keyof Row)[];
const NUMERIC = new Set<keyof Row>(["reqPerSec", "p50", "p99", "errors"]);

export function textTable(rows: Row[]): string {
    const all = [HEADERS, ...rows].map(row => ({ ...row, met: row.met.replace(/\*/g, "") }));
    const widths = COLUMNS.map(column => Math.max(...all.map(row => row[column].length)));
    const line = (row: Row) =>
        COLUMNS.map((column, i) =>
            NUMERIC.has(column) ? row[column].padStart(widths[i]) : row[column].padEnd(widths[i]),
        ).join("  ");
    return [line(all[0]), widths.map(w => "-".repeat(w)).join("  "), ...all.slice(1).map(line)]
        .join("\n")
        .concat("\n");
}

function markdownTable(rows: Row[]): string {
    const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
    return [
        line(COLUMNS.map(column => HEADERS[column])),
        line(COLUMNS.map(column => (NUMERIC.has(column) ? "--:" : "---"))),
        ...rows.map(row => line(COLUMNS.map(column => row[column]))),
    ].join("\n");
}

const CPU_COLUMNS = [
    "api",
    "users",
    "products-1",
    "products-2",
    "orders",
    "baseline",
    "load tool (bench)",
    "nats-server",
    "redis-server",
    "postgres",
    "other",
    "idle",
];

/** Who used the cores, scenario by scenario: the context every figure above needs. */
function cpuTable(results: BenchResults): string {
    const measured = Object.entries(results.scenarios).flatMap(([name, result]) =>
        "cpuPercent" in result ? [[name, result.cpuPercent] as const] : [],
    );
    if (!measured.length) return "";
    const seen = new Set(measured.flatMap(([, cpu]) => Object.keys(cpu)));
    const labels = [...CPU_COLUMNS.filter(label => seen.has(label)), ...seen].filter(
        (label, i, all) => all.indexOf(label) === i,
    );
    const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
    return [
        "CPU used during each scenario, in % of one core (200 % = the whole machine), from `/proc`. " +
            "`other` is everything else running on the machine at the time.",
        "",
        line(["scenario", ...labels]),
        line(["---", ...labels.map(() => "--:")]),
        ...measured.map(([name, cpu]) =>
            line([name, ...labels.map(label => String(cpu[label] ?? ""))]),
        ),
        "",
    ].join("\n");
}

export function markdownReport(results: BenchResults, rows: Row[]): string {
    const m = results.machine;
    const settings = Object.entries(results.settings)
        .map(([name, value]) => `${name} ${value}`)
        .join(", ");
    return [
        "# Agora benchmark: latest run",
        "",
        `${results.generatedAt} on ${m.cpu}, ${m.cores} cores, ${m.ramGb} GB RAM, Node ${m.node}, ${m.os}. ` +
            "The load tool, every node, PostgreSQL, Redis and NATS share these cores " +
            `(1-minute load average before the run: ${m.loadAverage}).`,
        "",
        `Settings: ${settings}.`,
        "",
        markdownTable(rows),
        "",
        cpuTable(results),
        "Reproduce with `npm run bench` (see bench/README.md); raw figures in `latest.json`.",
        "",
    ].join("\n");
}

async function formatted(file: string, text: string): Promise<string> {
    const options = (await prettier.resolveConfig(file)) ?? {};
    return prettier.format(text, { ...options, filepath: file });
}

/** Writes `<name>.json` and `<name>.md` under bench/results; returns their paths. */
export async function writeResults(
    results: BenchResults,
    rows: Row[],
    name = "latest",
): Promise<string[]> {
    const dir = path.join(ROOT, "bench", "results");
    fs.mkdirSync(dir, { recursive: true });
    const json = path.join(dir, `${name}.json`);
    const markdown = path.join(dir, `${name}.md`);
    fs.writeFileSync(json, await formatted(json, JSON.stringify({ ...results, table: rows })));
    fs.writeFileSync(markdown, await formatted(markdown, markdownReport(results, rows)));
    return [json, markdown];
}

export async function writeMarkdown(file: string, text: string): Promise<void> {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, await formatted(file, text));
}
