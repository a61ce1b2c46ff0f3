/**
 * api: the gateway. REST under /api (routes.ts), GraphQL at /graphql (generated from every
 * service's `graphql` definitions), health under /health. It verifies access tokens locally with
 * the public keys, checks each action's `auth` level, and turns every failure into the contract's
 * error shape (contract-errors.ts). Every request gets an id (lib/request-id.ts), security headers
 * (http-headers.ts) and counts against the rate limits shared through Redis (lib/rate-limits.ts).
 * It decides no business rule.
 */
import crypto from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { ApolloService } from "moleculer-apollo-server";
import { GraphQLError as GraphQLErrorClass, type GraphQLError } from "graphql";
import { checkAccess, type AccessLevel } from "../../lib/access";
import { verifyAccessToken } from "../../lib/access-token";
import { isCachedProductRead, JSON_TEXT, ProductCacheGroup } from "../../lib/product-cache";
import { stampedCache, stampsSharedWithProducts } from "../../lib/stamped-cache";
import { readConfig, type AgoraConfig } from "../../lib/config";
import {
    clientIp,
    compileTrustedProxies,
    rateLimitSubject,
    type ProxyTrust,
} from "../../lib/client-ip";
import { BadRequestError, RateLimitedError, UnauthorizedError } from "../../lib/errors";
import { loadJwtKeys } from "../../lib/jwt-keys";
import { readiness } from "../../lib/health";
import { AgoraMetric, countMetric, observeMetric } from "../../lib/metrics";
import { RateLimits, tightest, type RateLimitVerdict } from "../../lib/rate-limits";
import { REQUEST_ID_HEADER, acceptRequestId, withRequestId } from "../../lib/request-id";
import type { AuthUser, RequestMeta } from "../../types";
import { toContractError } from "./contract-errors";
import { catalogCacheKey, isCleanAnswer } from "./graphql-catalog";
import { checkGraphQLRequest } from "./graphql-request";
import { corsOptions, setSecurityHeaders } from "./http-headers";
import { NoSubscriptions } from "./graphql-rules";
import { openApiRoutes } from "./openapi";
import { restRoutes } from "./routes";

type GatewayRequest = IncomingMessage & {
    $action?: { name: string; auth?: AccessLevel };
    $alias?: { method: string; fullPath?: string; path: string };
    $route?: { opts?: { path?: string } };
    $ctx?: Context<unknown, RequestMeta>;
    $params?: Record<string, unknown>;
    /** The parsed JSON body (body-parser). */
    body?: unknown;
    /** Set for every request before it is routed (httpHandler). */
    $requestId?: string;
    $clientIp?: string;
    /** The caller of the Bearer token, verified once per request (see identify). */
    $identity?: { user: AuthUser | null; error: unknown };
    /** The tightest rate-limit counter so far: what the RateLimit-* headers show. */
    $rateLimit?: RateLimitVerdict;
    /** A catalogue query that missed the cache: where its answer is stored (graphql-catalog.ts). */
    $catalogEntry?: { key: string; stamp: string };
};

interface ApiThis {
    config: AgoraConfig;
    server: import("node:http").Server;
    publicKeys: Record<string, crypto.KeyObject>;
    rateLimits: RateLimits;
    trustedProxies: ProxyTrust;
    broker: import("moleculer").ServiceBroker;
    logger: import("moleculer").LoggerInstance;
    identify(req: GatewayRequest): { user: AuthUser | null; error: unknown };
    userFromRequest(req: IncomingMessage): AuthUser | null;
    limitRequest(req: GatewayRequest, res: ServerResponse): Promise<void>;
    limitAuthAttempt(
        action: string | undefined,
        params: Record<string, unknown> | undefined,
        req: GatewayRequest,
        res: ServerResponse,
    ): Promise<void>;
    applyRateLimit(req: GatewayRequest, res: ServerResponse, verdict: RateLimitVerdict): void;
    measureRequests(): void;
    sendContractError(req: IncomingMessage, res: ServerResponse, error: unknown): void;
    sendJson(res: ServerResponse, status: number, body: unknown): void;
    answerFromCatalogCache(req: GatewayRequest, res: ServerResponse): Promise<boolean>;
    sendResponse(req: IncomingMessage, res: ServerResponse, data: unknown): void;
}

