/**
 * Tracing: which exporter a node gets from its environment, and, with ZIPKIN_URL, the spans of a
 * REST call (gateway, then products over NATS) arriving at a Zipkin v2 endpoint as one trace. The
 * endpoint is a plain HTTP server here that keeps what it is sent, in Zipkin's JSON.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ServiceBroker } from "moleculer";
import { readConfig } from "../../lib/config";
import { createBrokerOptions } from "../../moleculer.config";
import { createTestBroker, gatewayUrl } from "../support/broker";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { waitFor } from "../support/wait";

interface ZipkinSpan {
    traceId: string;
    id: string;
    parentId?: string;
    name: string;
    localEndpoint: { serviceName: string };
    tags: Record<string, string>;
}

function exporterOf(env: Record<string, string>) {
    const tracing = createBrokerOptions(readConfig(env)).tracing as {
        enabled: boolean;
        exporter?: { type: string; options: { baseURL?: string } }[];
    };
    return tracing.enabled ? tracing.exporter!.map(e => e.type) : [];
}

describe("the tracing exporter", () => {
    it("is the console in development, Zipkin when ZIPKIN_URL is set, none in production", () => {
        expect(exporterOf({})).toEqual(["Console"]);
        expect(exporterOf({ NODE_ENV: "production" })).toEqual([]);
        expect(exporterOf({ NODE_ENV: "test" })).toEqual([]);
        const zipkin = { ZIPKIN_URL: "http://zipkin:9411" };
        expect(exporterOf({ ...zipkin, NODE_ENV: "production" })).toEqual(["Zipkin"]);
        expect(exporterOf(zipkin)).toEqual(["Zipkin"]);
        expect(exporterOf({ TRACING: "off" })).toEqual([]);
        expect(exporterOf({ ...zipkin, TRACING: "console" })).toEqual(["Console"]);
    });

    it("refuses an unknown exporter, and Zipkin without its URL", () => {
        expect(() => readConfig({ TRACING: "jaeger" })).toThrow(/TRACING must be one of/);
        expect(() => readConfig({ TRACING: "zipkin" })).toThrow(/needs ZIPKIN_URL/);
    });
});

describe("with ZIPKIN_URL", () => {
    const namespace = testNamespace();
    const received: ZipkinSpan[] = [];
    let zipkin: http.Server;
    let db: TestDatabase;
    let brokers: ServiceBroker[] = [];

    beforeAll(async () => {
        zipkin = http.createServer((req, res) => {
            let body = "";
            req.on("data", chunk => (body += chunk));
            req.on("end", () => {
                if (req.method === "POST" && req.url === "/api/v2/spans") {
                    received.push(...(JSON.parse(body) as ZipkinSpan[]));
                }
                res.writeHead(202).end();
            });
        });
        await new Promise<void>(resolve => zipkin.listen(0, "127.0.0.1", resolve));
        const zipkinUrl = `http://127.0.0.1:${(zipkin.address() as AddressInfo).port}`;
        db = await createTestDatabase();
        process.env.DATABASE_URL = db.url;
        const cluster = {
            namespace,
            transporter: NATS_URL,
            cacher: REDIS_URL,
            env: { ZIPKIN_URL: zipkinUrl, TRACING: "zipkin" },
        };
        brokers = [
            createTestBroker({ ...cluster, nodeID: "traced-api", services: ["api"] }),
            createTestBroker({ ...cluster, nodeID: "traced-products", services: ["products"] }),
        ];
        await Promise.all(brokers.map(broker => broker.start()));
        await brokers[0].waitForServices(["products"], 20_000);
    });

    afterAll(async () => {
        await Promise.all(brokers.map(broker => broker.stop()));
        zipkin?.close();
        await db?.drop();
        await cleanNamespace(namespace);
    });

    it("sends the spans of one REST call, across two nodes, as one trace", async () => {
        const response = await fetch(`${gatewayUrl(brokers[0])}/api/products?pageSize=3`);
        expect(response.status).toBe(200);
        // Each node sends its batch every 2 s.
        const list = await waitFor(
            () => received.find(span => span.name === "action 'products.list'"),
            20_000,
        );
        expect(list.localEndpoint.serviceName).toBe("products");
        expect(list.tags.namespace).toBe(namespace);
        expect(list.tags.nodeID).toBe("traced-products");
        const trace = await waitFor(() => {
            const spans = received.filter(span => span.traceId === list.traceId);
            return spans.some(span => span.localEndpoint.serviceName === "api") ? spans : undefined;
        }, 20_000);
        const gateway = trace.find(span => span.localEndpoint.serviceName === "api")!;
        expect(gateway.tags.nodeID).toBe("traced-api");
        // The products span hangs under the gateway's: the trace crossed NATS.
        const ids = new Set(trace.map(span => span.id));
        expect(list.parentId && ids.has(list.parentId)).toBe(true);
    });
});
