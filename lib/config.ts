/**
 * Every setting a node reads, in one place. Each one comes from the environment and falls back to
 * the embedded default that `npm start` uses, so the same code runs a laptop shop and a cluster.
 */
import path from "node:path";

export const ALL_SERVICES = ["api", "users", "products", "orders"] as const;
export type ServiceName = (typeof ALL_SERVICES)[number];

export interface AgoraConfig {
    /** Services this node hosts (`SERVICES`, comma list); all of them when unset. */
    services: ServiceName[];
    /** `TRANSPORTER`, e.g. `nats://127.0.0.1:4222`; unset means in-process calls only. */
    transporter: string | null;
    /** `CACHER`, e.g. `redis://127.0.0.1:6379`; unset means the memory cacher. */
    cacher: string | null;
    /** `DATABASE_URL`; unset means an embedded PostgreSQL under `dataDir`. */
    databaseUrl: string | null;
    namespace: string;
    nodeId: string | null;
    nodeEnv: string;
    production: boolean;
    logLevel: string;
    /** HTTP port of the API gateway. */
    port: number;
    /** Prometheus metrics port; 0 turns the reporter off (tests that start many nodes). */
    metricsPort: number;
    /** Health port of nodes without the gateway; 0 turns it off. */
    healthPort: number;
    /**
     * `API_WORKERS`: gateway processes sharing `PORT` (Node's cluster), each its own Moleculer node;
     * 1 (the default) is this process alone. Only for a node that hosts the gateway alone.
     */
    apiWorkers: number;
    /** Which of those workers this process is (`AGORA_WORKER_INDEX`, set by the primary), or null. */
    workerIndex: number | null;
    adminEmail: string;
    adminPassword: string;
    /** True when the admin credentials are the printed defaults. */
    adminFromDefaults: boolean;
    /** Where embedded data lives: PostgreSQL files and generated JWT keys. */
    dataDir: string;
    /** Port of the embedded PostgreSQL (only used without `DATABASE_URL`). */
    embeddedDbPort: number;
    /** The shop's one currency (ISO 4217 code). */
    currency: string;
    /** Moleculer request timeout in ms. */
    requestTimeout: number;
    /** Let NATS queue groups pick the node (`DISABLE_BALANCER`, default off): see docs/consistency.md. */
    disableBalancer: boolean;
    /** How often each orders node runs a settler pass over PENDING orders (ms). */
    settleIntervalMs: number;
    /** How long an Idempotency-Key keeps answering with its first order (ms). */
    idempotencyTtlMs: number;
    /** How often each node's outbox relay looks for unsent events (ms). */
    outboxRelayIntervalMs: number;
    /** Browser origins allowed to call the gateway (`CORS_ORIGINS`); empty means same-origin only. */
    corsOrigins: string[];
    /**
     * Proxies whose `X-Forwarded-For` the gateway believes (`TRUSTED_PROXIES`, proxy-addr's
     * addresses, CIDRs and `loopback` / `linklocal` / `uniquelocal`); empty trusts none.
     */
    trustedProxies: string[];
    rateLimits: RateLimitSettings;
    /** Where spans go (`TRACING`): Zipkin when `ZIPKIN_URL` is set, the console in development. */
    tracing: TracingExporter;
    /** `ZIPKIN_URL`, e.g. `http://zipkin:9411`: the Zipkin (or Jaeger) server spans are sent to. */
    zipkinUrl: string | null;
    jwt: {
        privateKey: string | null;
        privateKeyFile: string | null;
        publicKey: string | null;
        publicKeyFile: string | null;
        /** A second public key accepted beside `publicKey` while keys rotate. */
        previousPublicKey: string | null;
        previousPublicKeyFile: string | null;
        issuer: string;
        audience: string;
        accessTtlSeconds: number;
        refreshTtlSeconds: number;
    };
}

/** Requests a client may make per window at the gateway (see lib/rate-limits.ts). */
export interface RateLimitSettings {
    windowSeconds: number;
    /** Every request, per client IP. */
    perIp: number;
    /** Every request with a valid access token, per user. */
    perUser: number;
    /** Login, register, refresh and password change: their own, longer window. */
    authWindowSeconds: number;
    authPerIp: number;
    /** Login, register and password change attempts per account email. */
    authPerEmail: number;
}

