/**
 * One broker configuration for every node. Every option is set explicitly, because Moleculer's
 * code defaults differ from its docs; each line says why it has the value it has. The environment
 * (see lib/config.ts and the README) overrides what differs between nodes.
 */
import type { BrokerOptions, Errors, Middleware } from "moleculer";
import { readConfig, type AgoraConfig } from "./lib/config";
import { Middleware as ChannelsMiddleware } from "@moleculer/channels";
import { AccessMiddleware } from "./lib/access";
import { FailoverMiddleware } from "./lib/failover";
import { ResilientRedisCacher } from "./lib/resilient-redis-cacher";
import { ProductCacheMiddleware } from "./lib/product-cache";
import { redisOptions } from "./lib/redis-options";
import { RequestIdMiddleware, jsonLogFormatter, shortLogFormatter } from "./lib/request-id";
import { AgoraValidator } from "./lib/validator";
import { trackAnnouncements } from "./lib/health";
import { dropClientQuantiles } from "./lib/metrics";
import { replCommands } from "./lib/repl-commands";

type ChannelAdapterConfig = Parameters<typeof ChannelsMiddleware>[0]["adapter"];

const SECOND_NS = 1e9;
const DAY_NS = 24 * 3600 * SECOND_NS;

/**
 * nats.js settings of both NATS connections (Moleculer's transporter, and JetStream for channels):
 * redial forever, twice a second, so that a restarted NATS is in use again within a second (nats.js
 * gives up after 10 tries, 2 s apart); ping the server every 10 s, so that a connection that died
 * without a word (a partition, no FIN) is dropped and redialled in ~20 s instead of 4 minutes.
 */
