/**
 * Who may call what. An action declares `auth: "user"` (any signed-in user) or `auth: "admin"`;
 * without it, anyone may call it. The rule is checked by the gateway before it forwards a REST call
 * and again, by the middleware below, on the node that runs the action, so a GraphQL call, a call
 * from another service or from the REPL obeys it too. Ownership ("owner or admin") is decided by
 * the owning service itself.
 */
import type { ActionSchema, Context, Middleware } from "moleculer";
import { ForbiddenError, UnauthorizedError } from "./errors";
import type { AuthUser, RequestMeta } from "../types";

export type AccessLevel = "user" | "admin";

/** Throws 401 / 403 when `user` may not call an action that declares `level`. */
export function checkAccess(level: AccessLevel | undefined, user: AuthUser | undefined): void {
    if (!level) return;
    if (!user) throw new UnauthorizedError();
    if (level === "admin" && user.role !== "admin") throw new ForbiddenError();
}

/** The caller of an action that declares `auth`: the middleware has already checked it is set. */
export function caller(ctx: Context<unknown, RequestMeta>): AuthUser {
    const user = ctx.meta.user;
    if (!user) throw new UnauthorizedError();
    return user;
}

export function isAdmin(ctx: Context<unknown, RequestMeta>): boolean {
    return ctx.meta.user?.role === "admin";
}

export const AccessMiddleware = {
    name: "Access",
    localAction(handler: (ctx: Context) => Promise<unknown>, action: ActionSchema) {
        const level = action.auth as AccessLevel | undefined;
        if (!level) return handler;
        return function checkedAction(ctx: Context<unknown, RequestMeta>) {
            try {
                checkAccess(level, ctx.meta.user);
            } catch (error) {
                return Promise.reject(error);
            }
            return handler(ctx);
        };
    },
} as unknown as Middleware;
