/**
 * Where the time goes in a V8 CPU profile (`node --cpu-prof`): the top functions by self time and
 * the self time per package, with Moleculer split into its parts (serializer, cacher, validator,
 * metrics, transit…) since those are the knobs a broker config can turn.
 *
 *     node dist/bench/profile-summary.js <file.cpuprofile> [top]
 *
 * `npm run bench` with `BENCH_PROFILE=api` runs it on the gateway's profile by itself.
 */
import fs from "node:fs";
import path from "node:path";

interface CallFrame {
    functionName: string;
    url: string;
    lineNumber: number;
    columnNumber: number;
}

interface CpuProfile {
    nodes: { id: number; callFrame: CallFrame }[];
    samples: number[];
    /** Microseconds between samples; `timeDeltas[i]` is the time before sample `i`. */
    timeDeltas: number[];
    startTime: number;
    endTime: number;
}

export interface FunctionTime {
    name: string;
    area: string;
    location: string;
    selfMs: number;
}

export interface ProfileSummary {
    file: string;
    totalMs: number;
    idleMs: number;
    busyMs: number;
    functions: FunctionTime[];
    areas: { area: string; selfMs: number }[];
}

const MOLECULER_PARTS: [RegExp, string][] = [
    [/\/src\/serializers\//, "moleculer: serializer"],
    [/\/src\/cachers\//, "moleculer: cacher"],
    [/\/src\/validators\//, "moleculer: validator"],
    [/\/src\/metrics\//, "moleculer: metrics"],
    [/\/src\/(transit|transporters\/|packet)/, "moleculer: transit"],
    [/\/src\/middlewares\//, "moleculer: middlewares"],
    [/\/src\/registry\//, "moleculer: registry"],
];

/**
 * Native socket writes. Their samples include the time the process waits for a core after the
 * write woke its reader (NATS, the client): on a saturated box that is mostly not CPU work.
 */
const SOCKET_WRITES = new Set(["writeBuffer", "writev", "writeUtf8String", "writeLatin1String"]);
const SOCKET_WRITES_AREA = "socket writes (syscalls, see note)";

/** The package (or part of Moleculer, or of Node) a frame's code belongs to. */
export function areaOf(frame: CallFrame): string {
    const url = frame.url;
    if (!url) {
        if (frame.functionName.startsWith("(")) return frame.functionName;
        if (SOCKET_WRITES.has(frame.functionName)) return SOCKET_WRITES_AREA;
        return "V8 builtins (JSON, RegExp, …)";
    }
    if (url.startsWith("node:")) {
        const module = /^node:(?:internal\/)?([a-z_]+)/.exec(url)?.[1] ?? "internal";
        return `node: ${module}`;
    }
    const packages = url.split("/node_modules/");
    if (packages.length > 1) {
        const tail = packages[packages.length - 1];
        const parts = tail.split("/");
        const name = parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
        if (name === "moleculer") {
            const part = MOLECULER_PARTS.find(([pattern]) => pattern.test(url));
            return part ? part[1] : "moleculer: core";
        }
        return name;
    }
    return "agora (own code)";
}

function shortLocation(frame: CallFrame): string {
    if (!frame.url) return "";
    const file = frame.url.replace(/^file:\/\//, "");
    const inPackage = file.split("/node_modules/").pop()!;
    const shown = inPackage === file ? path.relative(process.cwd(), file) : inPackage;
    return `${shown}:${frame.lineNumber + 1}`;
}

/** A part of the profile, in the profile's own clock (CLOCK_MONOTONIC µs on Linux). */
export interface ProfileWindow {
    fromUs: number;
    toUs: number;
}

export function summarizeProfile(
    file: string,
    options: { top?: number; window?: ProfileWindow } = {},
): ProfileSummary {
    const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
    const frames = new Map(profile.nodes.map(node => [node.id, node.callFrame]));
    const selfByNode = new Map<number, number>();
    const window = options.window ?? { fromUs: -Infinity, toUs: Infinity };
    let at = profile.startTime;
    profile.samples.forEach((nodeId, index) => {
        const delta = profile.timeDeltas[index] ?? 0;
        at += delta;
        if (at < window.fromUs || at > window.toUs) return;
        selfByNode.set(nodeId, (selfByNode.get(nodeId) ?? 0) + delta);
    });

    const byFunction = new Map<string, FunctionTime>();
    const byArea = new Map<string, number>();
    let totalUs = 0;
    let idleUs = 0;
    for (const [nodeId, us] of selfByNode) {
        const frame = frames.get(nodeId)!;
        totalUs += us;
        if (frame.functionName === "(idle)") {
            idleUs += us;
            continue;
        }
        const area = areaOf(frame);
        byArea.set(area, (byArea.get(area) ?? 0) + us);
        const location = shortLocation(frame);
        const key = `${frame.functionName}@${location}`;
        const entry = byFunction.get(key) ?? {
            name: frame.functionName || "(anonymous)",
            area,
            location,
            selfMs: 0,
        };
        entry.selfMs += us / 1000;
        byFunction.set(key, entry);
    }
    const functions = [...byFunction.values()]
        .sort((a, b) => b.selfMs - a.selfMs)
        .slice(0, options.top ?? 25);
    const areas = [...byArea.entries()]
        .map(([area, us]) => ({ area, selfMs: us / 1000 }))
        .sort((a, b) => b.selfMs - a.selfMs);
    return {
        file,
        totalMs: totalUs / 1000,
        idleMs: idleUs / 1000,
        busyMs: (totalUs - idleUs) / 1000,
        functions,
        areas,
    };
}

export function profileMarkdown(summary: ProfileSummary, title: string): string {
    const writes = summary.areas.find(a => a.area === SOCKET_WRITES_AREA)?.selfMs ?? 0;
    const work = summary.busyMs - writes;
    const share = (ms: number, of: number) => `${((100 * ms) / of).toFixed(1)} %`;
    // The long tail of packages says nothing: one line sums it.
    const shown = summary.areas.filter(a => a.selfMs >= summary.busyMs * 0.005);
    const rest = summary.areas.slice(shown.length);
    const restMs = rest.reduce((sum, a) => sum + a.selfMs, 0);
    const workShare = (area: string, ms: number) =>
        area === SOCKET_WRITES_AREA ? "" : share(ms, work);
    const lines = [
        `# ${title}`,
        "",
        `Profile \`${path.basename(summary.file)}\`: ${(summary.totalMs / 1000).toFixed(1)} s sampled, ` +
            `${(summary.busyMs / 1000).toFixed(1)} s busy, ${(summary.idleMs / 1000).toFixed(1)} s idle.`,
        "",
        "Samples are taken on wall-clock time: a process that waits for a core while in a socket " +
            "write (its reader, woken by the write, took the core) is counted in that write. On a " +
            "saturated 2-core box the socket-write line is therefore mostly waiting, not work, so " +
            'the last column gives each share of the busy time without it ("work").',
        "",
        "## Self time by package",
        "",
        "| package / part | self ms | share of busy | share of work |",
        "| --- | --: | --: | --: |",
        ...shown.map(
            a =>
                `| ${a.area} | ${a.selfMs.toFixed(0)} | ${share(a.selfMs, summary.busyMs)} | ${workShare(a.area, a.selfMs)} |`,
        ),
        ...(rest.length
            ? [
                  `| ${rest.length} others, each below 0.5 % | ${restMs.toFixed(0)} | ${share(restMs, summary.busyMs)} | ${share(restMs, work)} |`,
              ]
            : []),
        "",
        "## Top functions by self time",
        "",
        "| function | package / part | where | self ms | share of busy | share of work |",
        "| --- | --- | --- | --: | --: | --: |",
        ...summary.functions.map(
            f =>
                `| \`${f.name}\` | ${f.area} | ${f.location ? `\`${f.location}\`` : ""} | ${f.selfMs.toFixed(0)} | ${share(f.selfMs, summary.busyMs)} | ${workShare(f.area, f.selfMs)} |`,
        ),
        "",
    ];
    return lines.join("\n");
}

if (require.main === module) {
    const [file, top] = process.argv.slice(2);
    if (!file) {
        process.stderr.write("usage: node dist/bench/profile-summary.js <file.cpuprofile> [top]\n");
        process.exit(2);
    }
    const summary = summarizeProfile(file, { top: top ? Number(top) : 25 });
    process.stdout.write(profileMarkdown(summary, "CPU profile"));
}
