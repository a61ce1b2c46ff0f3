/**
 * Failover between nodes: how callers stop waiting for a node that is gone, and start using one
 * that is back. One middleware per broker (`FailoverMiddleware()`), on every node.
 *
 * Moleculer 0.14 notices a killed node only by missing heartbeats, checked every
 * `heartbeatTimeout` seconds: 6 to 13 s during which every call routed to it waits for its full
 * timeout. Its circuit breaker never sees those timeouts (the timeout middleware wraps it), and its
 * state, kept per `nodeID:action`, outlives a restart under the same NODE_ID. So this middleware:
 *
 * - probes a node as soon as a call to it has waited SUSPECT_AFTER_MS: a node that doesn't answer
 *   Moleculer's own PING within PROBE_TIMEOUT_MS is declared gone, exactly as a heartbeat timeout
 *   would declare it. Its endpoints leave the registry and the calls waiting on it are rejected
 *   with RequestRejectedError (retryable): reads are retried on another node, writes answer 503.
 * - treats a node that comes back as a new instance (a restart under the same NODE_ID) as a new
 *   node: calls still waiting on the old instance are rejected, what the circuit breaker learnt
 *   about the old instance is dropped, and its INFO counts as a heartbeat (Moleculer doesn't, and
 *   would later declare the new instance dead on the old one's last heartbeat).
 * - announces this node's services as soon as the broker has started, instead of after
 *   Moleculer's 1 s debounce, so that a node that reports ready can be called at once.
 * - with `disableBalancer`, sends a call made with a resolved remote endpoint by action name, so
 *   that the transporter's queue group picks the node. moleculer-web resolves an endpoint for
 *   every REST request, which would otherwise bypass the queue groups.
 */
import { Errors, type Context, type Middleware, type ServiceBroker } from "moleculer";

/** A call unanswered this long makes its node a suspect (healthy calls answer in milliseconds). */
export const SUSPECT_AFTER_MS = 1000;
/**
 * A suspect that doesn't answer a PING in this time is gone. A live node answers in
 * milliseconds; this leaves room for a loaded event loop on a shared machine.
 */
export const PROBE_TIMEOUT_MS = 1500;
/** How often waiting calls are looked at. */
const SWEEP_INTERVAL_MS = 250;

const CIRCUIT_OPENED_ACTIVE = "moleculer.circuit-breaker.opened.active";

/** A remote call still waiting for its answer. */
interface WaitingCall {
    action: string;
    /** The node it was sent to; null when the transporter's queue group picked one. */
    nodeID: string | null;
    /** That node's instance when the call was sent (a restart makes a new one). */
    instanceID: string | null;
    sentAt: number;
    /**
     * When the caller's own timeout has answered it (0: never). Moleculer keeps a timed-out call
     * pending until its node leaves, so the watch ends here rather than when the call settles.
     */
    expiresAt: number;
    reject(error: Error): void;
}

/** The parts of Moleculer 0.14's registry and transit this middleware uses (not in its typings). */
interface RegistryNode {
    id: string;
    instanceID: string | null;
    available: boolean;
    local: boolean;
    lastHeartbeatTime: number | null;
}

interface EndpointRef {
    id: string;
    local: boolean;
    state: boolean;
    action: { name: string };
}

interface CircuitState {
    ep: EndpointRef;
    service: { fullName: string };
    cbTimer: NodeJS.Timeout | null;
}

interface BrokerInternals {
    registry: {
        nodes: {
            get(id: string): RegistryNode | undefined;
            disconnected(id: string, unexpected: boolean): void;
        };
        getActionEndpoints(name: string): { endpoints: EndpointRef[] } | undefined;
    };
    transit?: { connected: boolean };
    CircuitBreakerStore?: Map<string, CircuitState>;
    localServiceChanged: { flush?(): void };
}

type CallMethod = (
    actionName: string | EndpointRef,
    params?: unknown,
    opts?: { nodeID?: string },
) => Promise<unknown>;

