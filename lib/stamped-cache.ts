/**
 * The stamped cache: read-through caching that never serves a value older than a write that has
 * answered, shared by the products service and every node that calls it (the gateway reads it
 * directly, without a round trip to a products node).
 *
 * - Each cache group (`products.list`, `products.get`) has a stamp; entry keys carry it. A write
 *   that changes what a group returns gives the group a new stamp before it answers: one write, and
 *   every entry stored under the old stamp is unreachable (they expire with their TTL).
 * - A reader that missed computes the value and stores it only if the stamp is still the one it
 *   read before computing (atomically: a Lua script on Redis, one synchronous step in memory). A
 *   slow reader that read the old row can't store it after a write bumped the stamp.
 * - Concurrent misses of one entry under one stamp, in one process, compute it once.
 * - Redis down: the cache is bypassed, and stays so until this node has cleaned it
 *   (lib/resilient-redis-cacher.ts), so no entry that may predate a missed bump is served.
 * - Entries are the value's JSON text.
 */
import type { ServiceBroker } from "moleculer";
import { AgoraMetric, countMetric } from "./metrics";
import { ResilientRedisCacher, newStamp } from "./resilient-redis-cacher";

/** Entry TTL, as the broker cacher's. */
export const CACHE_TTL_SECONDS = 3600;

const MEMORY_MAX_ENTRIES = 10_000;

interface Backend {
    get(group: string, key: string): Promise<{ stamp: string; value: string | null } | null>;
    set(group: string, stamp: string, key: string, value: string, ttl: number): Promise<boolean>;
    bump(groups: string[]): Promise<boolean>;
}

/** In-process stamps and entries: the embedded mode (memory cacher), or no cacher at all. */
class MemoryBackend implements Backend {
    private stamps = new Map<string, string>();
    private entries = new Map<string, { value: string; expires: number }>();

    private stamp(group: string): string {
        let stamp = this.stamps.get(group);
        if (!stamp) {
            stamp = newStamp();
            this.stamps.set(group, stamp);
        }
        return stamp;
    }

    get(group: string, key: string) {
        const stamp = this.stamp(group);
        const entryKey = `${group}:${stamp}:${key}`;
        const entry = this.entries.get(entryKey);
        if (entry && entry.expires <= Date.now()) this.entries.delete(entryKey);
        const value = entry && entry.expires > Date.now() ? entry.value : null;
        return Promise.resolve({ stamp, value });
    }

    set(group: string, stamp: string, key: string, value: string, ttl: number) {
        if (this.stamp(group) !== stamp) return Promise.resolve(false);
        // Bounded: the oldest entry goes first (a Map keeps insertion order).
        if (this.entries.size >= MEMORY_MAX_ENTRIES)
            this.entries.delete(this.entries.keys().next().value!);
        this.entries.set(`${group}:${stamp}:${key}`, { value, expires: Date.now() + ttl * 1000 });
        return Promise.resolve(true);
    }

    bump(groups: string[]) {
        for (const group of groups) {
            this.stamps.set(group, newStamp());
            // Entries under old stamps are unreachable; drop them rather than wait for the TTL.
            for (const key of this.entries.keys())
                if (key.startsWith(`${group}:`)) this.entries.delete(key);
        }
        return Promise.resolve(true);
    }
}

class RedisBackend implements Backend {
    constructor(private readonly cacher: ResilientRedisCacher) {}
    get(group: string, key: string) {
        return this.cacher.stampedGet(group, key);
    }
    set(group: string, stamp: string, key: string, value: string, ttl: number) {
        return this.cacher.stampedSet(group, stamp, key, value, ttl);
    }
    bump(groups: string[]) {
        return this.cacher.bump(groups);
    }
}

/** Where a test can hold a reader between its computation and its store. */
export type StoreHook = (group: string, key: string) => Promise<void>;

