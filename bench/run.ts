/**
 * `npm run bench`: starts a real local cluster and a raw `node:http` baseline, drives every
 * scenario of issue 6 with autocannon, prints the table against the goals and writes
 * bench/results/latest.{json,md}. Everything it starts it removes again, on success, on failure
 * and on Ctrl-C. See bench/README.md for the knobs (BENCH_* variables).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readConfig } from "../lib/config";
import { BenchCluster } from "./cluster";
import { mapLimit } from "./client";
import { timeEmbeddedStarts } from "./embedded";
import { runLoad, warmUp } from "./load";
import {
    benchApiWorkers,
    benchNodeFlags,
    childPids,
    freePort,
    ROOT,
    rssMbOf,
    sleep,
    startProcess,
    waitUntilReady,
    type BenchProcess,
} from "./processes";
import { profileMarkdown, summarizeProfile, type ProfileWindow } from "./profile-summary";
import {
    machineInfo,
    tableRows,
    textTable,
    writeMarkdown,
    writeResults,
    type BenchResults,
} from "./report";
import {
    adminLogin,
    failover,
    graphqlExecuted,
    graphqlListing,
    hotProduct,
    LISTING_PATH,
    login,
    productById,
    randomOrders,
    restListing,
    stall,
    type BenchContext,
    type BenchSettings,
} from "./scenarios";

const SCENARIOS = [
    "baseline",
    "rest",
    "graphql",
    "graphql-exec",
    "product",
    "login",
    "orders",
    "hot",
    "rss",
    "stall",
    "failover",
    "embedded",
] as const;
type ScenarioName = (typeof SCENARIOS)[number];

const NODES = ["api", "users", "products-1", "products-2", "orders"];

/** Scenarios whose requests go through the cluster: what a node's profile can explain. */
const CLUSTER_SCENARIOS = new Set([
    "rest",
    "graphql",
    "graphql-exec",
    "product",
    "login",
    "orders",
    "hot",
    "stall",
    "failover",
]);

const PRODUCTS = 200;
/** Far more than any run can sell: a shortfall (409) would measure the wrong thing. */
const STOCK = 1_000_000;

function positive(name: string, fallback: number): number {
    const value = Number(process.env[name] || fallback);
    if (!(value > 0)) throw new Error(`${name} must be a positive number`);
    return value;
}

function chosenScenarios(): Set<ScenarioName> {
    const listed = (process.env.BENCH_SCENARIOS ?? "").split(",").map(s => s.trim());
    const names = listed.filter(Boolean);
    for (const name of names) {
        if (!(SCENARIOS as readonly string[]).includes(name)) {
            throw new Error(`BENCH_SCENARIOS: unknown "${name}"; known: ${SCENARIOS.join(", ")}`);
        }
    }
    return new Set((names.length ? names : SCENARIOS) as ScenarioName[]);
}

/** `BENCH_PROFILE`: node ids to run with `--cpu-prof`, comma separated. */
function profiledNodes(): string[] {
    const ids = (process.env.BENCH_PROFILE ?? "")
        .split(",")
        .map(id => id.trim())
        .filter(Boolean);
    for (const id of ids) {
        if (!NODES.includes(id)) {
            throw new Error(`BENCH_PROFILE: unknown node "${id}"; known: ${NODES.join(", ")}`);
        }
    }
    return ids;
}

function log(line: string): void {
    process.stdout.write(`${line}\n`);
}

/** Cleanups run once, last registered first, whatever ends the run. */
const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | null = null;
function cleanUp(): Promise<void> {
    cleaning ??= (async () => {
        while (cleanups.length) {
            await cleanups.pop()!().catch(error =>
                log(`cleanup failed: ${(error as Error).message}`),
            );
        }
    })();
    return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
        log(`\n${signal}: stopping the cluster and removing its data…`);
        void cleanUp().then(() => process.exit(130));
    });
}

async function startBaseline(body: string): Promise<{ process: BenchProcess; url: string }> {
    const bodyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "agora-bench-")), "page.json");
    fs.writeFileSync(bodyFile, body);
    const port = await freePort();
    const baseline = startProcess("baseline", path.join(__dirname, "baseline.js"), {
        ...process.env,
        BASELINE_PORT: String(port),
        BASELINE_BODY_FILE: bodyFile,
    });
    cleanups.push(async () => {
        await baseline.stop();
        fs.rmSync(path.dirname(bodyFile), { recursive: true, force: true });
    });
    const url = `http://127.0.0.1:${port}`;
    await waitUntilReady(baseline, url);
    return { process: baseline, url };
}