const config = readConfig();

/** What moleculer-apollo-server adds to the service. */
interface ApolloHandlers {
    prepareGraphQLSchema(): Promise<void>;
    graphqlHandler(req: IncomingMessage, res: ServerResponse): Promise<unknown>;
}

/** Bodies above this are refused with 413 before they are parsed. */
const BODY_LIMIT = "64kb";

/**
 * body-parser's JSON options: objects and arrays only, at most BODY_LIMIT, and no number JSON can
 * write but not hold (`1e400` parses to Infinity, which would travel over NATS as null).
 */
const JSON_BODY = {
    strict: true,
    limit: BODY_LIMIT,
    reviver(key: string, value: unknown) {
        if (typeof value === "number" && !Number.isFinite(value)) {
            throw new SyntaxError(`The number at '${key}' is too large`);
        }
        return value;
    },
};

/** Methods whose body must be JSON when they have one. */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

function hasBody(req: IncomingMessage): boolean {
    const length = Number(req.headers["content-length"] ?? 0);
    return length > 0 || req.headers["transfer-encoding"] !== undefined;
}

/** Refuses a body that isn't JSON (400), instead of silently seeing no fields. */
function requireJsonBody(req: IncomingMessage): void {
    if (!BODY_METHODS.has(req.method ?? "") || !hasBody(req)) return;
    const type = String(req.headers["content-type"] ?? "").toLowerCase();
    if (!/^application\/(.+\+)?json\b/.test(type)) {
        throw new BadRequestError("The body must be JSON (Content-Type: application/json)");
    }
}

/**
 * Node refuses a request it can't parse (a URL or headers over 16 KB, a broken request line)
 * before moleculer-web sees it, with an empty body: answer in the contract's shape instead.
 */
function refuseUnparsableRequest(error: NodeJS.ErrnoException, socket: Socket): void {
    if (!socket.writable) {
        socket.destroy();
        return;
    }
    const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
    const [status, reason] = tooLarge
        ? [431, "Request Header Fields Too Large"]
        : [400, "Bad Request"];
    const body = JSON.stringify({
        name: "BadRequestError",
        message: tooLarge ? "The URL or headers are too large" : "The request is malformed",
        code: status,
        type: tooLarge ? "REQUEST_HEADER_FIELDS_TOO_LARGE" : "BAD_REQUEST",
    });
    socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
}

/** moleculer-web's own request handler, which the service's `httpHandler` wraps. */
const routeRequest = ApiGateway.methods!.httpHandler as (
    req: IncomingMessage,
    res: ServerResponse,
    next?: unknown,
) => Promise<unknown>;

/**
 * Actions with their own strict limit (lib/rate-limits.ts `authAttempt`), and the account email
 * each attempt counts against: the one typed in, or the caller's own for a password change.
 */
const AUTH_ATTEMPTS: Record<
    string,
    (params: Record<string, unknown>, caller: AuthUser | null) => unknown
> = {
    "users.login": params => params.email,
    "users.register": params => params.email,
    "users.refresh": () => null,
    "users.changePassword": (params, caller) => caller?.email,
};

/** Probes are not counted: a flood from behind one address must not get a node restarted. */
function isHealthCheck(req: IncomingMessage): boolean {
    return /^\/health(\/|\?|$)/.test(req.url ?? "");
}

/** A REST body is one JSON object (its fields are the action's params), never a list. */
function requireObjectBody(req: IncomingMessage & { body?: unknown }): void {
    if (Array.isArray(req.body)) throw new BadRequestError("The body must be a JSON object");
}

