/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export function waitFor<T>(check: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const poll = () => {
            const value = check();
            if (value !== undefined) return resolve(value);
            if (Date.now() - started > timeoutMs) return reject(new Error("Timed out waiting"));
            setTimeout(poll, 20);
        };
        poll();
    });
}

/**
 * Polls the async `check` until it holds (true, or any value but undefined and false), or fails
 * after `timeoutMs`. A check that throws counts as not holding yet.
 */
export async function eventually<T>(
    check: () => Promise<T | undefined | false> | T | undefined | false,
    timeoutMs = 20_000,
    intervalMs = 50,
): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await Promise.resolve()
            .then(check)
            .catch(() => undefined);
        if (value !== undefined && value !== false) return value;
        if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
        await new Promise(resolve => setTimeout(resolve, intervalMs));
    }
}