export const DEFAULT_ADMIN_EMAIL = "admin@agora.local";
export const DEFAULT_ADMIN_PASSWORD = "agora-admin-change-me";
export const TRACING_EXPORTERS = ["console", "zipkin", "off"] as const;
export type TracingExporter = (typeof TRACING_EXPORTERS)[number];

function parseTracing(value: string | undefined, zipkinUrl: string | null, nodeEnv: string) {
    const fallback: TracingExporter = zipkinUrl
        ? "zipkin"
        : nodeEnv === "development"
          ? "console"
          : "off";
    const tracing = (text(value) ?? fallback) as TracingExporter;
    if (!TRACING_EXPORTERS.includes(tracing)) {
        throw new Error(`TRACING must be one of ${TRACING_EXPORTERS.join(", ")}, got "${value}"`);
    }
    if (tracing === "zipkin" && !zipkinUrl) throw new Error("TRACING=zipkin needs ZIPKIN_URL");
    return tracing;
}

function int(value: string | undefined, fallback: number, name: string): number {
    if (value === undefined || value === "") return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 0) {
        throw new Error(`${name} must be a non-negative integer, got "${value}"`);
    }
    return parsed;
}

function text(value: string | undefined): string | null {
    return value === undefined || value.trim() === "" ? null : value;
}

function list(value: string | undefined): string[] {
    return (value ?? "")
        .split(",")
        .map(item => item.trim())
        .filter(Boolean);
}

/** A count of at least 1 (a limit of 0 would refuse everything). */
function positive(value: string | undefined, fallback: number, name: string): number {
    const parsed = int(value, fallback, name);
    if (parsed < 1) throw new Error(`${name} must be at least 1, got "${value}"`);
    return parsed;
}

function parseServices(value: string | undefined): ServiceName[] {
    if (!text(value)) return [...ALL_SERVICES];
    const names = value!
        .split(",")
        .map(s => s.trim())
        .filter(Boolean);
    for (const name of names) {
        if (!(ALL_SERVICES as readonly string[]).includes(name)) {
            throw new Error(
                `SERVICES names an unknown service "${name}"; known: ${ALL_SERVICES.join(", ")}`,
            );
        }
    }
    return names as ServiceName[];
}

/**
 * Default sizes of the rate limits. In production they are sized for one real client; elsewhere
 * (`npm start` on a laptop, a test suite, a load tool, all from one address) they only stop a
 * runaway loop, so local work is never throttled. The limiter itself runs the same either way.
 */
const RATE_LIMIT_DEFAULTS = {
    production: { perIp: 600, perUser: 300, authPerIp: 100, authPerEmail: 10 },
    other: { perIp: 100_000, perUser: 100_000, authPerIp: 10_000, authPerEmail: 1_000 },
};

/**
 * A gateway worker is its own Moleculer node: `NODE_ID` gets `-w<index>` (Moleculer's default id,
 * host and pid, is unique already), and metrics are served on `METRICS_PORT + index`, so that
 * Prometheus scrapes each worker.
 */
