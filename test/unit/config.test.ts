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

describe("gateway workers (API_WORKERS)", () => {
    const gateway = { SERVICES: "api", TRANSPORTER: "nats://127.0.0.1:4222" };

    it("are one process unless asked, and only for a node that hosts the gateway alone", () => {
        expect(readConfig({}).apiWorkers).toBe(1);
        expect(readConfig({ ...gateway, API_WORKERS: "2" }).apiWorkers).toBe(2);
        const refused = /API_WORKERS above 1 is for a node that hosts the gateway alone/;
        expect(() => readConfig({ API_WORKERS: "2" })).toThrow(refused);
        expect(() => readConfig({ ...gateway, SERVICES: "api,users", API_WORKERS: "2" })).toThrow(
            refused,
        );
        expect(() => readConfig({ SERVICES: "api", API_WORKERS: "2" })).toThrow(refused);
        expect(() => readConfig({ ...gateway, API_WORKERS: "0" })).toThrow(/at least 1/);
        expect(() => readConfig({ ...gateway, API_WORKERS: "two" })).toThrow(/integer/);
    });

    it("make each worker its own node, with its own metrics port", () => {
        const worker = (index: string, env: Record<string, string> = {}) =>
            readConfig({ ...gateway, API_WORKERS: "2", AGORA_WORKER_INDEX: index, ...env });
        expect(worker("1", { NODE_ID: "api", METRICS_PORT: "4000" })).toMatchObject({
            workerIndex: 1,
            nodeId: "api-w1",
            metricsPort: 4001,
        });
        // Moleculer's default id (host and pid) is unique per process; metrics off stay off.
        expect(worker("0", { METRICS_PORT: "0" })).toMatchObject({ nodeId: null, metricsPort: 0 });
        expect(readConfig({ NODE_ID: "api", METRICS_PORT: "4000" })).toMatchObject({
            workerIndex: null,
            nodeId: "api",
            metricsPort: 4000,
        });
    });
});
