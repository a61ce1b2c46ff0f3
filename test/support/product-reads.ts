/** A test middleware that records each product read reaching the products service (a local call). */
import type { Context, Middleware } from "moleculer";

export function countProductReads(served: string[]): Middleware {
    return {
        name: "CountProductReads",
        localAction(handler: (ctx: Context) => Promise<unknown>, action: { name: string }) {
            if (action.name !== "products.get" && action.name !== "products.list") return handler;
            return (ctx: Context) => {
                served.push(action.name);
                return handler(ctx);
            };
        },
    } as unknown as Middleware;
}