const ApiService: ServiceSchema = {
    name: "api",
    mixins: [
        ApiGateway,
        ApolloService(<Parameters<typeof ApolloService>[0]>(<unknown>{
            routeOptions: {
                path: "/graphql",
                authentication: true,
                cors: corsOptions(config.corsOrigins, ["GET", "POST", "OPTIONS"]),
                bodyParsers: { json: JSON_BODY },
                onBeforeCall(ctx: Context, route: unknown, req: IncomingMessage) {
                    requireJsonBody(req);
                },
                aliases: {
                    // Replaces moleculer-apollo-server's own "/" so that a request that isn't
                    // GraphQL gets the contract's 400 / 405, not Apollo's plain text.
                    async "/"(
                        this: ApiThis & ApolloHandlers,
                        req: IncomingMessage,
                        res: ServerResponse,
                    ) {
                        try {
                            checkGraphQLRequest(req, !config.production);
                            await this.prepareGraphQLSchema();
                            if (await this.answerFromCatalogCache(req, res)) return;
                            return await this.graphqlHandler(req, res);
                        } catch (error) {
                            this.sendContractError(req, res, error);
                        }
                    },
                },
                // Status codes set by the actions (201, 204…) are REST's; GraphQL answers 200.
                // Apollo's answer to a catalogue query that missed is stored here (it is the JSON
                // text about to be sent), if clean and if no write came since its lookup.
                async onAfterCall(
                    ctx: Context<unknown, RequestMeta>,
                    route: unknown,
                    req: GatewayRequest,
                    res: ServerResponse,
                    data: unknown,
                ) {
                    delete ctx.meta.$statusCode;
                    const entry = req.$catalogEntry;
                    if (
                        entry &&
                        typeof data === "string" &&
                        res.statusCode === 200 &&
                        isCleanAnswer(data)
                    ) {
                        await stampedCache(ctx.broker).storeIfCurrent(
                            ProductCacheGroup.GraphQL,
                            entry.stamp,
                            entry.key,
                            data,
                        );
                    }
                    return data;
                },
            },
            serverOptions: {
                tracing: false,
                // Apollo's cache-control plugin is on unless turned off; nothing here sets a
                // @cacheControl hint, and its bookkeeping runs on every resolved field.
                cacheControl: false,
                // Every operation carries its query (checked in graphql-request.ts).
                persistedQueries: false,
                validationRules: [NoSubscriptions],
                introspection: true,
                playground: !config.production,
                debug: !config.production,
                formatError(error: GraphQLError) {
                    const original = error.originalError;
                    const apolloCode = error.extensions?.code as string | undefined;
                    // The request's own fault (syntax, unknown field, bad variables, a
                    // subscription), as opposed to an error a service threw.
                    const fromRequest =
                        !original ||
                        original instanceof GraphQLErrorClass ||
                        apolloCode === "GRAPHQL_PARSE_FAILED" ||
                        apolloCode === "GRAPHQL_VALIDATION_FAILED" ||
                        apolloCode === "BAD_USER_INPUT";
                    if (fromRequest) {
                        const type =
                            apolloCode === "GRAPHQL_PARSE_FAILED"
                                ? "INVALID_REQUEST_BODY"
                                : "VALIDATION_ERROR";
                        return {
                            message: error.message,
                            locations: error.locations,
                            path: error.path,
                            extensions: {
                                code: type,
                                status: type === "VALIDATION_ERROR" ? 422 : 400,
                            },
                        };
                    }
                    const contract = toContractError(original, config.production);
                    return {
                        message: contract.message,
                        locations: error.locations,
                        path: error.path,
                        extensions: {
                            code: contract.type,
                            status: contract.code,
                            data: contract.data,
                        },
                    };
                },
            },
        })),
    ],

    // --- Settings ---
    settings: {
        port: config.port,
        ip: "0.0.0.0",
        // The request's id (see httpHandler) becomes ctx.requestID, carried to every node; the
        // client's address rides along in ctx.meta for the services' logs.
        rootCallOptions(options: { requestID?: string; meta?: RequestMeta }, req: GatewayRequest) {
            options.requestID = req.$requestId;
            options.meta = { clientIp: req.$clientIp };
        },
        // Our own error body for every failure, including moleculer-web's (see onError).
        onError(this: ApiThis, req: IncomingMessage, res: ServerResponse, error: unknown) {
            this.sendContractError(req, res, error);
        },
        // Route order matters: moleculer-web matches the first route whose path prefixes the URL.
        routes: [
            {
                path: "/api",
                // Only the aliases below are reachable: no `/api/products/find` and the like.
                mappingPolicy: "restrict",
                autoAliases: false,
                aliases: restRoutes,
                authentication: true,
                authorization: true,
                bodyParsers: { json: JSON_BODY, urlencoded: false },
                cors: corsOptions(config.corsOrigins, [
                    "GET",
                    "POST",
                    "PATCH",
                    "DELETE",
                    "OPTIONS",
                ]),
                async onBeforeCall(
                    this: ApiThis,
                    ctx: Context<unknown, RequestMeta>,
                    route: unknown,
                    req: GatewayRequest,
                    res: ServerResponse,
                ) {
                    requireJsonBody(req);
                    requireObjectBody(req);
                    // A cached product read is sent as the cache's JSON text (lib/product-cache.ts).
                    if (isCachedProductRead(req.$action?.name)) {
                        (ctx.meta as Record<string, unknown>)[JSON_TEXT] = true;
                    }
                    const key = req.headers["idempotency-key"];
                    if (typeof key === "string") ctx.meta.idempotencyKey = key;
                    await this.limitAuthAttempt(req.$action?.name, req.$params, req, res);
                },
                onAfterCall(
                    ctx: Context<unknown, RequestMeta & { $location?: string }>,
                    route: unknown,
                    req: GatewayRequest,
                    res: ServerResponse,
                    data: unknown,
                ) {
                    const created = data as { id?: string } | null;
                    if (ctx.meta.$statusCode === 201 && created?.id && req.$action) {
                        ctx.meta.$location = `/api/${req.$action.name.split(".")[0]}/${created.id}`;
                    }
                    return ctx.meta.$statusCode === 204 ? null : data;
                },
            },
            // GET /api/openapi.json and the reference page /api/docs (openapi.ts).
            ...openApiRoutes("/api"),
            {
                path: "/health",
                mappingPolicy: "restrict",
                authentication: false,
                aliases: {
                    "GET /live"(this: ApiThis, req: IncomingMessage, res: ServerResponse) {
                        this.sendJson(res, 200, { status: "ok" });
                    },
                    async "GET /ready"(this: ApiThis, req: IncomingMessage, res: ServerResponse) {
                        const result = await readiness(this.broker);
                        this.sendJson(res, result.ready ? 200 : 503, {
                            status: result.ready ? "ok" : "unavailable",
                            ...result,
                        });
                    },
                },
            },
        ],
        log4XXResponses: false,
        logRequest: "debug",
        logRequestParams: null,
        logResponseData: null,
    },

    // --- Actions ---
    actions: {
        /** The gateway's own GraphQL query, so /graphql has a schema even with every service down. */
        health: {
            visibility: "public",
            graphql: { query: "health: String!" },
            handler() {
                return "ok";
            },
        },
    },

    // --- Methods ---
    methods: {
        /**
         * Every HTTP request, before moleculer-web routes it: its id (answered in X-Request-Id and
         * put on every log line of the request), the security headers, and the per-IP and
         * per-user rate limits.
         */
        httpHandler(
            this: ApiThis,
            req: GatewayRequest,
            res: ServerResponse,
            next?: unknown,
        ): Promise<unknown> {
            const requestId = acceptRequestId(req.headers["x-request-id"]);
            req.$requestId = requestId;
            req.$clientIp = clientIp(req, this.trustedProxies);
            res.setHeader(REQUEST_ID_HEADER, requestId);
            setSecurityHeaders(req, res, this.config.production);
            return withRequestId(requestId, async () => {
                try {
                    if (!isHealthCheck(req)) await this.limitRequest(req, res);
                } catch (error) {
                    this.sendContractError(req, res, error);
                    return;
                }
                return routeRequest.call(this, req, res, next);
            });
        },

        /** moleculer-web hook: who is calling, from a locally verified Bearer token. */
        authenticate(this: ApiThis, ctx: Context, route: unknown, req: GatewayRequest) {
            const { user, error } = this.identify(req);
            if (error) throw error;
            return user;
        },

        /** The token's caller, or why the token is refused; verified once however often asked. */
        identify(this: ApiThis, req: GatewayRequest) {
            if (!req.$identity) {
                try {
                    req.$identity = { user: this.userFromRequest(req), error: null };
                } catch (error) {
                    req.$identity = { user: null, error };
                }
            }
            return req.$identity;
        },

        /** One request of a client, and of its user when the token is valid (else only the IP). */
        async limitRequest(this: ApiThis, req: GatewayRequest, res: ServerResponse) {
            const { user } = this.identify(req);
            const subject = rateLimitSubject(req.$clientIp ?? "unknown");
            this.applyRateLimit(req, res, await this.rateLimits.request(subject, user?.id ?? null));
        },

        /** One attempt at a credential action (AUTH_ATTEMPTS); other actions pass untouched. */
        async limitAuthAttempt(
            this: ApiThis,
            action: string | undefined,
            params: Record<string, unknown> | undefined,
            req: GatewayRequest,
            res: ServerResponse,
        ) {
            const account = action ? AUTH_ATTEMPTS[action] : undefined;
            if (!account) return;
            const email = account(params ?? {}, this.identify(req).user);
            const verdict = await this.rateLimits.authAttempt(
                rateLimitSubject(req.$clientIp ?? "unknown"),
                typeof email === "string" && email.trim() ? email : null,
            );
            this.applyRateLimit(req, res, verdict);
        },

        /** The RateLimit-* headers of the tightest counter so far; over a limit, 429. */
        applyRateLimit(
            this: ApiThis,
            req: GatewayRequest,
            res: ServerResponse,
            verdict: RateLimitVerdict,
        ) {
            const shown = req.$rateLimit ? tightest([req.$rateLimit, verdict]) : verdict;
            req.$rateLimit = shown;
            if (!res.headersSent) {
                res.setHeader("RateLimit-Limit", String(shown.limit));
                res.setHeader("RateLimit-Remaining", String(shown.remaining));
                res.setHeader("RateLimit-Reset", String(shown.resetSeconds));
            }
            if (verdict.limited) {
                if (!res.headersSent) res.setHeader("Retry-After", String(verdict.resetSeconds));
                throw new RateLimitedError(verdict.resetSeconds);
            }
        },

        /** moleculer-web hook: the action's `auth` level, checked before the call leaves the gateway. */
        authorize(
            this: ApiThis,
            ctx: Context<unknown, RequestMeta>,
            route: unknown,
            req: GatewayRequest,
        ) {
            checkAccess(req.$action?.auth, ctx.meta.user);
        },

        userFromRequest(this: ApiThis, req: IncomingMessage): AuthUser | null {
            const header = req.headers.authorization;
            if (!header) return null;
            const match = /^Bearer\s+(\S+)$/i.exec(header);
            if (!match)
                throw new UnauthorizedError("The Authorization header must be 'Bearer <token>'");
            return verifyAccessToken(match[1], this.publicKeys, this.config);
        },

        /**
         * moleculer-apollo-server hook, run before every resolver's call: flattens the `input`
         * argument into the action's params (REST and GraphQL share one params shape), counts a
         * credential action against its strict limit, and applies the action's `auth` level
         * first, so GraphQL answers 429 and 401/403 before validation, like REST.
         */
        async prepareContextParams(
            this: ApiThis,
            params: Record<string, unknown>,
            actionName: string,
            context: { ctx: Context<{ req: GatewayRequest; res: ServerResponse }, RequestMeta> },
        ) {
            const registry = this.broker.registry as unknown as {
                getActionEndpoints(
                    name: string,
                ): { endpoints: { action: { auth?: AccessLevel } }[] } | undefined;
            };
            const action = registry.getActionEndpoints(actionName)?.endpoints[0]?.action;
            const { input, ...rest } = params;
            const merged =
                input && typeof input === "object"
                    ? { ...(input as Record<string, unknown>), ...rest }
                    : params;
            const { req, res } = context.ctx.params;
            await this.limitAuthAttempt(actionName, merged, req, res);
            checkAccess(action?.auth, context.ctx.meta.user);
            return merged;
        },

        /**
         * Answers a catalogue query from the cache (graphql-catalog.ts) and returns true; on a miss
         * notes where its answer goes (stored in the route's onAfterCall) and returns false. Only
         * where the stamps are those the products service bumps.
         */
        async answerFromCatalogCache(
            this: ApiThis,
            req: GatewayRequest,
            res: ServerResponse,
        ): Promise<boolean> {
            const key =
                stampsSharedWithProducts(this.broker) && req.method === "POST"
                    ? catalogCacheKey(req.body)
                    : null;
            if (key === null) return false;
            const cache = stampedCache(this.broker);
            const found = await cache.lookup(ProductCacheGroup.GraphQL, key);
            if (found?.value == null) {
                cache.count(ProductCacheGroup.GraphQL, "miss");
                if (found) req.$catalogEntry = { key, stamp: found.stamp };
                return false;
            }
            cache.count(ProductCacheGroup.GraphQL, "hit");
            // As Apollo's own answers are sent (moleculer-apollo-server's `send`).
            res.statusCode = 200;
            if (req.$ctx)
                (req.$ctx.meta as Record<string, unknown>).$responseType = "application/json";
            this.sendResponse(req, res, found.value);
            return true;
        },

        sendContractError(
            this: ApiThis,
            req: IncomingMessage,
            res: ServerResponse,
            error: unknown,
        ) {
            const contract = toContractError(error, this.config.production);
            if (contract.code >= 500)
                this.logger.error("Request failed:", req.method, req.url, error);
            if (res.headersSent) return;
            this.sendJson(res, contract.code, contract);
        },

        /** HTTP metrics by route template (not raw URL, which would explode the label set). */
        measureRequests(this: ApiThis) {
            this.server.on("request", (req: GatewayRequest, res: ServerResponse) => {
                const started = process.hrtime.bigint();
                res.once("finish", () => {
                    const alias = req.$alias;
                    const route = alias ? (alias.fullPath ?? alias.path) : "unmatched";
                    const method = req.method ?? "GET";
                    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
                    countMetric(this.broker, AgoraMetric.HttpRequests, {
                        method,
                        route,
                        status: String(res.statusCode),
                    });
                    observeMetric(this.broker, AgoraMetric.HttpDuration, seconds, {
                        method,
                        route,
                    });
                });
            });
        },

        sendJson(res: ServerResponse, status: number, body: unknown) {
            res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
            res.end(JSON.stringify(body));
        },
    },

    // --- Lifecycle ---
    created() {
        const self = this as unknown as ApiThis;
        self.config = readConfig();
        const keys = loadJwtKeys(self.config);
        if (keys.generated) {
            self.logger.warn(
                `No JWT keys in the environment: using the generated pair under ${self.config.dataDir}/jwt.`,
            );
        }
        // Parsed once: a PEM string would be parsed again by every verification.
        self.publicKeys = Object.fromEntries(
            Object.entries(keys.verificationKeys).map(([kid, pem]) => [
                kid,
                crypto.createPublicKey(pem),
            ]),
        );
        self.trustedProxies = compileTrustedProxies(self.config.trustedProxies);
        self.rateLimits = RateLimits.create(self.config, self.logger);
        if (!self.rateLimits.shared && self.config.transporter) {
            self.logger.warn(
                "CACHER is not set: each gateway node counts rate limits on its own (set CACHER=redis://… to share them).",
            );
        }
        self.measureRequests();
        self.server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) =>
            refuseUnparsableRequest(error, socket),
        );
    },

    async started() {
        await (this as unknown as ApiThis).rateLimits.ready();
    },

    stopped() {
        (this as unknown as ApiThis).rateLimits.close();
    },
};

export default ApiService;
