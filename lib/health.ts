/**
 * Liveness and readiness of a node. Ready means: the broker has started every local service, the
 * transporter is connected (when there is one: NATS's own connection status, not only Moleculer's
 * flag) and the cluster has been told about this node's services, and every local service with a
 * database has run
 * its migrations and answers `SELECT 1`. A node whose database is down (at start or later) stays
 * alive and answers "not ready" with the reason, while the adapter keeps reconnecting.
 * The gateway serves this on `/health/*`; nodes without it serve it on `HEALTH_PORT`, from before
 * the broker starts.
 */
import http from "node:http";
import type { Service, ServiceBroker } from "moleculer";

export interface Readiness {
    ready: boolean;
    checks: Record<string, "ok" | string>;
}

const CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([
        promise,
        new Promise<T>((_, reject) =>
            setTimeout(() => reject(new Error("timed out")), CHECK_TIMEOUT_MS).unref(),
        ),
    ]);
}

/** Brokers whose services the cluster knows: they have announced them since they started. */
const announced = new WeakSet<ServiceBroker>();

interface Discoverer {
    sendLocalNodeInfo(nodeID?: string): Promise<unknown>;
}

/**
 * Moleculer announces a node's services (its INFO packet, and with `disableBalancer` its NATS
 * queue-group subscriptions) about a second after the last one has started, not when the broker
 * says it started: until then calls to them go nowhere and time out. This records that moment,
 * for the transporter check. Called once per broker, when it is created (moleculer.config.ts).
 */
export function trackAnnouncements(broker: ServiceBroker): void {
    const discoverer = (broker.registry as unknown as { discoverer: Discoverer }).discoverer;
    const send = discoverer.sendLocalNodeInfo.bind(discoverer);
    discoverer.sendLocalNodeInfo = (nodeID?: string) =>
        send(nodeID).then(result => {
            // A broadcast (no nodeID) after the start announces every local service.
            if (!nodeID && broker.started) announced.add(broker);
            return result;
        });
    broker.localBus.on("$broker.stopped", () => announced.delete(broker));
    // Once per connection (Moleculer makes a new client only when it connects from scratch).
    broker.localBus.on("$transporter.connected", (payload: { wasReconnect?: boolean }) => {
        if (!payload?.wasReconnect) followNatsStatus(broker);
    });
}

/** Brokers whose NATS connection is down now (the client is redialling). */
const offline = new WeakSet<ServiceBroker>();

interface NatsStatusClient {
    status(): AsyncIterable<{ type: string }>;
}

/**
 * Moleculer's NATS transporter (nats 2.x) only logs its client's status: `transit.connected`
 * stays true while the connection is down and the client redials. This follows the client's own
 * status, so a node cut off from NATS reports not ready until it is back.
 */
function followNatsStatus(broker: ServiceBroker): void {
    const client = (broker.transit as unknown as { tx?: { client?: Partial<NatsStatusClient> } })
        ?.tx?.client;
    if (typeof client?.status !== "function") return;
    const statuses = (client as NatsStatusClient).status();
    offline.delete(broker);
    void (async () => {
        for await (const status of statuses) {
            if (status.type === "disconnect") offline.add(broker);
            if (status.type === "reconnect") offline.delete(broker);
        }
    })();
}

function transporterCheck(broker: ServiceBroker): string {
    if (!broker.transit!.connected || offline.has(broker)) return "disconnected";
    return announced.has(broker) ? "ok" : "announcing";
}

export async function readiness(broker: ServiceBroker): Promise<Readiness> {
    // Every local service has finished starting (migrations, seeds) and none is stopping.
    const checks: Record<string, string> = { broker: broker.started ? "ok" : "starting" };
    if (broker.transit) checks.transporter = transporterCheck(broker);
    const withDatabase = (
        broker.services as (Service & { checkDatabase?: () => Promise<boolean> })[]
    ).filter(service => typeof service.checkDatabase === "function");
    await Promise.all(
        withDatabase.map(async service => {
            try {
                const ok = await withTimeout(service.checkDatabase!());
                checks[`database:${service.name}`] = ok ? "ok" : "migrating";
            } catch (error) {
                // Not reached yet, or lost: e.g. "unavailable: connect ECONNREFUSED 10.0.0.5:5432".
                checks[`database:${service.name}`] = `unavailable: ${(error as Error).message}`;
            }
        }),
    );
    return { ready: Object.values(checks).every(value => value === "ok"), checks };
}

/** The health server of nodes without the gateway. */
export function startHealthServer(broker: ServiceBroker, port: number): http.Server {
    const server = http.createServer((req, res) => {
        const send = (status: number, body: unknown) => {
            res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
            res.end(JSON.stringify(body));
        };
        if (req.url === "/health/live") return send(200, { status: "ok" });
        if (req.url === "/health/ready") {
            return void readiness(broker).then(result =>
                send(result.ready ? 200 : 503, {
                    status: result.ready ? "ok" : "unavailable",
                    ...result,
                }),
            );
        }
        send(404, { name: "NotFoundError", message: "Not found", code: 404, type: "NOT_FOUND" });
    });
    server.listen(port);
    return server;
}
