/**
 * The part of autocannon 8's programmatic API the benchmark uses; the package ships no types.
 */
declare module "autocannon" {
    import type { EventEmitter } from "node:events";

    namespace autocannon {
        interface Request {
            method?: string;
            path?: string;
            headers?: Record<string, string>;
            body?: string | Buffer;
            /** Runs before every send of this request; rebuilds it (new token, new body). */
            setupRequest?(request: Request, context: Record<string, unknown>): Request;
        }

        interface Options {
            url: string;
            connections?: number;
            /** Seconds. */
            duration?: number;
            /** Seconds a request may take before it counts as an error. */
            timeout?: number;
            method?: string;
            headers?: Record<string, string>;
            body?: string | Buffer;
            requests?: Request[];
            title?: string;
        }

        interface Histogram {
            average: number;
            mean: number;
            stddev: number;
            min: number;
            max: number;
            total: number;
            p50: number;
            p90: number;
            p97_5: number;
            p99: number;
        }

        interface Result {
            title?: string;
            requests: Histogram;
            latency: Histogram;
            throughput: Histogram;
            /** Seconds. */
            duration: number;
            errors: number;
            timeouts: number;
            non2xx: number;
            statusCodeStats: Record<string, { count: number }>;
            "2xx": number;
            "4xx": number;
            "5xx": number;
        }

        interface Instance extends EventEmitter, PromiseLike<Result> {
            stop(): void;
        }
    }

    function autocannon(options: autocannon.Options): autocannon.Instance;
    export = autocannon;
}
