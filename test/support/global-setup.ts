/**
 * One temporary data folder (generated JWT keys) for the whole run, so tests never write into the
 * checkout's `.data`, rate limits that fit the suites, and no console tracing. Workers, and the
 * nodes they spawn, start after this and inherit the variables.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export default function globalSetup(): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-test-data-"));
    process.env.DATA_DIR = dir;
    process.env.AGORA_TEST_DATA_DIR = dir;
    // The suites send thousands of requests, logins and registrations from 127.0.0.1, which
    // limits sized for one real client would refuse. The rate-limit tests set their own.
    for (const name of [
        "RATE_LIMIT_PER_IP",
        "RATE_LIMIT_PER_USER",
        "RATE_LIMIT_AUTH_PER_IP",
        "RATE_LIMIT_AUTH_PER_EMAIL",
    ]) {
        process.env[name] ??= "1000000";
    }
    // Outside production the Console trace exporter draws every request: costly, and read by no
    // one in a test run. The tracing tests choose their exporter themselves.
    process.env.TRACING ??= "off";
}
