/**
 * Agora's own Prometheus metrics, beside Moleculer's built-in ones (requests, latency, circuit
 * breaker, cacher hits and misses, transporter, process). Names use Moleculer's dotted style; the
 * Prometheus reporter exports `agora.http.requests.total` as `agora_http_requests_total`.
 */
import type { ServiceBroker } from "moleculer";

export const AgoraMetric = {
    /** Gateway answers, by method, route template and status. */
    HttpRequests: "agora.http.requests.total",
    /** Gateway latency, by method and route template. */
    HttpDuration: "agora.http.request.duration.seconds",
    /** Order placements, by outcome: confirmed, pending, insufficient_stock. */
    OrdersPlaced: "agora.orders.placed.total",
    /** PENDING orders settled later, by outcome: confirmed, rejected. */
    OrdersSettled: "agora.orders.settled.total",
    /** Reservations refused because some line was short. */
    ReservationShortfalls: "agora.inventory.reservation.shortfalls.total",
    /** Lookups of cached actions on the node that runs them, by action and result: hit, miss. */
    CacheLookups: "agora.cache.lookups.total",
    /** Orders in each status now, sampled from the orders schema by every orders node. */
    OrdersByStatus: "agora.orders.by.status",
    /** Durable events not yet relayed, per service (its outbox), sampled by every node of it. */
    OutboxUnsent: "agora.outbox.unsent.events",
    /** Age of the oldest event not yet relayed (0 when none), per service. */
    OutboxOldestAge: "agora.outbox.oldest.unsent.age.seconds",
} as const;

const DEFINITIONS = [
    {
        name: AgoraMetric.HttpRequests,
        type: "counter",
        labelNames: ["method", "route", "status"],
        description: "HTTP requests answered by the gateway",
    },
    {
        name: AgoraMetric.HttpDuration,
        type: "histogram",
        labelNames: ["method", "route"],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        unit: "seconds",
        description: "HTTP request latency at the gateway",
    },
    {
        name: AgoraMetric.OrdersPlaced,
        type: "counter",
        labelNames: ["outcome"],
        description: "Order placements by outcome",
    },
    {
        name: AgoraMetric.OrdersSettled,
        type: "counter",
        labelNames: ["outcome"],
        description: "PENDING orders settled by the settler, by outcome",
    },
    {
        name: AgoraMetric.ReservationShortfalls,
        type: "counter",
        labelNames: [],
        description: "Stock reservations refused for a short line",
    },
    {
        name: AgoraMetric.CacheLookups,
        type: "counter",
        labelNames: ["action", "result"],
        description: "Cached action calls answered from the cache (hit) or by the handler (miss)",
    },
    {
        name: AgoraMetric.OrdersByStatus,
        type: "gauge",
        labelNames: ["status"],
        description: "Orders in each status",
    },
    {
        name: AgoraMetric.OutboxUnsent,
        type: "gauge",
        labelNames: ["service"],
        description: "Durable events in the outbox not yet relayed",
    },
    {
        name: AgoraMetric.OutboxOldestAge,
        type: "gauge",
        labelNames: ["service"],
        unit: "seconds",
        description: "Age of the oldest durable event not yet relayed",
    },
] as const;

type MetricName = (typeof AgoraMetric)[keyof typeof AgoraMetric];

function ensure(broker: ServiceBroker, name: MetricName): boolean {
    if (!broker.isMetricsEnabled()) return false;
    if (!broker.metrics.getMetric(name)) {
        const definition = DEFINITIONS.find(d => d.name === name)!;
        broker.metrics.register({ ...definition, labelNames: [...definition.labelNames] } as never);
    }
    return true;
}

export function countMetric(
    broker: ServiceBroker,
    name: MetricName,
    labels: Record<string, string> = {},
): void {
    if (ensure(broker, name)) broker.metrics.increment(name, labels);
}

export function observeMetric(
    broker: ServiceBroker,
    name: MetricName,
    value: number,
    labels: Record<string, string> = {},
): void {
    if (ensure(broker, name)) broker.metrics.observe(name, value, labels);
}

export function setMetric(
    broker: ServiceBroker,
    name: MetricName,
    value: number,
    labels: Record<string, string> = {},
): void {
    if (ensure(broker, name)) broker.metrics.set(name, value, labels);
}

/** Moleculer's latency histograms that it registers with client-side quantiles. */
const MOLECULER_TIMERS = ["moleculer.request.time", "moleculer.event.received.time"] as const;

interface HistogramInternals {
    type: string;
    description?: string;
    labelNames: string[];
    unit?: string;
    buckets?: number[];
    rate?: boolean;
    quantiles?: number[];
}

/**
 * Re-registers Moleculer's request and event timers as plain bucketed histograms, without the
 * quantiles Moleculer computes in the process. Those keep every observed value of the last 60 s in
 * arrays (at 6,000 calls/s, 360,000 numbers per label set, sorted at each scrape) and can't be
 * aggregated across nodes; Prometheus computes the same quantiles from the buckets with
 * `histogram_quantile`, which the dashboard already does. Measured at the gateway: see README
 * "Performance". Called from the broker's `created`, after Moleculer's Metrics middleware has
 * registered them and before any call is timed; the middleware finds its metric by name.
 */
export function dropClientQuantiles(broker: ServiceBroker): void {
    if (!broker.isMetricsEnabled()) return;
    for (const name of MOLECULER_TIMERS) {
        const metric = broker.metrics.getMetric(name) as unknown as HistogramInternals | null;
        if (!metric?.quantiles) continue;
        broker.metrics.register({
            name,
            type: metric.type,
            description: metric.description,
            labelNames: [...metric.labelNames],
            unit: metric.unit,
            buckets: metric.buckets ? [...metric.buckets] : true,
            rate: metric.rate,
        } as never);
    }
}
