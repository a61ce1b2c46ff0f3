/**
 * The gateway's rate limits: fixed-window counters from rate-limiter-flexible, kept in Redis
 * (`CACHER`) so that every gateway node counts the same client together. moleculer-web's own
 * limiter keeps its counts in each process, so N gateways would let a client make N times the limit.
 *
 * Counters (all sizes in lib/config.ts `rateLimits`):
 * - every request, per client IP, and per user when it carries a valid access token;
 * - login, register, refresh and password change, in their own longer window, per client IP
 *   and per account email (refresh has no email: it counts per IP only).
 *
 * While Redis can't be reached each counter falls back to rate-limiter-flexible's insurance
 * limiter, a counter in this node's memory of the same size: limits still hold on every node, but
 * a client spread over N nodes may make up to N times its limit until Redis is back. Without
 * `CACHER` (embedded, one process) the counters live in memory from the start.
 */
import crypto from "node:crypto";
import Redis from "ioredis";
import {
    RateLimiterMemory,
    RateLimiterRedis,
    RateLimiterRes,
    type RateLimiterAbstract,
} from "rate-limiter-flexible";
import type { LoggerInstance } from "moleculer";
import type { AgoraConfig } from "./config";
import { redisOptions } from "./redis-options";

/** Where a client stands on the counter closest to refusing it. */
export interface RateLimitVerdict {
    limit: number;
    remaining: number;
    /** Seconds until that counter's window ends. */
    resetSeconds: number;
    /** True when this request went over the limit (it is refused). */
    limited: boolean;
}

interface Counter {
    points: number;
    limiter: RateLimiterAbstract;
}

/** How long a starting gateway waits for Redis before it counts in memory. */
const CONNECT_WAIT_MS = 2000;

/** The verdict that constrains the client most: a refusal, else the fewest requests left. */
export function tightest(verdicts: RateLimitVerdict[]): RateLimitVerdict {
    return verdicts.reduce((worst, next) => {
        if (next.limited !== worst.limited) return next.limited ? next : worst;
        if (next.limited) return next.resetSeconds > worst.resetSeconds ? next : worst;
        if (next.remaining !== worst.remaining)
            return next.remaining < worst.remaining ? next : worst;
        return next.resetSeconds > worst.resetSeconds ? next : worst;
    });
}

/** Emails are counted by a digest, so the store holds no address. */
function emailKey(email: string): string {
    return crypto
        .createHash("sha256")
        .update(email.trim().toLowerCase())
        .digest("hex")
        .slice(0, 32);
}

export class RateLimits {
    private constructor(
        private readonly counters: Record<"ip" | "user" | "authIp" | "authEmail", Counter>,
        private readonly redis: Redis | null,
    ) {}

    /** Counters in Redis when `CACHER` names one, in memory otherwise. */
    static create(config: AgoraConfig, logger: LoggerInstance): RateLimits {
        const redis = config.cacher ? new Redis(redisOptions(config.cacher)) : null;
        if (redis) {
            let down = false;
            redis.on("error", (error: Error) => {
                if (down) return;
                down = true;
                logger.warn(
                    `Rate limits: Redis unreachable (${error.message}); counting on this node until it is back.`,
                );
            });
            redis.on("ready", () => {
                if (down) logger.info("Rate limits: Redis is back; counts are shared again.");
                down = false;
            });
        }
        const prefix = `${config.namespace}-ratelimit`;
        const counter = (name: string, points: number, duration: number): Counter => {
            const options = { keyPrefix: `${prefix}-${name}`, points, duration };
            const memory = new RateLimiterMemory(options);
            const limiter = redis
                ? new RateLimiterRedis({
                      ...options,
                      storeClient: redis,
                      // Straight to the insurance counter while disconnected, not after a timeout.
                      rejectIfRedisNotReady: true,
                      insuranceLimiter: memory,
                  })
                : memory;
            return { points, limiter };
        };
        const limits = config.rateLimits;
        return new RateLimits(
            {
                ip: counter("ip", limits.perIp, limits.windowSeconds),
                user: counter("user", limits.perUser, limits.windowSeconds),
                authIp: counter("auth-ip", limits.authPerIp, limits.authWindowSeconds),
                authEmail: counter("auth-email", limits.authPerEmail, limits.authWindowSeconds),
            },
            redis,
        );
    }

    /** True when the counters are shared through Redis. */
    get shared(): boolean {
        return this.redis !== null;
    }

    /** Waits a little for Redis, so the first requests are counted with the other nodes. */
    async ready(): Promise<void> {
        const redis = this.redis;
        if (!redis || redis.status === "ready") return;
        await new Promise<void>(resolve => {
            const timer = setTimeout(done, CONNECT_WAIT_MS);
            function done() {
                clearTimeout(timer);
                redis!.off("ready", done);
                resolve();
            }
            redis.once("ready", done);
        });
    }

    close(): void {
        this.redis?.disconnect();
    }

    /** Counts one request of a client (and of its user, when signed in). */
    request(subject: string, userId: string | null): Promise<RateLimitVerdict> {
        const counts = [this.count(this.counters.ip, subject)];
        if (userId) counts.push(this.count(this.counters.user, userId));
        return Promise.all(counts).then(tightest);
    }

    /** Counts one attempt at login, register, refresh or password change. */
    authAttempt(subject: string, email: string | null): Promise<RateLimitVerdict> {
        const counts = [this.count(this.counters.authIp, subject)];
        if (email) counts.push(this.count(this.counters.authEmail, emailKey(email)));
        return Promise.all(counts).then(tightest);
    }

    private async count(counter: Counter, key: string): Promise<RateLimitVerdict> {
        let result: RateLimiterRes;
        let limited = false;
        try {
            result = await counter.limiter.consume(key);
        } catch (error) {
            // The library rejects with the counter's state when over the limit, and with an
            // Error only if even the insurance counter failed.
            if (!(error instanceof RateLimiterRes)) throw error;
            result = error;
            limited = true;
        }
        return {
            limit: counter.points,
            remaining: result.remainingPoints,
            resetSeconds: Math.max(1, Math.ceil(result.msBeforeNext / 1000)),
            limited,
        };
    }
}
