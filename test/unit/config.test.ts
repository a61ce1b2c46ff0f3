/**
 * lib/config.ts: what a node reads from its environment, where the defaults depend on it.
 */
import { Errors } from "moleculer";
import { createBrokerOptions } from "../../moleculer.config";
import { readConfig } from "../../lib/config";

describe("rate-limit sizes", () => {
    it("are sized for one real client in production", () => {
        expect(readConfig({ NODE_ENV: "production" }).rateLimits).toEqual({
            windowSeconds: 60,
            perIp: 600,
            perUser: 300,
            authWindowSeconds: 900,
            authPerIp: 100,
            authPerEmail: 10,
        });
    });

    it("only stop a runaway loop elsewhere, so local tools and suites are never throttled", () => {
        for (const env of [{}, { NODE_ENV: "development" }, { NODE_ENV: "test" }]) {
            const limits = readConfig(env).rateLimits;
            expect(limits.perIp).toBe(100_000);
            expect(limits.perUser).toBe(100_000);
            expect(limits.authPerIp).toBe(10_000);
            expect(limits.authPerEmail).toBe(1_000);
        }
    });

    it("take the environment's values in any mode, and refuse what isn't a positive integer", () => {
        const env = {
            NODE_ENV: "production",
            RATE_LIMIT_PER_IP: "5",
            RATE_LIMIT_AUTH_PER_EMAIL: "2",
        };
        expect(readConfig(env).rateLimits).toMatchObject({ perIp: 5, authPerEmail: 2 });
        expect(readConfig({ RATE_LIMIT_PER_USER: "7" }).rateLimits.perUser).toBe(7);
        for (const value of ["0", "-1", "1.5", "many"]) {
            expect(() => readConfig({ RATE_LIMIT_PER_IP: value })).toThrow(/RATE_LIMIT_PER_IP/);
        }
    });
});

describe("the circuit breaker's idea of a fault", () => {
    const { circuitBreaker } = createBrokerOptions(readConfig({}));
    const check = (circuitBreaker as { check(err: Error): boolean }).check;

    it("counts server faults and errors without a code", () => {
        expect(check(new Errors.MoleculerError("boom", 500))).toBe(true);
        expect(check(new Errors.RequestTimeoutError({ action: "x.y", nodeID: "n" }))).toBe(true);
        expect(check(new Error("a plain error"))).toBe(true);
    });

    it("doesn't count the client's errors, nor a call skipped for its caller's deadline", () => {
        expect(check(new Errors.MoleculerClientError("no", 409, "INSUFFICIENT_STOCK"))).toBe(false);
        expect(check(new Errors.ValidationError("bad", "VALIDATION_ERROR", []))).toBe(false);
        expect(check(new Errors.RequestSkippedError({ action: "users.get", nodeID: "n" }))).toBe(
            false,
        );
    });
});
