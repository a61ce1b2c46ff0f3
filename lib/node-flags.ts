/**
 * The Node flags every Agora node runs with: `npm start`, `npm run cluster`, the Dockerfile's CMD
 * (test/unit/deployment.test.ts checks they agree) and the benchmark's nodes.
 *
 * `--max-semi-space-size=2`: V8's young generation grows to 2 × 16 MB on Node 20 and is never
 * given back, a third of an idle node's memory. Capped at 2 MB, idle RSS per node went from
 * 109–123 MB to 87–95 MB (`npm run bench`, scenario rss) with no loss of throughput the noise could
 * show (REST listing 706 against 706 req/s, orders 85 against 71 per second, same run pair). V8
 * flags can't be changed once the process runs, hence flags and not code.
 */
export const NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2"];
