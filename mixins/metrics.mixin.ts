/**
 * SampledMetrics: gauges that a service measures from its own data (orders by status, its outbox's
 * backlog) on a timer, rather than on each change: a count over a table is cheap every few seconds
 * and always right, where counting changes drifts whenever a process dies mid-way. Every node of
 * the service samples the same rows, so dashboards take the `max` over nodes.
 */
import type { Service, ServiceSchema } from "moleculer";

/** How often each node samples: below Prometheus' 15 s scrape interval. */
export const SAMPLE_INTERVAL_MS = 5000;

interface SamplerThis extends Service {
    metricSamplers?: NodeJS.Timeout[];
}

/** One sample; a failure (database down) keeps the last values: readiness reports the database. */
function runSample(service: SamplerThis, sample: (this: Service) => Promise<void>): void {
    if (!service.broker.isMetricsEnabled()) return;
    sample.call(service).catch(error => {
        service.logger.debug("Metrics sample failed:", (error as Error).message);
    });
}

/**
 * Runs `sample` (which sets the service's gauges) once every local service has started, so after
 * the migrations, and then every SAMPLE_INTERVAL_MS, where metrics are on. The sample is a closure,
 * not a method, so that a service can mix in several samplers.
 */
export function SampledMetrics(sample: (this: Service) => Promise<void>): Partial<ServiceSchema> {
    return {
        events: {
            "$broker.started"(this: SamplerThis) {
                runSample(this, sample);
            },
        },
        started(this: SamplerThis) {
            if (!this.broker.isMetricsEnabled()) return;
            const timer = setInterval(() => runSample(this, sample), SAMPLE_INTERVAL_MS);
            timer.unref();
            (this.metricSamplers ??= []).push(timer);
        },
        stopped(this: SamplerThis) {
            for (const timer of this.metricSamplers ?? []) clearInterval(timer);
            this.metricSamplers = [];
        },
    } as Partial<ServiceSchema>;
}
