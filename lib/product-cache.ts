/**
 * The product caches, shared by the products service (which fills them) and every node that calls
 * it (which reads them before calling): `products.list` (a page of a listing) and `products.get`
 * (one product). One key derivation for both sides, from the action's own validated parameters.
 * How the cache stays fresh: lib/stamped-cache.ts.
 */
import type { ActionSchema, Context, Middleware, ServiceBroker } from "moleculer";
import { pageParamRules } from "./pagination";
import { ResilientRedisCacher } from "./resilient-redis-cacher";
import { stampedCache } from "./stamped-cache";
import type { ProductListParams } from "../types";

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

export const ProductCacheGroup = { List: "products.list", Get: "products.get" } as const;

/** Every write to the catalogue or to stock changes what both return. */
export const PRODUCT_CACHE_GROUPS = [ProductCacheGroup.List, ProductCacheGroup.Get];

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
 * On a caller's node (the gateway), a call to a product read on another node is answered from the
 * cache when the entry is there, without the round trip; otherwise it goes to the products node,
 * which reads, computes and stores it. Parameters that don't validate go through (and are refused
 * there, as before).
 */
export function ProductCacheMiddleware(): Middleware {
    const checks = new Map<string, Check>();
    return {
        name: "ProductCache",
        remoteAction(next: (ctx: Context) => Promise<unknown>, action: ActionSchema) {
            const spec = action.name ? cached[action.name] : undefined;
            if (!spec) return next;
            const group = action.name as string;
            return async (ctx: Context) => {
                const broker: ServiceBroker = ctx.broker;
                // Only a cache shared with the products nodes (Redis) sees their stamp bumps.
                if (!(broker.cacher instanceof ResilientRedisCacher) || !broker.validator) {
                    return next(ctx);
                }
                let check = checks.get(group);
                if (!check) {
                    check = broker.validator.compile(spec.rules) as unknown as Check;
                    checks.set(group, check);
                }
                const params = { ...(ctx.params as object) };
                if ((await check(params)) !== true) return next(ctx);
                const cache = stampedCache(broker);
                const text = await cache.peek(group, spec.key(params as never));
                if (text === null) return next(ctx);
                cache.count(group, "hit");
                ctx.cachedResult = true;
                const meta = ctx.meta as Record<string, unknown>;
                if (meta[JSON_TEXT]) {
                    // The gateway's REST route sends the entry's text as it is (moleculer-web sends
                    // a string with a response type unchanged): no parse, no stringify.
                    meta.$responseType = "application/json; charset=utf-8";
                    return text;
                }
                return JSON.parse(text);
            };
        },
    } as unknown as Middleware;
}
