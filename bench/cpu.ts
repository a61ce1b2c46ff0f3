/**
 * Who used the cores during a scenario, from /proc (Linux): each node of the cluster, the load
 * tool itself, the shared servers (NATS, Redis, PostgreSQL) and everything else on the machine.
 * With 2 cores, a figure is only as good as this split: a node can't be faster than the CPU it
 * gets, and other people's work on the same box shows up as "other".
 */
import fs from "node:fs";
import os from "node:os";
import { childPids } from "./processes";

/** Kernel clock ticks per second (USER_HZ); 100 on every mainstream Linux build. */
const TICKS_PER_SECOND = 100;
const SERVERS = ["nats-server", "redis-server", "postgres"];

export interface CpuSnapshot {
    atMs: number;
    /** Ticks of CPU (user + system) per process label. */
    ticks: Record<string, number>;
    /** Busy ticks of the whole machine, all cores. */
    machineBusy: number;
}

function ownTicks(pid: number): number | null {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        // Fields after the command name, which may itself hold spaces and parentheses.
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return Number(fields[11]) + Number(fields[12]);
    } catch {
        return null;
    }
}

/** A process's ticks with those of its live children (a gateway's workers, `API_WORKERS`). */
function ticksOf(pid: number): number | null {
    const own = ownTicks(pid);
    if (own === null) return null;
    return childPids(pid).reduce((sum, child) => sum + (ownTicks(child) ?? 0), own);
}

function machineBusyTicks(): number {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
    const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
    return user + nice + system + irq + softirq + steal;
}

export function cpuSnapshot(nodes: { id: string; pid: number | undefined }[]): CpuSnapshot {
    const ticks: Record<string, number> = {};
    for (const node of nodes) {
        const value = node.pid === undefined ? null : ticksOf(node.pid);
        if (value !== null) ticks[node.id] = value;
    }
    ticks["load tool (bench)"] = ownTicks(process.pid) ?? 0;
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        let command: string;
        try {
            command = fs.readFileSync(`/proc/${entry}/comm`, "utf8").trim();
        } catch {
            continue;
        }
        if (!SERVERS.includes(command)) continue;
        ticks[command] = (ticks[command] ?? 0) + (ownTicks(Number(entry)) ?? 0);
    }
    return { atMs: Date.now(), ticks, machineBusy: machineBusyTicks() };
}

/**
 * Percent of one core each label used between two snapshots (200 % = both cores of a 2-core
 * box), plus `other` for the rest of the machine's busy time and `idle` for what was left.
 */
export function cpuShares(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
    const seconds = (after.atMs - before.atMs) / 1000;
    const percent = (ticks: number) => Math.round((100 * ticks) / TICKS_PER_SECOND / seconds);
    const shares: Record<string, number> = {};
    let accounted = 0;
    for (const [label, ticks] of Object.entries(after.ticks)) {
        // Processes that came or went midway (a postgres backend) count from zero.
        const used = Math.max(0, ticks - (before.ticks[label] ?? 0));
        accounted += used;
        shares[label] = percent(used);
    }
    const busy = after.machineBusy - before.machineBusy;
    shares.other = Math.max(0, percent(busy - accounted));
    shares.idle = Math.max(0, os.cpus().length * 100 - percent(busy));
    return shares;
}
