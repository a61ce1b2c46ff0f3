/**
 * Moleculer's Redis cacher, made to degrade instead of fail: with Redis down, reads miss (and are
 * answered from PostgreSQL), writes to the cache are skipped, and a clean or stamp bump that could
 * not reach Redis is remembered. Until a full clean of the namespace's cache succeeds, the cache is
 * not read, so no entry from before the outage can hide a change made during it; then caching
 * resumes. A lost connection or a failed read counts the same way: this node may have missed a
 * bump, so it trusts no entry until it has cleaned.
 *
 * It also holds the Redis half of the stamped cache (lib/stamped-cache.ts): each cache group has a
 * stamp key, entry keys carry the stamp, a write replaces the stamp, and a store only happens if the
 * stamp is still the one read before the value was computed (both atomic, in Lua).
 */
import crypto from "node:crypto";
import { Cachers, type GenericObject, type LoggerInstance } from "moleculer";
import type { Redis } from "ioredis";

const RECOVERY_INTERVAL_MS = 1000;

/** KEYS[1] stamp; ARGV[1] entry key before the stamp, ARGV[2] after it, ARGV[3] a fresh stamp. */
const STAMPED_GET = `
local s = redis.call('GET', KEYS[1])
if not s then s = ARGV[3]; redis.call('SET', KEYS[1], s) end
return {s, redis.call('GET', ARGV[1] .. s .. ARGV[2])}`;

/** KEYS[1] stamp, KEYS[2] entry; ARGV[1] the stamp read before computing, ARGV[2] value, ARGV[3] ttl. */
const STAMPED_SET = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0`;

interface StampedRedis extends Redis {
    agoraStampedGet(
        stamp: string,
        before: string,
        after: string,
        fresh: string,
    ): Promise<[string, string | null]>;
    agoraStampedSet(
        stamp: string,
        entry: string,
        expected: string,
        value: string,
        ttl: number,
    ): Promise<number>;
}

export function newStamp(): string {
    // randomUUID draws from a cached entropy pool: no system call per read.
    return crypto.randomUUID();
}

export class ResilientRedisCacher extends Cachers.Redis {
    declare logger: LoggerInstance;
    declare client: Redis;
    declare prefix: string;
    /** Set while a clean was missed: retried until it succeeds. */
    private recovery: NodeJS.Timeout | null = null;
    private scriptsDefined = false;
    private closed = false;
    /** The stamped groups this node has used: their stamps are replaced when it recovers. */
    private readonly groups = new Set<string>();

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
        this.closed = true;
        if (this.recovery) clearInterval(this.recovery);
        this.recovery = null;
        return super.close();
    }

    private stamped(): StampedRedis {
        const client = this.client as StampedRedis;
        if (!this.scriptsDefined) {
            client.defineCommand("agoraStampedGet", { numberOfKeys: 1, lua: STAMPED_GET });
            client.defineCommand("agoraStampedSet", { numberOfKeys: 2, lua: STAMPED_SET });
            // A node that lost its connection may have missed a bump made meanwhile.
            client.on("close", () => this.markStale());
            this.scriptsDefined = true;
        }
        return client;
    }

    private stampKey(group: string): string {
        this.groups.add(group);
        // Under the namespace's prefix, so that what cleans a namespace's cache (a full clean, the
        // tests' and the bench's clean-up) removes the stamps too. A removed stamp is safe: the next
        // read sets a new random one, under which no old entry is found and against which no store
        // begun under the old stamp succeeds.
        return `${this.prefix}stamp:${group}`;
    }

    /** MSET arguments giving each group a new random stamp. */
    private freshStamps(groups: string[]): string[] {
        return groups.flatMap(group => [this.stampKey(group), newStamp()]);
    }

    /** The group's current stamp and the entry stored under it, or null if the cache can't be used. */
    async stampedGet(
        group: string,
        key: string,
    ): Promise<{ stamp: string; value: string | null } | null> {
        if (this.recovery) return null;
        try {
            const [stamp, value] = await this.stamped().agoraStampedGet(
                this.stampKey(group),
                `${this.prefix}${group}:`,
                `:${key}`,
                newStamp(),
            );
            if (this.recovery) return null;
            return { stamp, value };
        } catch {
            this.markStale();
            return null;
        }
    }

    /** Stores `value` only if the group's stamp is still `stamp`. */
    async stampedSet(
        group: string,
        stamp: string,
        key: string,
        value: string,
        ttl: number,
    ): Promise<boolean> {
        if (this.recovery) return false;
        try {
            const stored = await this.stamped().agoraStampedSet(
                this.stampKey(group),
                `${this.prefix}${group}:${stamp}:${key}`,
                stamp,
                value,
                ttl,
            );
            return stored === 1;
        } catch {
            return false;
        }
    }

    /** Gives each group a new stamp (one MSET): every entry stored under the old ones is unreachable. */
    async bump(groups: string[]): Promise<boolean> {
        try {
            await this.stamped().mset(...this.freshStamps(groups));
            return true;
        } catch {
            this.markStale();
            return false;
        }
    }

    markStale(): void {
        if (this.recovery || this.closed) return;
        this.logger.warn("Redis cacher unavailable: cache bypassed until it can be cleaned.");
        this.recovery = setInterval(() => {
            // New stamps first: a reader that read a stamp before the outage and stores after it
            // can't store under a stamp still current; then the entries go.
            const stamps = this.freshStamps([...this.groups]);
            (stamps.length ? this.client.mset(...stamps) : Promise.resolve())
                .then(() => super.clean("**"))
                .then(
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
