/**
 * Durable events over NATS JetStream: profile changes made while every orders node is down reach
 * the orders once it is back, each applied exactly once, and a redelivered event changes nothing.
 */
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
import { createTestBroker } from "../support/broker";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { adminCaller } from "../support/fixtures";
import {
    Channel,
    type AuthUser,
    type ChannelEvent,
    type Order,
    type Product,
    type User,
} from "../../types";

const namespace = testNamespace();
const cluster = { namespace, transporter: NATS_URL, cacher: REDIS_URL };
let db: TestDatabase;
let pg: Client;
let usersNode: ServiceBroker;
let productsNode: ServiceBroker;
let caller: ServiceBroker;
let ordersNode: ServiceBroker | null = null;

const startOrdersNode = async () => {
    ordersNode = createTestBroker({
        ...cluster,
        nodeID: `orders-${Date.now()}`,
        services: ["orders"],
    });
    await ordersNode.start();
    await caller.waitForServices(["orders"], 10_000);
};

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    usersNode = createTestBroker({ ...cluster, nodeID: "users", services: ["users"] });
    productsNode = createTestBroker({ ...cluster, nodeID: "products", services: ["products"] });
    caller = createTestBroker({ ...cluster, nodeID: "caller" });
    await Promise.all([usersNode.start(), productsNode.start(), caller.start()]);
    await startOrdersNode();
});

afterAll(async () => {
    await Promise.all([ordersNode?.stop(), usersNode.stop(), productsNode.stop(), caller.stop()]);
    await pg.end();
    await db.drop();
    await cleanNamespace(namespace);
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error("condition not met in time");
        await new Promise(resolve => setTimeout(resolve, 100));
    }
}

async function processedProfileEvents(): Promise<number> {
    const result = await pg.query(
        "SELECT count(*)::int AS n FROM orders.processed_events WHERE channel = $1",
        [Channel.UserProfileUpdated],
    );
    return result.rows[0].n;
}

it("applies every profile change made while orders was down, exactly once, after it returns", async () => {
    const email = `durable-${crypto.randomUUID()}@example.com`;
    const user = await caller.call<User, object>("users.register", {
        email,
        password: "durable passphrase",
        name: "Before",
    });
    const me: AuthUser = { id: user.id, email, role: "user" };
    const product = await caller.call<Product, object>(
        "products.create",
        { name: "Durable", price: 100, stock: 10 },
        { meta: { user: adminCaller } },
    );
    const order = await caller.call<Order, object>(
        "orders.place",
        { items: [{ productId: product.id, quantity: 1 }] },
        { meta: { user: me } },
    );
    const processedBefore = await processedProfileEvents();

    await ordersNode!.stop();
    ordersNode = null;
    for (const name of ["One", "Two", "Three", "Four", "Last"]) {
        await caller.call("users.updateProfile", { name }, { meta: { user: me } });
    }
    // The events are out of the users outbox and held by JetStream, not by any orders node.
    await eventually(async () => {
        const unsent = await pg.query(
            "SELECT count(*)::int AS n FROM users.outbox WHERE sent_at IS NULL",
        );
        return unsent.rows[0].n === 0;
    });

    await startOrdersNode();
    await eventually(async () => (await processedProfileEvents()) === processedBefore + 5);
    const current = await caller.call<Order, object>(
        "orders.get",
        { id: order.id },
        { meta: { user: me } },
    );
    expect(current.shipping.name).toBe("Last");

    // The same event once more (as a redelivery would bring it): recorded once, applied once.
    const [row] = (
        await pg.query(
            "SELECT id, payload, created_at FROM users.outbox WHERE payload->>'userId' = $1 ORDER BY created_at LIMIT 1",
            [user.id],
        )
    ).rows;
    const replay: ChannelEvent = {
        eventId: row.id,
        channel: Channel.UserProfileUpdated,
        occurredAt: new Date(row.created_at).toISOString(),
        data: row.payload,
    };
    await (
        caller as unknown as { sendToChannel(name: string, payload: unknown): Promise<void> }
    ).sendToChannel(Channel.UserProfileUpdated, replay);
    await new Promise(resolve => setTimeout(resolve, 1000));
    expect(await processedProfileEvents()).toBe(processedBefore + 5);
    const after = await caller.call<Order, object>(
        "orders.get",
        { id: order.id },
        { meta: { user: me } },
    );
    expect(after.shipping.name).toBe("Last");
});

it("publishes order and inventory lifecycle events to their own bounded streams", async () => {
    await eventually(async () => {
        const result = await pg.query(
            `SELECT (SELECT count(*) FROM orders.outbox WHERE sent_at IS NULL)
                  + (SELECT count(*) FROM products.outbox WHERE sent_at IS NULL) AS n`,
        );
        return Number(result.rows[0].n) === 0;
    });
    const channels = await pg.query(
        `SELECT DISTINCT channel FROM orders.outbox UNION SELECT DISTINCT channel FROM products.outbox`,
    );
    expect(channels.rows.map(r => r.channel).sort()).toEqual([
        "inventory.updated",
        "order.confirmed",
        "order.placed",
    ]);
    const adapter = streamsOf(caller);
    const info = await adapter.manager.streams.info(`${namespace}_order_placed`);
    expect(info.state.messages).toBeGreaterThanOrEqual(1);
    expect(info.config.max_msgs).toBe(100_000);
    expect(info.config.max_bytes).toBe(128 * 1024 ** 2);
    expect(info.config.max_age).toBeGreaterThan(0);
});

it("makes a stream again when it is gone, and sends the events that waited for it", async () => {
    const stream = `${namespace}_inventory_updated`;
    await streamsOf(caller).manager.streams.delete(stream);
    await caller.call<Product, object>(
        "products.create",
        { name: "After the stream", price: 100, stock: 1 },
        { meta: { user: adminCaller } },
    );
    await eventually(async () => {
        const unsent = await pg.query(
            "SELECT count(*)::int AS n FROM products.outbox WHERE sent_at IS NULL",
        );
        return unsent.rows[0].n === 0;
    });
    const info = await streamsOf(caller).manager.streams.info(stream);
    expect(info.state.messages).toBe(1);
    expect(info.config.max_msgs).toBe(100_000);
});

/** The JetStream manager of a broker's channel adapter. */
function streamsOf(broker: ServiceBroker) {
    return (
        broker as unknown as {
            channelAdapter: {
                manager: {
                    streams: {
                        info(name: string): Promise<{
                            config: { max_age: number; max_msgs: number; max_bytes: number };
                            state: { messages: number };
                        }>;
                        delete(name: string): Promise<boolean>;
                    };
                };
            };
        }
    ).channelAdapter;
}