export function FailoverMiddleware(): Middleware {
    let broker: ServiceBroker;
    let internals: BrokerInternals;
    let sweepTimer: NodeJS.Timeout | null = null;
    const waiting = new Set<WaitingCall>();
    const probing = new Set<string>();
    /** When each node last answered a probe: it isn't probed again before SUSPECT_AFTER_MS. */
    const answeredAt = new Map<string, number>();
    /** The instance of each remote node, as last announced. */
    const instances = new Map<string, string | null>();

    const node = (id: string) => internals.registry.nodes.get(id);

    function reject(call: WaitingCall): void {
        waiting.delete(call);
        call.reject(new Errors.RequestRejectedError({ action: call.action, nodeID: call.nodeID }));
    }

    /** Remote nodes that host `action` now and could have taken a call sent by name. */
    function hostsOf(action: string): string[] {
        const list = internals.registry.getActionEndpoints(action);
        return (list?.endpoints ?? [])
            .filter(ep => !ep.local && node(ep.id)?.available)
            .map(ep => ep.id);
    }

    /** Drops what the circuit breaker learnt about a node's endpoints (it is gone or new). */
    function forgetCircuits(nodeID: string): void {
        const store = internals.CircuitBreakerStore;
        if (!store) return;
        for (const [key, state] of store) {
            if (state.ep.id !== nodeID) continue;
            if (state.cbTimer) clearTimeout(state.cbTimer);
            state.ep.state = true;
            store.delete(key);
            if (broker.isMetricsEnabled()) {
                broker.metrics.set(CIRCUIT_OPENED_ACTIVE, 0, {
                    affectedNodeID: nodeID,
                    service: state.service.fullName,
                    action: state.ep.action.name,
                });
            }
        }
    }

    async function probe(nodeID: string): Promise<void> {
        probing.add(nodeID);
        try {
            const instanceID = node(nodeID)?.instanceID;
            const pong = await broker.ping(nodeID, PROBE_TIMEOUT_MS);
            if (pong) {
                answeredAt.set(nodeID, Date.now());
                return;
            }
            // Our own connection dropped, or the node already left or came back: not our call.
            const current = node(nodeID);
            if (!internals.transit?.connected || !current?.available) return;
            if (current.instanceID !== instanceID) return;
            broker.logger.warn(
                `Node '${nodeID}' did not answer a PING within ${PROBE_TIMEOUT_MS} ms while calls waited on it: it is gone.`,
            );
            internals.registry.nodes.disconnected(nodeID, true);
        } finally {
            probing.delete(nodeID);
        }
    }

    function sweep(): void {
        // Without our own connection nothing can be told about anyone else.
        if (!internals.transit?.connected) return;
        const now = Date.now();
        const suspects = new Set<string>();
        for (const call of waiting) {
            if (call.expiresAt && now >= call.expiresAt) {
                waiting.delete(call);
                continue;
            }
            if (now - call.sentAt < SUSPECT_AFTER_MS) continue;
            if (call.nodeID) {
                const target = node(call.nodeID);
                // Sent to an instance that has since been replaced: no answer will come.
                if (target && target.instanceID !== call.instanceID) reject(call);
                else suspects.add(call.nodeID);
                continue;
            }
            const hosts = hostsOf(call.action);
            // Sent by name, and nobody who could have taken it is left.
            if (hosts.length === 0) reject(call);
            for (const id of hosts) suspects.add(id);
        }
        for (const id of suspects) {
            if (probing.has(id) || now - (answeredAt.get(id) ?? 0) < SUSPECT_AFTER_MS) continue;
            void probe(id);
        }
    }

    /** INFO from a remote node: a restart under the same NODE_ID makes it a new node. */
    function nodeAnnounced({ node: announced }: { node: RegistryNode }): void {
        if (announced.local) return;
        // An INFO proves the node alive as much as a heartbeat does.
        announced.lastHeartbeatTime = Math.round(process.uptime());
        const known = instances.get(announced.id);
        instances.set(announced.id, announced.instanceID);
        if (known === undefined || known === announced.instanceID) return;
        for (const call of waiting) {
            if (call.nodeID === announced.id && call.instanceID !== announced.instanceID) {
                reject(call);
            }
        }
        forgetNode(announced.id);
    }

    /**
     * A node (re)joined: its endpoints are new objects, or belong to a new instance. The breaker
     * keys its state by `nodeID:action` but acts on the endpoint object it first saw, so state
     * left from before (e.g. from the calls refused when the node left) would keep acting on a
     * dead endpoint, and never again stop calls to the live one.
     */
    function nodeJoined(event: { node: RegistryNode }): void {
        nodeAnnounced(event);
        forgetNode(event.node.id);
    }

    function forgetNode(nodeID: string): void {
        forgetCircuits(nodeID);
        answeredAt.delete(nodeID);
    }

    return {
        name: "Failover",

        created(this: ServiceBroker, created: ServiceBroker) {
            broker = created;
            internals = created as unknown as BrokerInternals;
            broker.localBus.on("$node.connected", nodeJoined);
            broker.localBus.on("$node.updated", nodeAnnounced);
        },

        call(next: CallMethod): CallMethod {
            return (actionName, params, opts) => {
                const byName =
                    broker.options.disableBalancer &&
                    typeof actionName !== "string" &&
                    !actionName.local &&
                    !opts?.nodeID;
                return next(byName ? actionName.action.name : actionName, params, opts);
            };
        },

        remoteAction(next: (ctx: Context) => Promise<unknown>, action: { name: string }) {
            return function watchedCall(ctx: Context): Promise<unknown> {
                const answer = next(ctx);
                const sentAt = Date.now();
                // Set by the timeout middleware, which wraps this one.
                const timeout = Number(ctx.options.timeout) || 0;
                return new Promise((resolve, reject) => {
                    const call: WaitingCall = {
                        action: action.name,
                        nodeID: ctx.nodeID ?? null,
                        instanceID: ctx.nodeID ? (node(ctx.nodeID)?.instanceID ?? null) : null,
                        sentAt,
                        expiresAt: timeout > 0 ? sentAt + timeout : 0,
                        reject,
                    };
                    waiting.add(call);
                    answer.then(resolve, reject).finally(() => waiting.delete(call));
                });
            };
        },

        started() {
            // The INFO Moleculer would send 1 s after the last service registered: send it now.
            internals.localServiceChanged.flush?.();
            if (internals.transit) {
                sweepTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
                sweepTimer.unref();
            }
        },

        stopped() {
            if (sweepTimer) clearInterval(sweepTimer);
            sweepTimer = null;
        },
    } as unknown as Middleware;
}
