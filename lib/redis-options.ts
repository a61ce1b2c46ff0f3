/**
 * ioredis options for a `redis://[:password@]host:port[/db]` URL, shared by every Redis client of
 * a node (the cacher, the gateway's rate limits). They fail fast while Redis is down, so that a
 * caller can fall back (to PostgreSQL, to a per-node limit) instead of waiting.
 */
import type { RedisOptions } from "ioredis";

export function redisOptions(url: string): RedisOptions {
    const parsed = new URL(url);
    return {
        host: parsed.hostname,
        port: Number(parsed.port || 6379),
        password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
        db: Number(parsed.pathname.slice(1) || 0),
        // Commands fail at once while disconnected instead of queueing (and stalling listings).
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        // A Redis that hangs (paused, partitioned) counts as down after this.
        commandTimeout: 1000,
        retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    };
}