function workerSettings(
    env: NodeJS.ProcessEnv,
    services: ServiceName[],
    transporter: string | null,
) {
    const apiWorkers = positive(env.API_WORKERS, 1, "API_WORKERS");
    if (apiWorkers > 1 && (services.length !== 1 || services[0] !== "api" || !transporter)) {
        throw new Error(
            "API_WORKERS above 1 is for a node that hosts the gateway alone: set SERVICES=api and TRANSPORTER",
        );
    }
    const index = text(env.AGORA_WORKER_INDEX);
    const workerIndex = index === null ? null : int(index, 0, "AGORA_WORKER_INDEX");
    const nodeId = text(env.NODE_ID);
    const metricsPort = int(env.METRICS_PORT, 3030, "METRICS_PORT");
    return {
        apiWorkers,
        workerIndex,
        nodeId: nodeId !== null && workerIndex !== null ? `${nodeId}-w${workerIndex}` : nodeId,
        metricsPort:
            metricsPort > 0 && workerIndex !== null ? metricsPort + workerIndex : metricsPort,
    };
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): AgoraConfig {
    const nodeEnv = env.NODE_ENV || "development";
    const services = parseServices(env.SERVICES);
    const transporter = text(env.TRANSPORTER);
    const dataDir = path.resolve(env.DATA_DIR || ".data");
    const zipkinUrl = text(env.ZIPKIN_URL);
    const limits = RATE_LIMIT_DEFAULTS[nodeEnv === "production" ? "production" : "other"];
    return {
        services,
        transporter,
        cacher: text(env.CACHER),
        databaseUrl: text(env.DATABASE_URL),
        namespace: env.NAMESPACE || "agora",
        nodeEnv,
        production: nodeEnv === "production",
        logLevel: env.LOGLEVEL || "info",
        port: int(env.PORT, 3000, "PORT"),
        healthPort: int(env.HEALTH_PORT, 3001, "HEALTH_PORT"),
        ...workerSettings(env, services, transporter),
        adminEmail: text(env.ADMIN_EMAIL) ?? DEFAULT_ADMIN_EMAIL,
        adminPassword: text(env.ADMIN_PASSWORD) ?? DEFAULT_ADMIN_PASSWORD,
        adminFromDefaults: !text(env.ADMIN_EMAIL) || !text(env.ADMIN_PASSWORD),
        dataDir,
        embeddedDbPort: int(env.EMBEDDED_DB_PORT, 5499, "EMBEDDED_DB_PORT"),
        currency: (env.CURRENCY || "USD").toUpperCase(),
        requestTimeout: int(env.REQUEST_TIMEOUT, 5000, "REQUEST_TIMEOUT"),
        disableBalancer: env.DISABLE_BALANCER === "true",
        settleIntervalMs: Math.max(1, int(env.SETTLE_INTERVAL_MS, 2000, "SETTLE_INTERVAL_MS")),
        idempotencyTtlMs:
            1000 *
            Math.max(1, int(env.IDEMPOTENCY_TTL_SECONDS, 24 * 3600, "IDEMPOTENCY_TTL_SECONDS")),
        outboxRelayIntervalMs: Math.max(
            10,
            int(env.OUTBOX_RELAY_INTERVAL_MS, 200, "OUTBOX_RELAY_INTERVAL_MS"),
        ),
        corsOrigins: list(env.CORS_ORIGINS),
        trustedProxies: list(env.TRUSTED_PROXIES),
        rateLimits: {
            windowSeconds: positive(env.RATE_LIMIT_WINDOW_SECONDS, 60, "RATE_LIMIT_WINDOW_SECONDS"),
            perIp: positive(env.RATE_LIMIT_PER_IP, limits.perIp, "RATE_LIMIT_PER_IP"),
            perUser: positive(env.RATE_LIMIT_PER_USER, limits.perUser, "RATE_LIMIT_PER_USER"),
            authWindowSeconds: positive(
                env.RATE_LIMIT_AUTH_WINDOW_SECONDS,
                15 * 60,
                "RATE_LIMIT_AUTH_WINDOW_SECONDS",
            ),
            authPerIp: positive(
                env.RATE_LIMIT_AUTH_PER_IP,
                limits.authPerIp,
                "RATE_LIMIT_AUTH_PER_IP",
            ),
            authPerEmail: positive(
                env.RATE_LIMIT_AUTH_PER_EMAIL,
                limits.authPerEmail,
                "RATE_LIMIT_AUTH_PER_EMAIL",
            ),
        },
        tracing: parseTracing(env.TRACING, zipkinUrl, nodeEnv),
        zipkinUrl,
        jwt: {
            privateKey: text(env.JWT_PRIVATE_KEY),
            privateKeyFile: text(env.JWT_PRIVATE_KEY_FILE),
            publicKey: text(env.JWT_PUBLIC_KEY),
            publicKeyFile: text(env.JWT_PUBLIC_KEY_FILE),
            previousPublicKey: text(env.JWT_PREVIOUS_PUBLIC_KEY),
            previousPublicKeyFile: text(env.JWT_PREVIOUS_PUBLIC_KEY_FILE),
            issuer: env.JWT_ISSUER || "agora",
            audience: env.JWT_AUDIENCE || "agora-api",
            accessTtlSeconds: int(env.JWT_ACCESS_TTL, 15 * 60, "JWT_ACCESS_TTL"),
            refreshTtlSeconds: int(env.JWT_REFRESH_TTL, 30 * 24 * 3600, "JWT_REFRESH_TTL"),
        },
    };
}
