/**
 * Moleculer's Redis cacher, made to degrade instead of fail: with Redis down, reads miss (and are
 * answered from PostgreSQL), writes to the cache are skipped, and a clean that could not reach
 * Redis is remembered. Until a full clean of the namespace's cache succeeds, the cache is not read,
 * so no entry from before the outage can hide a change made during it; then caching resumes.
 */
import { Cachers, type GenericObject, type LoggerInstance } from "moleculer";

const RECOVERY_INTERVAL_MS = 1000;

export class ResilientRedisCacher extends Cachers.Redis {
    declare logger: LoggerInstance;
    /** Set while a clean was missed: retried until it succeeds. */
    private recovery: NodeJS.Timeout | null = null;

    override get(key: string): Promise<GenericObject | null> {
        if (this.recovery) return Promise.resolve(null);
        return super.get(key).catch(() => {
            this.logger.warn("Redis cacher unavailable: reading through to the service.");
            return null;
        });
    }

    override set(key: string, data: unknown, ttl?: number): Promise<unknown> {
        if (this.recovery) return Promise.resolve(null);
        return super.set(key, data, ttl).catch(() => null);
    }

    override clean(match: string | string[] = "**"): Promise<unknown> {
        return super.clean(match).catch(() => {
            this.markStale();
            return null;
        });
    }

    override close(): Promise<unknown> {
        if (this.recovery) clearInterval(this.recovery);
        this.recovery = null;
        return super.close();
    }

    private markStale(): void {
        if (this.recovery) return;
        this.logger.warn("Redis cacher unavailable: cache bypassed until it can be cleaned.");
        this.recovery = setInterval(() => {
            super.clean("**").then(
                () => {
                    if (this.recovery) clearInterval(this.recovery);
                    this.recovery = null;
                    this.logger.info("Redis is back: cache cleaned, caching resumes.");
                },
                () => undefined,
            );
        }, RECOVERY_INTERVAL_MS);
        this.recovery.unref();
    }
}
