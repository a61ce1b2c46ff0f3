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
