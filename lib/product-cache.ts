/**
 * The product caches, shared by the products service (which fills them) and every node that calls
 * it (which reads them before calling): `products.list` (a page of a listing) and `products.get`
 * (one product). One key derivation for both sides, from the action's own validated parameters.
 * How the cache stays fresh: lib/stamped-cache.ts.
 */
import type { CallingOptions, Middleware, ServiceBroker } from "moleculer";
import { pageParamRules } from "./pagination";
import { stampedCache, stampsSharedWithProducts } from "./stamped-cache";
import type { ProductListParams } from "../types";

type CallOptions = CallingOptions & { parentCtx?: { meta: object } };

export const MAX_PRICE = 1_000_000_000;

export const productIdRule = {
    type: "uuid",
    messages: { uuid: "'{field}' must be a product id (UUID)" },
} as const;

/** `products.list` parameters (query strings are text, hence `convert`). */
export const productListRules = {
    $$strict: "remove",
    search: { type: "string", optional: true, trim: true, max: 200 },
    category: { type: "string", optional: true, trim: true, max: 100 },
    minPrice: {
        type: "number",
        optional: true,
        integer: true,
        min: 0,
        max: MAX_PRICE,
        convert: true,
    },
    maxPrice: {
        type: "number",
        optional: true,
        integer: true,
        min: 0,
        max: MAX_PRICE,
        convert: true,
    },
    inStock: { type: "boolean", optional: true, convert: true },
    sort: {
        type: "enum",
        optional: true,
        values: ["name", "-name", "price", "-price", "createdAt", "-createdAt"],
    },
    ...pageParamRules,
} as const;

export const productGetRules = { $$strict: "remove", id: productIdRule } as const;

export const ProductCacheGroup = {
    List: "products.list",
    Get: "products.get",
    /** Whole GraphQL answers to catalogue queries, kept by the gateway (services/api/graphql-catalog.ts). */
    GraphQL: "graphql.catalog",
} as const;

/** Every write to the catalogue or to stock changes what all three return. */
export const PRODUCT_CACHE_GROUPS = [
    ProductCacheGroup.List,
    ProductCacheGroup.Get,
    ProductCacheGroup.GraphQL,
];

/** The entry key of a validated `products.list` call. */
export function listKey(params: ProductListParams): string {
    const p = params as ProductListParams & Record<string, unknown>;
    return JSON.stringify([
        p.search ?? null,
        p.category ?? null,
        p.minPrice ?? null,
        p.maxPrice ?? null,
        p.inStock ?? null,
        p.sort ?? null,
        p.page ?? null,
        p.pageSize ?? null,
    ]);
}

/** The entry key of a validated `products.get` call. */
export function getKey(params: { id: string }): string {
    return params.id;
}

/**
 * Set in a call's meta by a caller that sends the answer out as JSON as it is (the REST route): a
 * cache hit then answers the entry's JSON text and sets `$responseType`, instead of an object.
 */
export const JSON_TEXT = "$productJsonText";

/** True for the actions whose hits can be answered as JSON text. */
export function isCachedProductRead(action: string | undefined): boolean {
    return action !== undefined && Object.prototype.hasOwnProperty.call(cached, action);
}

type Check = (params: object) => true | unknown[] | Promise<true | unknown[]>;

const cached: Record<string, { rules: object; key: (params: never) => string }> = {
    [ProductCacheGroup.List]: { rules: productListRules, key: listKey },
    [ProductCacheGroup.Get]: { rules: productGetRules, key: getKey },
};

/**
 * On a caller's node (the gateway), a call to a product read that no local service answers is
 * answered from the cache when the entry is there: before the call is routed, so a hit costs no
 * round trip, no context and none of the remote call's middlewares (metrics, timeout, retry,
 * circuit breaker, tracing; `agora.cache.lookups` counts it). Otherwise, and for parameters that
 * don't validate (refused there, as before), the call goes to a products node, which reads,
 * computes and stores the entry. A call aimed at one node (`nodeID`) always goes there.
 */
export function ProductCacheMiddleware(): Middleware {
    const checks = new Map<string, Check>();
    let broker: ServiceBroker;
    type Call = (action: unknown, params?: unknown, opts?: CallOptions) => Promise<unknown>;
    return {
        name: "ProductCache",
        created(created: ServiceBroker) {
            broker = created;
        },
        call(next: Call): Call {
            return (action, params, opts) => {
                const name =
                    typeof action === "string"
                        ? action
                        : (action as { action?: { name?: string } } | null)?.action?.name;
                const spec = name !== undefined ? cached[name] : undefined;
                // A local products service reads its cache itself.
                if (
                    !spec ||
                    opts?.nodeID ||
                    !stampsSharedWithProducts(broker) ||
                    !broker.validator ||
                    broker.getLocalService(name!.split(".")[0])
                ) {
                    return next(action, params, opts);
                }
                let routed: (Promise<unknown> & { ctx?: unknown }) | undefined;
                const answer = answerFromCache(name!, spec, params, opts).then(found =>
                    found === MISS ? (routed = next(action, params, opts)) : found,
                );
                // Moleculer's wrapper of call middlewares (`interceptCallMiddleware`) sets the
                // returned promise's `ctx` to the context of the last call whose `next` ran at once:
                // another request's here, since `next` runs after the lookup. Context.call merges
                // that context's meta into the caller's (a GET answered 201 with the Location of a
                // product just created). `ctx` stays this call's own: the routed call's, or none.
                Object.defineProperty(answer, "ctx", {
                    get: () => routed?.ctx,
                    set: () => undefined,
                });
                return answer;
            };
        },
    } as unknown as Middleware;

    async function answerFromCache(
        group: string,
        spec: (typeof cached)[string],
        callParams: unknown,
        opts: CallOptions | undefined,
    ): Promise<unknown> {
        let check = checks.get(group);
        if (!check) {
            check = broker.validator!.compile(spec.rules) as unknown as Check;
            checks.set(group, check);
        }
        const params = { ...((callParams ?? {}) as object) };
        if ((await check(params)) !== true) return MISS;
        const cache = stampedCache(broker);
        const text = await cache.peek(group, spec.key(params as never));
        if (text === null) return MISS;
        cache.count(group, "hit");
        const meta = opts?.parentCtx?.meta as Record<string, unknown> | undefined;
        if (meta?.[JSON_TEXT]) {
            // The gateway's REST route sends the entry's text as it is (moleculer-web sends a
            // string with a response type unchanged): no parse, no stringify.
            meta.$responseType = "application/json; charset=utf-8";
            return text;
        }
        return JSON.parse(text);
    }
}

const MISS = Symbol("miss");
