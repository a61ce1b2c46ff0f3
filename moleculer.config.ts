/**
 * One broker configuration for every node. Every option is set explicitly, because Moleculer's
 * code defaults differ from its docs; each line says why it has the value it has. The environment
 * (see lib/config.ts and the README) overrides what differs between nodes.
 */
import type { BrokerOptions, Errors } from "moleculer";
import { readConfig, type AgoraConfig } from "./lib/config";
import { AccessMiddleware } from "./lib/access";

export function createBrokerOptions(config: AgoraConfig = readConfig()): BrokerOptions {
    return {
        // Nodes only see each other inside one namespace: tests use a random one per run.
        namespace: config.namespace,
        // Unique per process; Moleculer makes `hostname-pid` when null.
        nodeID: config.nodeId,

        // JSON lines in production (machine-read), readable console text elsewhere.
        logger: {
            type: "Console",
            options: {
                formatter: config.production ? "json" : "short",
                colors: !config.production,
                moduleColors: false,
                autoPadding: false,
            },
        },
        logLevel: config.logLevel as BrokerOptions["logLevel"],

        // Unset: every service lives in this process and calls are local.
        transporter: config.transporter,
        // Shared Redis in a cluster (one clean reaches every node); memory when embedded.
        cacher: config.cacher
            ? {
                  type: "Redis",
                  options: {
                      prefix: `${config.namespace}-cache`,
                      ttl: 3600,
                      redis: config.cacher,
                      // A listing must still answer when Redis is down: fail fast, then read the DB.
                      monitor: false,
                  },
              }
            : { type: "Memory", options: { ttl: 3600, clone: true } },
        // JSON is readable on the wire and in NATS tooling.
        serializer: "JSON",

        // A call that has not answered in this time fails with RequestTimeoutError.
        requestTimeout: config.requestTimeout,
        // Retries are for idempotent reads only; writes opt out (see services).
        retryPolicy: {
            enabled: false,
            retries: 2,
            delay: 100,
            maxDelay: 1000,
            factor: 2,
            check: (err: Error) => !!(err as Errors.MoleculerRetryableError).retryable,
        },

        // Params are not cloned: handlers never mutate them.
        contextParamsCloning: false,
        // A guard against accidental call loops between services.
        maxCallLevel: 20,
        // Short heartbeats cut the time to notice a killed node from ~15 s to ~6 s.
        heartbeatInterval: 2,
        heartbeatTimeout: 6,

        // Tracks in-flight requests so that SIGTERM finishes them before the node leaves.
        tracking: { enabled: true, shutdownTimeout: 10_000 },

        // Moleculer picks the endpoint (round robin); measured against NATS queue groups later.
        disableBalancer: false,
        registry: { strategy: "RoundRobin", preferLocal: true },

        // Stop calling an endpoint that keeps failing, per caller node and endpoint.
        circuitBreaker: {
            enabled: true,
            threshold: 0.5,
            minRequestCount: 20,
            windowTime: 60,
            halfOpenTime: 10_000,
            check: (err: Error) => {
                const code = (err as Errors.MoleculerError).code;
                return !code || code >= 500;
            },
        },
        // Bounds concurrent handler executions per action; the rest queue, then fail fast.
        bulkhead: { enabled: true, concurrency: 50, maxQueueSize: 500 },

        transit: {
            // NATS' default max payload is 1 MB; lists are capped at 100 rows to stay far below.
            maxQueueSize: 50_000,
            disableReconnect: false,
            disableVersionCheck: false,
        },

        // fastest-validator, the built-in one; services declare `params` schemas.
        validator: true,
        errorRegenerator: null,

        // Prometheus text on METRICS_PORT (0 = off). See README for why not `moleculer-prometheus`.
        metrics: {
            enabled: config.metricsPort > 0,
            reporter: [
                {
                    type: "Prometheus",
                    options: { port: config.metricsPort, path: "/metrics" },
                },
            ],
        },
        tracing: { enabled: false },

        internalServices: true,
        internalMiddlewares: true,
        dependencyInterval: 1000,
        dependencyTimeout: 0,
        hotReload: false,
        // Enforces each action's `auth` level on the node that runs it.
        middlewares: [AccessMiddleware],
        replCommands: null,
        skipProcessEventRegistration: false,
        maxSafeObjectSize: null as unknown as number,
    };
}

export default createBrokerOptions();