export class StampedCache {
    private readonly backend: Backend;
    private readonly inFlight = new Map<string, Promise<string>>();
    /** Test seam: awaited after a miss computed its value and before it is stored. */
    beforeStore: StoreHook | null = null;

    constructor(
        private readonly broker: ServiceBroker,
        backend?: Backend,
    ) {
        this.backend =
            backend ??
            (broker.cacher instanceof ResilientRedisCacher
                ? new RedisBackend(broker.cacher)
                : new MemoryBackend());
    }

    /**
     * The group's current stamp and the entry stored under it, or null while the cache can't be
     * used: for a caller that computes the entry its own way and stores it with `storeIfCurrent`.
     */
    lookup(group: string, key: string): Promise<{ stamp: string; value: string | null } | null> {
        return this.backend.get(group, key);
    }

    /**
     * Stores `text` under `stamp`, the one `lookup` returned before the value was computed, unless
     * a write has given the group a new stamp since: then nothing is stored (false).
     */
    async storeIfCurrent(
        group: string,
        stamp: string,
        key: string,
        text: string,
    ): Promise<boolean> {
        if (this.beforeStore) await this.beforeStore(group, key);
        return this.backend.set(group, stamp, key, text, CACHE_TTL_SECONDS);
    }

    /** The cached JSON text of the entry, or null on a miss or while the cache can't be used. */
    async peek(group: string, key: string): Promise<string | null> {
        const found = await this.backend.get(group, key);
        return found?.value ?? null;
    }

    /**
     * The entry's JSON text: from the cache, or computed by `compute` and stored if no write bumped
     * the group's stamp meanwhile. Counts the lookup as a hit or a miss of `group`.
     */
    async read(group: string, key: string, compute: () => Promise<unknown>): Promise<string> {
        const found = await this.backend.get(group, key);
        if (found?.value != null) {
            this.count(group, "hit");
            return found.value;
        }
        this.count(group, "miss");
        if (!found) return JSON.stringify(await compute());
        const flightKey = `${group}:${found.stamp}:${key}`;
        let flight = this.inFlight.get(flightKey);
        if (!flight) {
            flight = this.compute(group, found.stamp, key, compute).finally(() =>
                this.inFlight.delete(flightKey),
            );
            this.inFlight.set(flightKey, flight);
        }
        return flight;
    }

    /** Gives the groups new stamps; call before a write that changes what they return answers. */
    bump(groups: string[]): Promise<boolean> {
        return this.backend.bump(groups);
    }

    /** Counts a hit served by a caller of the group's action (the gateway). */
    count(group: string, result: "hit" | "miss"): void {
        countMetric(this.broker, AgoraMetric.CacheLookups, { action: group, result });
        if (result === "hit" && this.broker.cacher && this.broker.isMetricsEnabled()) {
            // Moleculer's own hit counter, which entries read outside its cacher would skip.
            (
                this.broker.cacher as unknown as { metrics?: { increment(name: string): void } }
            ).metrics?.increment("moleculer.cacher.found.total");
        }
    }

    private async compute(
        group: string,
        stamp: string,
        key: string,
        compute: () => Promise<unknown>,
    ): Promise<string> {
        const value = JSON.stringify(await compute());
        await this.storeIfCurrent(group, stamp, key, value);
        return value;
    }
}

/**
 * True when this broker's stamps are the ones the products service bumps: the shared Redis, or
 * every service in this one process (no transporter). A memory cache in a cluster sees no other
 * node's bumps, so a caller there must not read entries itself.
 */
export function stampsSharedWithProducts(broker: ServiceBroker): boolean {
    return broker.cacher instanceof ResilientRedisCacher || !broker.transit;
}

const caches = new WeakMap<ServiceBroker, StampedCache>();

/** The broker's one stamped cache (its stamps and in-flight reads are shared by its services). */
export function stampedCache(broker: ServiceBroker): StampedCache {
    let cache = caches.get(broker);
    if (!cache) {
        cache = new StampedCache(broker);
        caches.set(broker, cache);
    }
    return cache;
}
