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
    jwt: {
        privateKey: string | null;
        privateKeyFile: string | null;
        publicKey: string | null;
        publicKeyFile: string | null;
        issuer: string;
        audience: string;
        accessTtlSeconds: number;
        refreshTtlSeconds: number;
    };
}

const DEFAULT_ADMIN_EMAIL = "admin@agora.local";
const DEFAULT_ADMIN_PASSWORD = "agora-admin-change-me";

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

export function readConfig(env: NodeJS.ProcessEnv = process.env): AgoraConfig {
    const nodeEnv = env.NODE_ENV || "development";
    const dataDir = path.resolve(env.DATA_DIR || ".data");
    return {
        services: parseServices(env.SERVICES),
        transporter: text(env.TRANSPORTER),
        cacher: text(env.CACHER),
        databaseUrl: text(env.DATABASE_URL),
        namespace: env.NAMESPACE || "agora",
        nodeId: text(env.NODE_ID),
        nodeEnv,
        production: nodeEnv === "production",
        logLevel: env.LOGLEVEL || "info",
        port: int(env.PORT, 3000, "PORT"),
        metricsPort: int(env.METRICS_PORT, 3030, "METRICS_PORT"),
        healthPort: int(env.HEALTH_PORT, 3001, "HEALTH_PORT"),
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
        jwt: {
            privateKey: text(env.JWT_PRIVATE_KEY),
            privateKeyFile: text(env.JWT_PRIVATE_KEY_FILE),
            publicKey: text(env.JWT_PUBLIC_KEY),
            publicKeyFile: text(env.JWT_PUBLIC_KEY_FILE),
            issuer: env.JWT_ISSUER || "agora",
            audience: env.JWT_AUDIENCE || "agora-api",
            accessTtlSeconds: int(env.JWT_ACCESS_TTL, 15 * 60, "JWT_ACCESS_TTL"),
            refreshTtlSeconds: int(env.JWT_REFRESH_TTL, 30 * 24 * 3600, "JWT_REFRESH_TTL"),
        },
    };
}
