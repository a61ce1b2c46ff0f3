/**
 * The Node flags every Agora node runs with: `npm start`, `npm run cluster`, the Dockerfile's CMD
 * (test/unit/deployment.test.ts checks they agree) and the benchmark's nodes.
 *
 * `--max-semi-space-size=4`: V8's young generation grows to 2 × 16 MB on Node 20 and is never
 * given back, a third of an idle node's memory. Measured with `npm run bench`, 2026-12-02, two
 * interleaved runs of each setting (largest idle RSS of the five nodes; cached REST listing; orders):
 *
 * | semi-space | idle RSS, largest | REST listing req/s | orders/s | hot product/s |
 * | ---------- | ----------------- | ------------------ | -------- | ------------- |
 * | 2 MB       | 93–94 MB          | 4,811–4,846        |          |               |
 * | 4 MB       | 96–97 MB          | 6,062–6,191        | 256–268  | 290–314       |
 * | 8 MB       | 104–106 MB        | 6,194–6,370        | 254–266  | 293–308       |
 * | 16 MB      | 122–123 MB        | 6,171              |          |               |
 * | uncapped   | 121–122 MB        | 6,252–6,522        |          |               |
 *
 * At 2 MB (the setting before) the gateway spent half its work in the garbage collector (CPU
 * profile) and served a quarter less; from 4 MB on the throughput is the same within the noise.
 * V8 flags can't be changed once the process runs, hence flags and not code.
 */
export const NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4"];
