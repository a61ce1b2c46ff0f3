/**
 * lib/failover.ts between brokers over NATS: a node that stops answering is declared gone within
 * seconds, not after the heartbeat timeout; a node restarted under the same NODE_ID is a new node,
 * called at once even though its circuit was open, and calls still waiting on the old instance
 * are refused instead of running into their timeout.
 */
import { Errors, type Middleware, type ServiceBroker } from "moleculer";
import { createTestBroker } from "../support/broker";
import { cleanNamespace, NATS_URL, testNamespace } from "../support/database";
import { eventually } from "../support/wait";

jest.setTimeout(60_000);

type Mode = "answer" | "fail" | "hang";

/** A node of a `work` service that answers, fails (500) or never answers, as the test says. */
interface WorkNode {
    broker: ServiceBroker;
    mode: Mode;
    /** True: nothing reaches the node and nothing leaves it, as if its process were frozen. */
    frozen: boolean;
}

const namespace = testNamespace();
let caller: ServiceBroker;
/** The live instance of each worker node. */
const workers = new Map<string, WorkNode>();
/** Every instance ever started, for the clean-up. */
const instances: WorkNode[] = [];

async function startWorker(nodeID: string): Promise<WorkNode> {
    const worker = { mode: "answer", frozen: false } as WorkNode;
    const unlessFrozen =
        (next: (...args: unknown[]) => unknown) =>
        (...args: unknown[]) =>
            worker.frozen ? Promise.resolve() : next(...args);
    const freezer = {
        name: "Freezer",
        transporterReceive: unlessFrozen,
        transporterSend: unlessFrozen,
    } as unknown as Middleware;
    worker.broker = createTestBroker({
        namespace,
        transporter: NATS_URL,
        nodeID,
        middlewares: [freezer],
    });
    worker.broker.createService({
        name: "work",
        actions: {
            run(): Promise<string> {
                if (worker.mode === "fail") {
                    return Promise.reject(new Errors.MoleculerError("Broken", 500, "BROKEN"));
                }
                if (worker.mode === "hang") return new Promise(() => undefined);
                return Promise.resolve(nodeID);
            },
        },
    });
    workers.set(nodeID, worker);
    instances.push(worker);
    await worker.broker.start();
    return worker;
}

/**
 * A restart under the same NODE_ID, faster than the heartbeat timeout: the old instance goes
 * silent (as killed: it never speaks again) and a new one announces itself.
 */
function restartWorker(nodeID: string): Promise<WorkNode> {
    workers.get(nodeID)!.frozen = true;
    return startWorker(nodeID);
}

const run = (nodeID?: string, timeout = 10_000) =>
    caller.call<string, object>("work.run", {}, { nodeID, timeout });

const knows = (nodeID: string) =>
    !!(
        caller.registry as unknown as {
            getActionEndpointByNodeId(action: string, nodeID: string): unknown;
        }
    ).getActionEndpointByNodeId("work.run", nodeID);

beforeAll(async () => {
    caller = createTestBroker({ namespace, transporter: NATS_URL, nodeID: "caller" });
    await caller.start();
    await Promise.all([startWorker("work-1"), startWorker("work-2")]);
    await eventually(() => knows("work-1") && knows("work-2"));
});

afterAll(async () => {
    // Frozen old instances stay frozen: they would take the new ones for a nodeID conflict.
    await Promise.all([caller, ...instances.map(worker => worker.broker)].map(b => b.stop()));
    await cleanNamespace(namespace);
});

it("declares a node that stops answering gone, refuses the call waiting on it and calls the other", async () => {
    const worker = workers.get("work-1")!;
    worker.frozen = true;
    // Well before the call's own 10 s timeout, and before the 6 s heartbeat timeout.
    await expect(run("work-1")).rejects.toMatchObject({ name: "RequestRejectedError" });
    expect(knows("work-1")).toBe(false);
    const answers = await Promise.all(Array.from({ length: 6 }, () => run()));
    expect(new Set(answers)).toEqual(new Set(["work-2"]));

    // Thawed, its next heartbeat brings it back.
    worker.frozen = false;
    await eventually(() => knows("work-1"), 20_000);
    expect(await run("work-1")).toBe("work-1");
});

it("calls a node restarted under the same NODE_ID at once, although its circuit was open", async () => {
    workers.get("work-1")!.mode = "fail";
    // The caller's breaker opens after 20 calls with at least half of them failed.
    for (let i = 0; i < 40 && knows("work-1"); i++) {
        await expect(run("work-1")).rejects.toBeInstanceOf(Errors.MoleculerError);
    }
    expect(knows("work-1")).toBe(false);

    await restartWorker("work-1");
    expect(await run("work-1")).toBe("work-1");
});

it("refuses the calls still waiting on the old instance of a restarted node", async () => {
    workers.get("work-1")!.mode = "hang";
    const refused = expect(run("work-1")).rejects.toMatchObject({
        name: "RequestRejectedError",
    });
    await restartWorker("work-1");
    await refused;
    expect(await run("work-1")).toBe("work-1");
});
