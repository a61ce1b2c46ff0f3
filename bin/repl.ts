/**
 * `npm run repl`: a node with no services of its own that joins a running cluster (the same
 * `TRANSPORTER` and `NAMESPACE` as its nodes) and opens Moleculer's REPL on it: `nodes`,
 * `services`, `call products.list`, … plus the operator's commands of lib/repl-commands.ts.
 *
 * It opens no metrics or health port (it is not a node to scrape or probe) and traces nothing.
 */
import os from "node:os";
import { ServiceBroker } from "moleculer";
import { createBrokerOptions } from "../moleculer.config";
import { readConfig } from "../lib/config";

/** How long to wait for the cluster's nodes to be discovered before opening the prompt. */
const DISCOVERY_WAIT_MS = 5000;

async function main(): Promise<void> {
    const config = readConfig();
    if (!config.transporter) {
        process.stderr.write(
            "npm run repl joins a running cluster: set TRANSPORTER (and NAMESPACE) to the cluster's," +
                " e.g. TRANSPORTER=nats://127.0.0.1:4222 NAMESPACE=agora-cluster npm run repl\n",
        );
        process.exit(2);
    }
    const broker = new ServiceBroker({
        ...createBrokerOptions({ ...config, metricsPort: 0, tracing: "off" }),
        nodeID: config.nodeId ?? `repl-${os.hostname()}-${process.pid}`,
        // The REPL's own output is the point: only warnings from the broker.
        logLevel: "warn",
    });
    await broker.start();
    const others = await waitForOtherNodes(broker);
    process.stdout.write(
        `Joined namespace "${config.namespace}" over ${config.transporter} as ${broker.nodeID}: ` +
            (others
                ? `${others} other node(s) online.\n`
                : "no other node online yet (is the cluster running in this namespace?).\n") +
            "Try: nodes, services, call products.list, stock <productId>, orders, outbox, settle, help\n",
    );
    broker.repl();
}

/** Discovery is asynchronous: give the other nodes' INFO packets a moment before the prompt. */
async function waitForOtherNodes(broker: ServiceBroker): Promise<number> {
    const deadline = Date.now() + DISCOVERY_WAIT_MS;
    for (;;) {
        const others = broker.registry.nodes
            .list({ onlyAvailable: true, withServices: false })
            .filter((node: { local: boolean }) => !node.local).length;
        if (others > 0 || Date.now() > deadline) return others;
        await new Promise(resolve => setTimeout(resolve, 100));
    }
}

void main();
