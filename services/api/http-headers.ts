/**
 * The headers the gateway puts on its answers that are not about the request's content: helmet's
 * security headers (on every answer, errors and unknown routes included), `Cache-Control:
 * no-store` (answers carry tokens and personal data), and the CORS options of the routes, from
 * `CORS_ORIGINS`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import helmet from "helmet";
import { wantsPlayground } from "./graphql-request";

/** Where the gateway serves the API reference page (api.service.ts mounts it there). */
export const DOCS_PATH = "/api/docs";

/** An API answers JSON: its pages may load nothing, run nothing and be framed by no one. */
const apiHeaders = helmet({
    contentSecurityPolicy: {
        useDefaults: false,
        directives: {
            defaultSrc: ["'none'"],
            baseUri: ["'none'"],
            formAction: ["'none'"],
            frameAncestors: ["'none'"],
        },
    },
    xFrameOptions: { action: "deny" },
});

/**
 * The GraphQL playground (a browser's GET of /graphql, outside production only) is a page that
 * runs inline scripts and loads its code from a CDN: every header but the content policy.
 */
const playgroundHeaders = helmet({
    contentSecurityPolicy: false,
    xFrameOptions: { action: "deny" },
});

/**
 * The API reference (/api/docs, Swagger UI served from the gateway itself): scripts, styles and
 * images of its own origin only, and calls to the API of that origin ("Try it out").
 */
const docsHeaders = helmet({
    contentSecurityPolicy: {
        useDefaults: false,
        directives: {
            defaultSrc: ["'none'"],
            scriptSrc: ["'self'"],
            // Swagger UI sets style attributes on its elements.
            styleSrc: ["'self'", "'unsafe-inline'"],
            imgSrc: ["'self'", "data:"],
            fontSrc: ["'self'"],
            connectSrc: ["'self'"],
            baseUri: ["'none'"],
            formAction: ["'none'"],
            frameAncestors: ["'none'"],
        },
    },
    xFrameOptions: { action: "deny" },
});

function pathOf(req: IncomingMessage): string {
    return (req.url ?? "").split("?")[0].replace(/\/+$/, "");
}

export function isPlaygroundRequest(req: IncomingMessage): boolean {
    return pathOf(req) === "/graphql" && wantsPlayground(req);
}

/** Sets the security headers of `req`'s answer, by the kind of page it is. */
export function setSecurityHeaders(
    req: IncomingMessage,
    res: ServerResponse,
    production: boolean,
): void {
    const path = pathOf(req);
    const headers =
        !production && isPlaygroundRequest(req)
            ? playgroundHeaders
            : path === DOCS_PATH || path.startsWith(`${DOCS_PATH}/`)
              ? docsHeaders
              : apiHeaders;
    // helmet's middlewares are synchronous and never fail; `next` is only called back.
    headers(req, res, () => undefined);
    res.setHeader("Cache-Control", "no-store");
}

/** What a browser on an allowed origin may send and read. */
const ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"];
const EXPOSED_HEADERS = [
    "X-Request-Id",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
];

/**
 * moleculer-web's `cors` of a route: none when no origin is configured (browsers then keep pages
 * of other origins out), else the listed origins (`*` for any, `https://*.example.com` patterns).
 * Never with credentials: the API is called with a Bearer token, not cookies.
 */
export function corsOptions(origins: string[], methods: string[]) {
    if (!origins.length) return undefined;
    return {
        origin: origins.includes("*") ? "*" : origins,
        methods,
        allowedHeaders: ALLOWED_HEADERS,
        exposedHeaders: EXPOSED_HEADERS,
        credentials: false,
        maxAge: 600,
    };
}
