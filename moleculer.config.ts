/**
 * One broker configuration for every node. Every option is set explicitly, because Moleculer's
 * code defaults differ from its docs; each line says why it has the value it has. The environment
 * (see lib/config.ts and the README) overrides what differs between nodes.
 */
import type { BrokerOptions, Errors, Middleware } from "moleculer";
import { readConfig, type AgoraConfig } from "./lib/config";
import { Middleware as ChannelsMiddleware } from "@moleculer/channels";
import { AccessMiddleware } from "./lib/access";
import { ResilientRedisCacher } from "./lib/resilient-redis-cacher";
import { redisOptions } from "./lib/redis-options";
import { RequestIdMiddleware, jsonLogFormatter, shortLogFormatter } from "./lib/request-id";
import { AgoraValidator } from "./lib/validator";
import { CacheMetricsMiddleware } from "./lib/metrics";
import { trackAnnouncements } from "./lib/health";
import { replCommands } from "./lib/repl-commands";

type ChannelAdapterConfig = Parameters<typeof ChannelsMiddleware>[0]["adapter"];

const DAY_NS = 24 * 3600 * 1e9;

/**
 * @moleculer/channels over NATS JetStream when the transporter is NATS; in one process (no
 * transporter) the in-memory adapter, since the outbox already keeps events across restarts.
 */
function channelAdapter(config: AgoraConfig): ChannelAdapterConfig {
    if (!config.transporter?.startsWith("nats://")) return "Fake";
    return <ChannelAdapterConfig>{
        type: "NATS",
        options: {
            nats: {
                url: config.transporter,
                // Bounded streams, set when they are created (channels #85: not updated later).
                // JetStream reserves max_bytes on the server for every stream (8 per namespace),
                // so it is sized for the events (~0.5 KB each), not generously: 1 GiB each made a
                // server holding a few namespaces refuse new streams.
                streamConfig: {
                    max_age: 7 * DAY_NS,
                    max_msgs: 1_000_000,
                    max_bytes: 256 * 1024 ** 2,
                },
                // A new consumer group starts from what the stream still holds, not "new only":
                // processed_events absorbs what it has already seen.
                consumerOptions: { config: { deliver_policy: "all" } },
            },
            // Per consumer: in-flight messages and redeliveries before dead-lettering.
            maxInFlight: 10,
            maxRetries: 5,
            deadLettering: { enabled: true, queueName: "DEAD_LETTER" },
        },
    };
}

function tracingOptions(config: AgoraConfig): BrokerOptions["tracing"] {
    if (config.tracing === "off") return { enabled: false };
    const exporter =
        config.tracing === "zipkin"
            ? {
                  type: "Zipkin",
                  options: {
                      baseURL: config.zipkinUrl,
                      // Spans are batched and sent every few seconds.
                      interval: 2,
                      payloadOptions: { debug: false, shared: false },
                      defaultTags: { namespace: config.namespace },
                  },
              }
            : { type: "Console", options: { colors: true, width: 100, gaugeWidth: 40 } };
    return {
        enabled: true,
        exporter: [exporter],
        // Every request is traced; lower the rate if the volume of spans ever costs too much.
        sampling: { rate: 1.0 },
        events: true,
        // Stack traces of errors in spans, except in production (they name files and lines).
        stackTrace: !config.production,
    };
}

export function createBrokerOptions(config: AgoraConfig = readConfig()): BrokerOptions {
    return {
        // Nodes only see each other inside one namespace: tests use a random one per run.
        namespace: config.namespace,
        // Unique per process; Moleculer makes `hostname-pid` when null.
        nodeID: config.nodeId,

        // JSON lines in production (machine-read), readable console text elsewhere; both name
        // the request being handled (lib/request-id.ts).
        logger: {
            type: "Console",
            options: {
                formatter: config.production ? jsonLogFormatter : shortLogFormatter,
                colors: !config.production,
                moduleColors: false,
                autoPadding: false,
            },
        },
        logLevel: config.logLevel as BrokerOptions["logLevel"],

        // Unset: every service lives in this process and calls are local.
        transporter: config.transporter,
        // Shared Redis in a cluster (one clean reaches every node); memory when embedded. The
        // Redis cacher degrades to "no cache" while Redis is down (lib/resilient-redis-cacher.ts).
        cacher: config.cacher
            ? new ResilientRedisCacher({
                  prefix: `${config.namespace}-cache`,
                  ttl: 3600,
                  // No distributed lock: locking is measured separately (issue 6).
                  redlock: false,
                  monitor: false,
                  redis: redisOptions(config.cacher),
              })
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

        // NATS queue groups pick the node: a killed node's subscriptions vanish with its
        // connection, so requests stop going to it at once (measured in docs/consistency.md).
        // Only with a transporter: without one, Moleculer 0.14's balancer-less call path has no
        // handler for local actions and every call fails.
        disableBalancer: config.disableBalancer && config.transporter !== null,
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

        // fastest-validator, the built-in one (services declare `params` schemas), plus the one
        // rule every text field shares: no NUL and no lone surrogate (lib/validator.ts).
        validator: new AgoraValidator(),
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
        // Spans of every action and event: Zipkin (or Jaeger's Zipkin endpoint) when ZIPKIN_URL is
        // set, a console tree per request in development, none otherwise (TRACING overrides).
        tracing: tracingOptions(config),

        internalServices: true,
        internalMiddlewares: true,
        dependencyInterval: 1000,
        dependencyTimeout: 0,
        hotReload: false,
        created(broker) {
            // Readiness waits until the cluster knows this node's services (lib/health.ts).
            trackAnnouncements(broker);
            // Middlewares of `middlewares` sit inside the built-in ones; this one must wrap the cacher.
            if (broker.isMetricsEnabled()) broker.middlewares.add(CacheMetricsMiddleware);
        },
        middlewares: [
            // Handlers run under their request's id, so their log lines carry it.
            RequestIdMiddleware,
            // Enforces each action's `auth` level on the node that runs it.
            AccessMiddleware,
            // Durable events (outbox relays publish, consumers subscribe): JetStream in a cluster.
            ChannelsMiddleware({
                adapter: channelAdapter(config),
                schemaProperty: "channels",
                sendMethodName: "sendToChannel",
                adapterPropertyName: "channelAdapter",
                channelHandlerTrigger: "emitLocalChannelHandler",
                // Handlers get the payload; the event carries its own id and metadata.
                context: false,
            }) as unknown as Middleware,
        ],
        // The operator's commands of `npm run repl` (bin/repl.ts), beside moleculer-repl's own.
        replCommands,
        skipProcessEventRegistration: false,
        maxSafeObjectSize: null as unknown as number,
    };
}

export default createBrokerOptions();