function describeCpu(cpu: Record<string, number>): string {
    return Object.entries(cpu)
        .map(([label, percent]) => `${label} ${percent}`)
        .join(", ");
}

function rssOf(cluster: BenchCluster): Record<string, number> {
    const rss: Record<string, number> = {};
    const round = (mb: number) => Math.round(mb * 10) / 10;
    for (const node of cluster.nodes) {
        const mb = node.process.rssMb();
        if (mb === null) continue;
        const workers = node.process.child.pid ? childPids(node.process.child.pid) : [];
        // A gateway with API_WORKERS: each worker is a node of its own; the primary is listed too.
        workers.forEach((pid, index) => {
            const workerMb = rssMbOf(pid);
            if (workerMb !== null) rss[`${node.id}-w${index}`] = round(workerMb);
        });
        rss[workers.length ? `${node.id} (primary)` : node.id] = round(mb);
    }
    return rss;
}

async function main(): Promise<void> {
    const chosen = chosenScenarios();
    const profiled = profiledNodes();
    const profile = profiled.length > 0;
    const settings: BenchSettings = {
        duration: positive("BENCH_DURATION", 10),
        connections: positive("BENCH_CONNECTIONS", 50),
        warmup: Number(process.env.BENCH_WARMUP ?? 2),
        loginConnections: positive("BENCH_LOGIN_CONNECTIONS", 10),
        failoverDuration: Math.max(positive("BENCH_DURATION", 10) * 1.5, 15),
    };
    const buyerCount = positive("BENCH_BUYERS", 64);
    const results: BenchResults = {
        generatedAt: new Date().toISOString(),
        machine: machineInfo(),
        settings: {
            ...settings,
            products: PRODUCTS,
            buyers: buyerCount,
            // Who picks the node of each call (DISABLE_BALANCER, lib/config.ts).
            balancer: readConfig().disableBalancer ? "NATS queue groups" : "Moleculer",
            nodeFlags: benchNodeFlags().join(" ") || "none",
            apiWorkers: benchApiWorkers(),
        },
        scenarios: {},
    };
    const m = results.machine;
    log(`Agora benchmark on ${m.cpu}, ${m.cores} cores, ${m.ramGb} GB, Node ${m.node}`);
    log(
        `scenarios: ${[...chosen].join(", ")}; ${settings.duration} s each, ${settings.connections} connections`,
    );

    const profileDir = profile
        ? fs.mkdtempSync(path.join(os.tmpdir(), "agora-bench-profile-"))
        : "";
    const cluster = new BenchCluster({
        profiled,
        profileDir,
    });
    cleanups.push(() => cluster.stop());
    await cluster.start(log);
    const api = cluster.api;
    const adminToken = await adminLogin(api);

    const seedStarted = Date.now();
    const [products, hot, buyers] = await Promise.all([
        mapLimit(
            Array.from({ length: PRODUCTS }, (_, i) => i),
            8,
            i => api.createProduct(adminToken, i, STOCK),
        ),
        api.createProduct(adminToken, PRODUCTS, STOCK),
        // Registration and login hash with bcrypt: this is what takes the seeding time.
        mapLimit(
            Array.from({ length: buyerCount }, (_, i) => i),
            4,
            i => api.registerBuyer(i),
        ),
    ]);
    log(
        `seeded ${PRODUCTS + 1} products and ${buyerCount} buyers in ${Date.now() - seedStarted} ms`,
    );
    const context: BenchContext = {
        cluster,
        api,
        adminToken,
        products: products.map(p => ({ id: p.id, stock: p.stock })),
        hot: { id: hot.id, stock: hot.stock },
        buyers,
        settings,
        log,
    };
    const s = results.scenarios;

    let idleRss: Record<string, number> = {};
    if (chosen.has("rss")) {
        await sleep(5000);
        idleRss = rssOf(cluster);
        log(`idle RSS (MB): ${JSON.stringify(idleRss)}`);
    }

    const page = await api.request("GET", LISTING_PATH);
    if (page.status !== 200) throw new Error(`The listing answers ${page.status}: ${page.text}`);
    if (chosen.has("baseline")) {
        const baseline = await startBaseline(page.text);
        log("baseline: raw node:http serving the same page…");
        const options = {
            url: baseline.url,
            duration: settings.duration,
            connections: settings.connections,
            watch: [{ id: "baseline", pid: baseline.process.child.pid }],
        };
        await warmUp({ ...options, connections: 10 }, settings.warmup);
        s.baseline = await runLoad(options);
        log(`  CPU % of a core: ${describeCpu(s.baseline.cpuPercent)}`);
        await baseline.process.stop();
    }
    /** Each step stores its figures in `results` and hands them back for the CPU line. */
    const steps: [ScenarioName, string, () => Promise<{ cpuPercent?: Record<string, number> }>][] =
        [
            ["rest", "REST listing (cached)", async () => (s.rest = await restListing(context))],
            ["graphql", "GraphQL listing", async () => (s.graphql = await graphqlListing(context))],
            [
                "graphql-exec",
                "GraphQL listing, executed",
                async () => (s.graphqlExecuted = await graphqlExecuted(context)),
            ],
            ["product", "product by id", async () => (s.product = await productById(context))],
            ["login", "login", async () => (s.login = await login(context))],
            [
                "orders",
                "orders on random products",
                async () => (s.orders = await randomOrders(context)),
            ],
            ["hot", "hot product", async () => (s.hot = await hotProduct(context))],
            [
                "rss",
                "RSS after load",
                async () => {
                    await sleep(3000);
                    s.rss = { idleMb: idleRss, afterLoadMb: rssOf(cluster) };
                    return {};
                },
            ],
            [
                "stall",
                "listing while products-2 hangs",
                async () => (s.stall = await stall(context)),
            ],
            [
                "failover",
                "listing while products-2 is killed",
                async () => (s.failover = await failover(context)),
            ],
        ];
    for (const [name, title, run] of steps) {
        if (!chosen.has(name)) continue;
        log(`${title}…`);
        const { cpuPercent } = await run();
        if (cpuPercent) log(`  CPU % of a core: ${describeCpu(cpuPercent)}`);
    }

    log("stopping the cluster…");
    await cleanUp();
    if (chosen.has("embedded")) {
        log("embedded npm start, twice…");
        s.embedded = await timeEmbeddedStarts();
    }

    const rows = tableRows(results);
    log("");
    process.stdout.write(textTable(rows));
    if (s.hot) log(`\nhot product check: ${JSON.stringify(s.hot.check)}`);
    for (const f of [s.stall, s.failover]) {
        if (!f) continue;
        log(
            `${f.fault} timeline (answers per ${f.timeline.slotMs} ms, ${f.fault} at ${f.killAtMs} ms):`,
        );
        log(`  ok     ${f.timeline.ok.join(" ")}`);
        log(`  failed ${f.timeline.failed.join(" ")}`);
    }

    // Partial or profiled runs are not comparable with a full one: they don't replace `latest`.
    const complete = chosen.size === SCENARIOS.length && !profile;
    const written = await writeResults(results, rows, complete ? "latest" : "partial");
    log(`\nwritten: ${written.map(file => path.relative(process.cwd(), file)).join(", ")}`);

    for (const id of profiled) {
        const dir = path.join(profileDir, id);
        // With API_WORKERS the primary and each worker write one: the largest is a worker's (the
        // primary only hands out connections).
        const file = fs
            .readdirSync(dir)
            .filter(name => name.endsWith(".cpuprofile"))
            .sort(
                (a, b) => fs.statSync(path.join(dir, b)).size - fs.statSync(path.join(dir, a)).size,
            )[0];
        if (!file) {
            // A node killed with SIGKILL (the failover scenario's victim) writes no profile.
            log(`no CPU profile from ${id} in ${dir}`);
            continue;
        }
        // Cut to the measured part of each scenario that ran through the cluster.
        const sections = Object.entries(s)
            .filter(([name]) => CLUSTER_SCENARIOS.has(name))
            .map(([name, result]) =>
                profileMarkdown(
                    summarizeProfile(path.join(dir, file), {
                        window: (result as { window: ProfileWindow }).window,
                    }),
                    `CPU profile of ${id}: ${name} (measured part only)`,
                ),
            );
        const target = path.join(ROOT, `bench/results/profile-${id}.md`);
        await writeMarkdown(target, sections.join("\n"));
        log(`\n${sections.join("\n")}`);
        log(`profile: ${path.join(dir, file)}\nsummary: ${path.relative(process.cwd(), target)}`);
    }
}

main().then(
    () => process.exit(0),
    async (error: Error) => {
        log(`\nbenchmark failed: ${error.stack ?? error.message}`);
        await cleanUp();
        process.exit(1);
    },
);
