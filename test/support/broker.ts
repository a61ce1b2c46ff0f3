/**
 * Brokers for tests: the project's own broker options (moleculer.config.ts), quiet, without the
 * metrics port, and with the services loaded from their real schema files.
 */
import { ServiceBroker, type Middleware, type ServiceSchema } from "moleculer";
import { createBrokerOptions } from "../../moleculer.config";
import { readConfig, type ServiceName } from "../../lib/config";

export interface TestBrokerOptions {
    nodeID?: string;
    namespace?: string;
    transporter?: string;
    cacher?: string;
    services?: ServiceName[];
    /** Extra environment for this broker's config (read when the broker is built). */
    env?: Record<string, string>;
    /** Middlewares added after the project's own (e.g. to count calls). */
    middlewares?: Middleware[];
}

export function serviceSchema(name: ServiceName): ServiceSchema {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const module = require(`../../services/${name}/${name}.service`);
    return module.default as ServiceSchema;
}

export function createTestBroker(options: TestBrokerOptions = {}): ServiceBroker {
    const config = readConfig({
        ...process.env,
        METRICS_PORT: "0",
        ...(options.transporter ? { TRANSPORTER: options.transporter } : {}),
        ...(options.cacher ? { CACHER: options.cacher } : {}),
        ...(options.namespace ? { NAMESPACE: options.namespace } : {}),
        ...options.env,
    });
    const brokerOptions = createBrokerOptions(config);
    const broker = new ServiceBroker({
        ...brokerOptions,
        nodeID: options.nodeID ?? null,
        logger: false,
        middlewares: [...(brokerOptions.middlewares ?? []), ...(options.middlewares ?? [])],
    });
    if (options.cacher) {
        // Leave nothing behind in the shared Redis: the namespace's cache goes with the broker.
        const stop = broker.stop.bind(broker);
        broker.stop = async () => {
            await broker.cacher?.clean().catch(() => undefined);
            return stop();
        };
    }
    for (const name of options.services ?? []) {
        const schema = serviceSchema(name);
        // The gateway listens on a free port; `gatewayUrl` tells which.
        broker.createService(
            name === "api" ? { ...schema, settings: { ...schema.settings, port: 0 } } : schema,
        );
    }
    return broker;
}

/** Base URL of the gateway a started test broker runs. */
export function gatewayUrl(broker: ServiceBroker): string {
    const api = broker.getLocalService("api") as unknown as { server: import("node:http").Server };
    const address = api.server.address() as import("node:net").AddressInfo;
    return `http://127.0.0.1:${address.port}`;
}
