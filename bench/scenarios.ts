/**
 * The load scenarios of issue 6, each against the running cluster through the public API, as
 * clients would use it. Every scenario warms up first (JIT, pools, caches), then measures.
 */
import crypto from "node:crypto";
import type autocannon from "autocannon";
import { ADMIN, type BenchCluster } from "./cluster";
import { mapLimit, type AgoraClient, type Buyer } from "./client";
import { runLoad, statusRate, warmUp, type LoadOptions, type LoadResult } from "./load";
import { sleep } from "./processes";
import type { FailoverFigures, HotProductCheck } from "./report";

export interface BenchSettings {
    /** Seconds of measured load per scenario. */
    duration: number;
    connections: number;
    /** Seconds of unmeasured load before each read scenario. */
    warmup: number;
    /** Concurrent logins: each costs ~90 ms of one core, so more only queue toward the timeout. */
    loginConnections: number;
    /** Seconds of the failover run; long enough to see the dead node cut off (~6 s). */
    failoverDuration: number;
}

export interface SeededProduct {
    id: string;
    stock: number;
}

export interface BenchContext {
    cluster: BenchCluster;
    api: AgoraClient;
    adminToken: string;
    products: SeededProduct[];
    hot: SeededProduct;
    buyers: Buyer[];
    settings: BenchSettings;
    log(line: string): void;
}

export const LISTING_PATH = "/api/products?page=1&pageSize=20";

/** The REST listing's page over GraphQL, every field of Product. */
export const LISTING_QUERY = `query Listing {
    products(page: 1, pageSize: 20) {
        rows { id name description price currency stock category createdAt updatedAt }
        total page pageSize totalPages
    }
}`;

const JSON_HEADERS = { "Content-Type": "application/json" };

async function measured(context: BenchContext, options: LoadOptions): Promise<LoadResult> {
    await warmUp(
        { ...options, connections: Math.min(10, options.connections) },
        context.settings.warmup,
    );
    return runLoad(options);
}

function base(
    context: BenchContext,
): Pick<LoadOptions, "url" | "duration" | "connections" | "watch"> {
    return {
        url: context.cluster.base,
        duration: context.settings.duration,
        connections: context.settings.connections,
        watch: context.cluster.nodes.map(node => ({ id: node.id, pid: node.process.child.pid })),
    };
}

export function restListing(context: BenchContext): Promise<LoadResult> {
    return measured(context, { ...base(context), path: LISTING_PATH });
}

export async function graphqlListing(context: BenchContext): Promise<LoadResult> {
    const body = JSON.stringify({ query: LISTING_QUERY });
    const check = await context.api.request<{ data?: unknown; errors?: unknown }>(
        "POST",
        "/graphql",
        { body: { query: LISTING_QUERY } },
    );
    if (check.status !== 200 || check.body.errors || !check.body.data) {
        throw new Error(`The GraphQL listing fails: ${check.status} ${check.text.slice(0, 500)}`);
    }
    return measured(context, {
        ...base(context),
        method: "POST",
        path: "/graphql",
        headers: JSON_HEADERS,
        body,
    });
}

/**
 * The same page over GraphQL with the gateway's own `health` field beside it: not a catalogue query
 * (docs/caching.md), so never answered from the gateway's cache of whole answers and executed by
 * Apollo each time, as every query that reads more than the catalogue is. Its text is the same every
 * time (Apollo keeps it parsed and validated), and the page's data still comes from the cached
 * `products.list` entry.
 */
export const EXECUTED_QUERY = LISTING_QUERY.replace("products(", "health\n    products(");

export async function graphqlExecuted(context: BenchContext): Promise<LoadResult> {
    const check = await context.api.request<{ data?: { health?: string }; errors?: unknown }>(
        "POST",
        "/graphql",
        { body: { query: EXECUTED_QUERY } },
    );
    if (check.status !== 200 || check.body.errors || check.body.data?.health !== "ok") {
        throw new Error(
            `The executed GraphQL listing fails: ${check.status} ${check.text.slice(0, 500)}`,
        );
    }
    return measured(context, {
        ...base(context),
        method: "POST",
        path: "/graphql",
        headers: JSON_HEADERS,
        body: JSON.stringify({ query: EXECUTED_QUERY }),
    });
}