const NATS_CONNECTION = {
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
    maxPingOut: 2,
};

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
                connectionOptions: { ...NATS_CONNECTION },
                // Bounded streams, set when they are created (channels #85: not updated later).
                // JetStream reserves `max_bytes` on the server for every stream (eight per
                // namespace): 128 MB each keeps a cluster's reservation at 1 GB, where 1 GB each
                // made test namespaces run a shared server out of storage.
                streamConfig: {
                    max_age: 7 * DAY_NS,
                    max_msgs: 100_000,
                    max_bytes: 128 * 1024 ** 2,
                },
                consumerOptions: {
                    config: {
                        // A new consumer group starts from what the stream still holds, not "new
                        // only": processed_events absorbs what it has already seen.
                        deliver_policy: "all",
                        // A message taken by a node that died unacknowledged goes to another
                        // (or the restarted) node after 5 s, not JetStream's 30 s. Handlers take
                        // milliseconds; one that runs longer and is delivered twice is absorbed
                        // by processed_events like any redelivery.
                        ack_wait: 5 * SECOND_NS,
                    },
                },
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
        transporter: config.transporter?.startsWith("nats://")
            ? { type: "NATS", options: { url: config.transporter, ...NATS_CONNECTION } }
            : config.transporter,
        // Shared Redis in a cluster (one stamp bump reaches every node); memory when embedded. The
        // Redis cacher degrades to "no cache" while Redis is down (lib/resilient-redis-cacher.ts).
        // Product reads use it through the stamped cache (lib/stamped-cache.ts).
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

        // --- Fault tolerance (docs/consistency.md "Failover" has the measurements) ---
        // A call that has not answered in this time fails with RequestTimeoutError (503 at the
        // gateway). 5 s: `orders.place` waits up to half of it for the inventory before it answers
        // 202, so a placement always answers before its caller gives up. Reads set their own 2 s
        // (lib/call-policy.ts).
        requestTimeout: config.requestTimeout,
        // Off for every call: a retried write would apply twice (RequestTimeoutError is
        // retryable). Idempotent reads turn it on in their action definition (lib/call-policy.ts),
        // and then retry what a dead, gone or overloaded node refused: Moleculer's retryable errors.
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
        // Heartbeats find a dead node when no call is waiting on it; lib/failover.ts finds it in
        // ~2.5 s when one is. Missing beats are checked every `heartbeatTimeout` seconds, so a
        // killed node leaves after 6 to 13 s. Shorter would declare live nodes dead whenever a
        // loaded machine delays a beat.
        heartbeatInterval: 2,
        heartbeatTimeout: 6,

        // SIGTERM (Moleculer's own handler) first tells every node this one has no services, then
        // waits for the requests it is running (and its own calls) before it disconnects, up to
        // 10 s: the 20 s stop_grace_period of compose and the pod's terminationGracePeriodSeconds
        // leave room for it. Proven by test/e2e/failover.test.ts on a real process.
        tracking: { enabled: true, shutdownTimeout: 10_000 },

        // Moleculer's balancer picks the node of each call (`DISABLE_BALANCER=false`, the
        // default): it was measured against NATS queue groups (docs/consistency.md). Queue groups
        // only forget a node when its TCP connection closes: a hung node keeps its share of the
        // calls until the NATS server gives up on it, while the balancer drops it as soon as the
        // registry does. `true` makes the transporter's queue groups pick instead (lib/failover.ts
        // then sends the gateway's calls by name). Only with a transporter: without one, Moleculer
        // 0.14's balancer-less call path has no handler for local actions and every call fails.
        disableBalancer: config.disableBalancer && config.transporter !== null,
        registry: {
            strategy: "RoundRobin",
            // A node that hosts the action itself doesn't pay a NATS round trip.
            preferLocal: true,
            // After announcing "no services" on SIGTERM, this node still takes the calls sent to
            // it before the others heard: 100 ms (the default) is short for a loaded gateway.
            // (A 0.14 option its typings lack.)
            stopDelay: 500,
        } as BrokerOptions["registry"],

        // Stops calling an endpoint (per caller node, per node and action) that fails half of at
        // least 20 calls within a minute, for 10 s, then lets one call through to try it again.
        // Only server faults count (5xx, or no code): a 4xx is the client's. In 0.14 it never
        // sees timeouts (the timeout middleware wraps it); lib/failover.ts drops its state for a
        // node that left or restarted, so a restarted node isn't refused for an old fault.
        circuitBreaker: {
            enabled: true,
            threshold: 0.5,
            minRequestCount: 20,
            windowTime: 60,
            halfOpenTime: 10_000,
            check: (err: Error) => {
                // A call skipped because its caller's deadline had passed (514) is not the
                // endpoint's fault: counted, a burst that outlasts its callers' timeouts would
                // open the circuit of a healthy service.
                if ((err as Errors.MoleculerError).type === "REQUEST_SKIPPED") return false;
                const code = (err as Errors.MoleculerError).code;
                return !code || code >= 500;
            },
        },
        // At most 50 handlers of one action run at once on a node (five times each service's
        // PostgreSQL pool of 10); 500 more wait, and beyond that a call fails at once with
        // QUEUE_FULL (503) instead of queueing into timeouts.
        bulkhead: { enabled: true, concurrency: 50, maxQueueSize: 500 },

        transit: {
            // At most this many calls wait for an answer from other nodes; more fail at once.
            maxQueueSize: 50_000,
            // Reconnect to NATS after it restarts (the connection settings are NATS_CONNECTION).
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
            // Latency as bucketed histograms only; Prometheus derives the quantiles (lib/metrics.ts).
            dropClientQuantiles(broker);
        },
        middlewares: [
            // Innermost on remote calls: probes a node that keeps a call waiting, and treats a
            // restarted node as new (lib/failover.ts).
            FailoverMiddleware(),
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
            // A call to products.list/products.get on another node is answered from the shared
            // stamped cache when the entry is there (lib/product-cache.ts).
            ProductCacheMiddleware(),
        ],
        // The operator's commands of `npm run repl` (bin/repl.ts), beside moleculer-repl's own.
        replCommands,
        skipProcessEventRegistration: false,
        maxSafeObjectSize: null as unknown as number,
    };
}

export default createBrokerOptions();
