/**
 * Request ids. The gateway takes a client's `X-Request-Id` when it is short and plain, or makes a
 * UUID, answers it back, and uses it as the Moleculer `ctx.requestID`, which Moleculer carries to
 * every call and event the request sets off, on every node. The middleware below keeps the id of
 * the request being handled in an AsyncLocalStorage, and the log formats put it on every line
 * logged meanwhile (`requestId` in production's JSON lines), so one grep finds a request on
 * every node.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import crypto from "node:crypto";
import type { Context, Middleware } from "moleculer";

export const REQUEST_ID_HEADER = "X-Request-Id";

/** What a client's id may be: up to 128 characters that are safe in headers, logs and URLs. */
const ACCEPTED_ID = /^[A-Za-z0-9._:~+=/-]{1,128}$/;

/** The client's id when acceptable, else a fresh UUID (a bad one is not an error: it is replaced). */
export function acceptRequestId(header: string | string[] | undefined): string {
    return typeof header === "string" && ACCEPTED_ID.test(header) ? header : crypto.randomUUID();
}

const current = new AsyncLocalStorage<string>();

/** Runs `work` as part of request `requestId`: what it logs carries the id. */
export function withRequestId<T>(requestId: string, work: () => T): T {
    return current.run(requestId, work);
}

export function currentRequestId(): string | undefined {
    return current.getStore();
}

/** Puts each action and event handler under the request id of its context. */
export const RequestIdMiddleware = {
    name: "RequestId",
    localAction(handler: (ctx: Context) => Promise<unknown>) {
        return function underRequestId(ctx: Context) {
            return ctx.requestID ? withRequestId(ctx.requestID, () => handler(ctx)) : handler(ctx);
        };
    },
    localEvent(handler: (ctx: Context) => Promise<unknown>) {
        return function underRequestId(ctx: Context) {
            return ctx.requestID ? withRequestId(ctx.requestID, () => handler(ctx)) : handler(ctx);
        };
    },
} as unknown as Middleware;

/** Moleculer's formatter hook: called with the logger as `this`, and its own `printArgs`. */
type LogFormatter = (
    this: { levelColorStr: Record<string, string> },
    type: string,
    args: unknown[],
    bindings: { nodeID: string; ns: string; mod: string; svc?: string; ver?: string },
    helpers: { printArgs: (args: unknown[]) => unknown[] },
) => unknown[];

/**
 * Moleculer's `json` log line (`{ ts, level, msg, nodeID, ns, mod, … }`) with `requestId` added
 * while a request is being handled.
 */
export const jsonLogFormatter: LogFormatter = (type, args, bindings, { printArgs }) => {
    const requestId = currentRequestId();
    const line = { ts: Date.now(), level: type, msg: printArgs(args).join(" "), ...bindings };
    return [JSON.stringify(requestId ? { ...line, requestId } : line)];
};

/** Moleculer's `short` console line, with `[request id]` before the message while there is one. */
export const shortLogFormatter: LogFormatter = function (type, args, bindings, { printArgs }) {
    const requestId = currentRequestId();
    const time = `[${new Date().toISOString().substring(11)}]`;
    const prefix = [time, this.levelColorStr[type], `${bindings.mod.toUpperCase()}:`];
    return [...prefix, ...(requestId ? [`[${requestId}]`] : []), ...printArgs(args)];
};