export function productById(context: BenchContext): Promise<LoadResult> {
    let next = 0;
    const ids = context.products.map(product => product.id);
    return measured(context, {
        ...base(context),
        setupRequest(request) {
            request.path = `/api/products/${ids[next++ % ids.length]}`;
            return request;
        },
    });
}

export async function login(context: BenchContext): Promise<LoadResult & { connections: number }> {
    let next = 0;
    const { buyers } = context;
    const connections = context.settings.loginConnections;
    const result = await runLoad({
        ...base(context),
        connections,
        method: "POST",
        path: "/api/auth/login",
        headers: JSON_HEADERS,
        setupRequest(request) {
            const buyer = buyers[next++ % buyers.length];
            request.body = JSON.stringify({ email: buyer.email, password: buyer.password });
            return request;
        },
    });
    return { ...result, connections };
}

/** Each order by the next buyer, with that buyer's own token. */
function orderRequests(
    buyers: Buyer[],
    pickLine: () => { productId: string; quantity: number },
): (request: autocannon.Request) => autocannon.Request {
    let next = 0;
    return request => {
        const buyer = buyers[next++ % buyers.length];
        request.headers = { ...JSON_HEADERS, Authorization: `Bearer ${buyer.token}` };
        request.body = JSON.stringify({ items: [pickLine()] });
        return request;
    };
}

export async function randomOrders(
    context: BenchContext,
): Promise<LoadResult & { confirmedPerSec: number }> {
    const { products } = context;
    const result = await runLoad({
        ...base(context),
        method: "POST",
        path: "/api/orders",
        setupRequest: orderRequests(context.buyers, () => ({
            productId: products[Math.floor(Math.random() * products.length)].id,
            quantity: 1 + Math.floor(Math.random() * 3),
        })),
    });
    return { ...result, confirmedPerSec: statusRate(result, 201) };
}

export async function hotProduct(
    context: BenchContext,
): Promise<LoadResult & { confirmedPerSec: number; check: HotProductCheck }> {
    const productId = context.hot.id;
    const result = await runLoad({
        ...base(context),
        method: "POST",
        path: "/api/orders",
        setupRequest: orderRequests(context.buyers, () => ({ productId, quantity: 1 })),
    });
    const check = await checkStock(context, result.statusCodes["201"] ?? 0);
    return { ...result, confirmedPerSec: statusRate(result, 201), check };
}

/**
 * Stock is conserved: for the hot product and every seeded one, what is left plus what CONFIRMED
 * orders hold equals what was there, read back through the API as an admin once no order is
 * PENDING any more (the settler may still confirm those).
 */
async function checkStock(
    context: BenchContext,
    confirmedAnswers: number,
): Promise<HotProductCheck> {
    const { api, adminToken } = context;
    const deadline = Date.now() + 30_000;
    let pendingLeft = await api.countOrders(adminToken, "PENDING");
    while (pendingLeft > 0 && Date.now() < deadline) {
        await sleep(500);
        pendingLeft = await api.countOrders(adminToken, "PENDING");
    }
    const held = new Map<string, number>();
    for (const order of await api.ordersWithStatus(adminToken, "CONFIRMED")) {
        for (const item of order.items) {
            held.set(item.productId, (held.get(item.productId) ?? 0) + item.quantity);
        }
    }
    const seeded = [...context.products, context.hot];
    const finals = await mapLimit(seeded, 8, product => api.productStock(product.id));
    const outOfBalance = seeded.filter(
        (product, i) => finals[i] < 0 || finals[i] + (held.get(product.id) ?? 0) !== product.stock,
    );
    const finalStock = finals[finals.length - 1];
    const confirmedQuantity = held.get(context.hot.id) ?? 0;
    return {
        initialStock: context.hot.stock,
        finalStock,
        confirmedQuantity,
        confirmedAnswers,
        pendingLeft,
        oversold: Math.max(0, confirmedQuantity - context.hot.stock, -finalStock),
        consistent: finalStock >= 0 && finalStock + confirmedQuantity === context.hot.stock,
        productsOutOfBalance: outOfBalance.length,
    };
}

