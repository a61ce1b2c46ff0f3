/**
 * The baseline: a raw `node:http` server in its own process that answers every request with the
 * bytes of the cached listing page, fetched once from the gateway. It does nothing a gateway must
 * do (routing, auth, validation, a call over NATS, the cache), so it is the practical limit of one
 * Node process on this machine, and the gateway's figures are read as a ratio to it.
 *
 * Run by bench/run.ts as `node dist/bench/baseline.js` with BASELINE_PORT and BASELINE_BODY_FILE.
 */
import fs from "node:fs";
import http from "node:http";

const port = Number(process.env.BASELINE_PORT);
const body = fs.readFileSync(process.env.BASELINE_BODY_FILE ?? "");
const headers = {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": String(body.length),
};

http.createServer((req, res) => {
    res.writeHead(200, headers);
    res.end(body);
}).listen(port, "127.0.0.1");

process.on("SIGTERM", () => process.exit(0));
