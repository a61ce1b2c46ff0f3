/**
 * `npm start`: one node of Agora. With no environment it is the whole shop in one process on
 * embedded defaults (embedded PostgreSQL, in-process calls, memory cacher); with `TRANSPORTER`,
 * `CACHER`, `DATABASE_URL` and `SERVICES` it is one node of a cluster. Same code either way.
 */
import cluster from "node:cluster";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { createBrokerOptions } from "../moleculer.config";
import { readConfig } from "../lib/config";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "../lib/embedded-db";
import { startHealthServer } from "../lib/health";
import { productionProblems } from "../lib/startup-checks";
import { superviseWorkers } from "../lib/workers";

async function main(): Promise<void> {
    const config = readConfig();
    // Before anything starts (no database, no generated key): all the reasons at once.
    const problems = config.production ? productionProblems(config) : [];
    const refusal = `Agora refuses to start in production:\n${problems.map(p => `  - ${p}`).join("\n")}`;
    // API_WORKERS: this process only supervises the gateway workers, each of which runs main().
    if (config.apiWorkers > 1 && cluster.isPrimary) {
        if (problems.length) {
            process.stderr.write(`${refusal}\n`);
            process.exit(1);
        }
        superviseWorkers(config.apiWorkers, line => process.stderr.write(`${line}\n`));
        return;
    }
    const broker = new ServiceBroker(createBrokerOptions(config));
    const log = broker.getLogger("agora");
    if (problems.length) {
        log.fatal(refusal);
        process.exit(1);
    }

    let embedded: EmbeddedDatabase | null = null;
    if (!config.databaseUrl && config.services.some(name => name !== "api")) {
        const started = Date.now();
        embedded = await startEmbeddedDatabase(config, message => log.warn(message));
        process.env.DATABASE_URL = embedded.url;
        log.info(
            `Embedded PostgreSQL ready in ${Date.now() - started} ms (data: ${config.dataDir})`,
        );
    }
    const stopEmbedded = async () => {
        if (embedded) await embedded.stop().catch(() => undefined);
        embedded = null;
    };
    broker.localBus.on("$broker.stopped", () => void stopEmbedded());

    // Nodes without the gateway answer probes on their own port, from before they are ready.
    if (!config.services.includes("api") && config.healthPort > 0) {
        const health = startHealthServer(broker, config.healthPort);
        broker.localBus.on("$broker.stopped", () => health.close());
    }

    for (const name of config.services) {
        broker.loadService(path.join(__dirname, "..", "services", name, `${name}.service`));
    }
    try {
        await broker.start();
    } catch (error) {
        log.fatal("Agora could not start:", error);
        await stopEmbedded();
        process.exit(1);
    }
    printBanner(config, log);
}

function printBanner(
    config: ReturnType<typeof readConfig>,
    log: { info(...args: unknown[]): void; warn(...args: unknown[]): void },
): void {
    const lines = [`Agora node ready: services ${config.services.join(", ")}`];
    if (config.services.includes("api")) {
        lines.push(`  REST     http://localhost:${config.port}/api`);
        lines.push(`  GraphQL  http://localhost:${config.port}/graphql (playground in a browser)`);
        lines.push(
            `  API docs http://localhost:${config.port}/api/docs (OpenAPI: /api/openapi.json)`,
        );
        lines.push(`  Health   http://localhost:${config.port}/health/ready`);
    }
    if (config.metricsPort > 0)
        lines.push(`  Metrics  http://localhost:${config.metricsPort}/metrics`);
    log.info(lines.join("\n"));
    if (config.adminFromDefaults && config.services.includes("users")) {
        log.warn(
            `ADMIN_EMAIL / ADMIN_PASSWORD are not set: the first admin is ${config.adminEmail} / ${config.adminPassword}. Set both before exposing this node.`,
        );
    }
}

// A setting that can't be read (lib/config.ts throws) stops the node with its message, no stack.
main().catch((error: Error) => {
    process.stderr.write(`Agora could not start: ${error.message}\n`);
    process.exit(1);
});