/** What happens to `products-2` a third of the way into a fault scenario. */
type Fault = "kill" | "pause";

/**
 * A listing while one of the two products nodes fails a third of the way in: killed (SIGKILL: its
 * connections close at once) or hung (SIGSTOP: its connections stay open, as with a frozen process
 * or a lost network). How many requests fail, for how long the gateway answers less than half its
 * usual rate or nothing at all, before it stops calling that node. Each request searches for a
 * term of its own: a cached page is answered by the gateway itself (lib/product-cache.ts) and
 * would never reach the products nodes, so every one of these misses and is a call to one of them.
 */
async function nodeFault(
    context: BenchContext,
    fault: Fault,
): Promise<Omit<LoadResult, "timeline"> & FailoverFigures> {
    const victim = context.cluster.node("products-2");
    let next = 0;
    const run = crypto.randomUUID().slice(0, 8);
    const options: LoadOptions = {
        ...base(context),
        setupRequest(request) {
            request.path = `/api/products?pageSize=20&search=${fault}-${run}-${next++}`;
            return request;
        },
    };
    await warmUp({ ...options, connections: 10 }, context.settings.warmup);
    const duration = context.settings.failoverDuration;
    const killAtMs = Math.round((duration * 1000) / 3);
    let timer: NodeJS.Timeout | undefined;
    const result = await runLoad({
        ...options,
        duration,
        timeline: true,
        onStart() {
            timer = setTimeout(() => {
                if (fault === "kill") victim.process.kill();
                else victim.process.pause();
                context.log(`  ${fault === "kill" ? "killed" : "paused"} ${victim.id}`);
            }, killAtMs);
        },
    });
    clearTimeout(timer);
    if (fault === "pause") {
        victim.process.resume();
        // Back in the registry (its heartbeats resume) before anything else is measured.
        await sleep(5000);
    }
    const slots = result.timeline ?? [];
    const slotMs = slots.length > 1 ? slots[1].atMs : 250;
    const afterKill = slots.filter(slot => slot.atMs + slotMs > killAtMs);
    const before = slots
        .filter(slot => slot.atMs >= slotMs && slot.atMs + slotMs <= killAtMs)
        .map(slot => slot.ok)
        .sort((a, b) => a - b);
    const usualOk = before.length ? before[Math.floor(before.length / 2)] : 0;
    const lastFailed = [...afterKill].reverse().find(slot => slot.failed > 0);
    const { timeline: _timeline, ...figures } = result;
    return {
        ...figures,
        fault,
        killedNode: victim.id,
        killAtMs,
        errorsAfterKill: afterKill.reduce((sum, slot) => sum + slot.failed, 0),
        lastErrorAfterKillMs: lastFailed ? lastFailed.atMs + slotMs - killAtMs : 0,
        stalledMs: afterKill.filter(slot => slot.ok === 0).length * slotMs,
        degradedMs: afterKill.filter(slot => slot.ok < usualOk / 2).length * slotMs,
        timeline: {
            slotMs,
            ok: slots.map(slot => slot.ok),
            failed: slots.map(slot => slot.failed),
        },
    };
}

/** The listing while products-2 is killed with SIGKILL. */
export function failover(context: BenchContext) {
    return nodeFault(context, "kill");
}

/** The listing while products-2 hangs (SIGSTOP until the run ends, then SIGCONT). */
export function stall(context: BenchContext) {
    return nodeFault(context, "pause");
}

/** Logs in as the admin once, for seeding and for reading orders back. */
export function adminLogin(api: AgoraClient): Promise<string> {
    return api.login(ADMIN.email, ADMIN.password);
}
