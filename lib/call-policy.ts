/**
 * How callers treat an action, declared on the action (the caller's broker reads it from the
 * registry). Reads are safe to repeat, so a read caught on a node that just died is retried, on
 * another node, after a short timeout. Writes keep the broker's defaults: no retry (a retried write
 * could apply twice unless it carries its own key, like `products.reserve`'s order id).
 */
export const readPolicy = {
    /** A healthy read answers in milliseconds; a dead node's never does. */
    timeout: 2000,
    retryPolicy: { enabled: true, retries: 2, delay: 50, maxDelay: 500, factor: 2 },
} as const;
