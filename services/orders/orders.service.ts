/**
 * The orders service: placing orders (snapshot, reserve, idempotency), order history, the order
 * lifecycle, and the settler that drives PENDING orders and owed stock releases to completion.
 *
 * Correctness never depends on a message arriving (DESIGN.md "Consistency"): an order is stored
 * PENDING before its stock is reserved, `products.reserve` / `products.release` are idempotent by
 * order id, and the settler on every orders node retries them until each order is settled.
 */
import crypto from "node:crypto";
import type { Context, Service, ServiceBroker, ServiceSchema } from "moleculer";
import { DataTypes, QueryTypes, type Sequelize, type Transaction } from "sequelize";
import { caller, isAdmin } from "../../lib/access";
import { readPolicy } from "../../lib/call-policy";
import { readConfig } from "../../lib/config";
import { AgoraMetric, countMetric, setMetric } from "../../lib/metrics";
import { pageParamRules, pageParams, toPage } from "../../lib/pagination";
import { IdempotencyConflictError, InvalidTransitionError, NotFoundError } from "../../lib/errors";
import { DbMixin } from "../../mixins/db.mixin";
import { OutboxMixin } from "../../mixins/outbox.mixin";
import { SampledMetrics } from "../../mixins/metrics.mixin";
import {
    Channel,
    OrderStatus,
    type ChannelEvent,
    type Order,
    type OrderItem,
    type OrderLine,
    type Page,
    type PageParams,
    type RequestMeta,
    type Reservation,
    type ReserveParams,
    type ShippingDetails,
    type User,
    type UserProfileUpdatedEvent,
} from "../../types";
import { migrations } from "./migrations";
import { toOrder, type OrderRow } from "./order-record";
import {
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_LINES,
    MAX_QUANTITY,
    idempotencyKeyOf,
    normalizeLines,
    pricedItems,
    refusalReason,
    requestHash,
    shippingOf,
    unpricedItems,
} from "./placement";
import { ORDER_STATUSES, UNSHIPPED_STATUSES, manualSourcesOf } from "./state-machine";

/** Orders the settler claims per pass; each holds a row lock while the inventory answers. */
const SETTLE_BATCH = 20;
/**
 * Options of every `products.reserve` / `products.release` call. Never retried by the broker: the
 * settler retries them on its own schedule. Not tracked: Moleculer 0.14 keeps a remote call that
 * timed out in its shutdown tracking forever, so one slow reservation would make this node wait
 * the whole `shutdownTimeout` when it stops. The work those calls belong to is still waited for:
 * `place` through its own tracked context, the settler in `stopped()`.
 */
const INVENTORY_CALL = { retries: 0, tracking: false } as const;
/** How often a repeated request looks again at the first one while that is still being placed. */
const REPLAY_POLL_MS = 50;
/** Placements that keep losing the race for one key give up with 409 rather than loop. */
const MAX_KEY_ATTEMPTS = 3;

export interface PlaceParams {
    items: OrderLine[];
    idempotencyKey?: string;
}

export interface ListParams extends PageParams {
    status?: OrderStatus;
    userId?: string;
}

export interface SettleCounts {
    confirmed: number;
    rejected: number;
    /** Still PENDING: the inventory could not be reached. */
    unsettled: number;
    released: number;
    /** Releases still owed: the inventory could not be reached. */
    releaseFailed: number;
}

interface Placement {
    order: Order;
    /** 201 once the stock is reserved (or the order has moved on), 202 while PENDING. */
    statusCode: 201 | 202;
}

/**
 * An order ready to be stored PENDING, with its shipping copy. It is priced by the reservation
 * that takes its stock (the name and price of each product at that moment), so an order can be
 * taken, and settled later, while the inventory can't be reached.
 */
interface OrderDraft {
    id: string;
    userId: string;
    items: OrderItem[];
    total: null;
    currency: string;
    shipping: ShippingDetails;
    shippingAsOf: string;
}

type ReserveOutcome =
    | { kind: "reserved"; reservation: Reservation }
    /** Not enough stock, or a product that doesn't exist (any more): nothing was reserved. */
    | { kind: "refused"; reason: string; error: unknown }
    | { kind: "unreachable" };

interface OrdersSettings {
    graphql: Record<string, unknown>;
}

interface OrdersMethods {
    sql(): Sequelize;
    queryRows<T extends object>(
        query: string,
        replacements?: Record<string, unknown>,
        transaction?: Transaction,
    ): Promise<T[]>;
    placeOrder(ctx: Context<PlaceParams, RequestMeta>): Promise<Placement>;
    replayPlacement(userId: string, key: string, hash: string): Promise<Placement | null>;
    draftOrder(ctx: Context<PlaceParams, RequestMeta>, lines: OrderLine[]): Promise<OrderDraft>;
    confirmOrder(
        row: OrderRow,
        reservation: Reservation,
        transaction?: Transaction,
    ): Promise<OrderRow | null>;
    insertPending(draft: OrderDraft, key: string | null, hash: string): Promise<OrderRow | null>;
    reserveStock(ctx: Context<PlaceParams, RequestMeta>, row: OrderRow): Promise<Placement>;
    askInventory(via: Context | ServiceBroker, row: OrderRow): Promise<ReserveOutcome>;
    findOrder(id: string): Promise<OrderRow | null>;
    listOrders(ctx: Context<ListParams, RequestMeta>): Promise<Page<Order>>;
    moveOrder(ctx: Context<unknown, RequestMeta>, id: string, to: OrderStatus): Promise<Order>;
    releaseStock(via: Context | ServiceBroker, orderId: string): Promise<boolean>;
    markReleased(orderId: string): Promise<void>;
    settle(minAgeMs: number): Promise<SettleCounts>;
    expireIdempotencyKeys(userId?: string, key?: string): Promise<void>;
    settlePendingOrders(
        minAgeMs: number,
    ): Promise<Pick<SettleCounts, "confirmed" | "rejected" | "unsettled">>;
    settleOwedReleases(minAgeMs: number): Promise<Pick<SettleCounts, "released" | "releaseFailed">>;
    runSettlerTick(): void;
    applyProfileUpdate(event: UserProfileUpdatedEvent, transaction?: Transaction): Promise<number>;
    consumeOnce(
        event: ChannelEvent,
        effect: (transaction: Transaction) => Promise<void>,
    ): Promise<boolean>;
    reserveTimeoutMs(): number;
    settleAgeMs(): number;
}

interface OrdersLocals {
    settleTimer: NodeJS.Timeout | null;
    settling: Promise<unknown> | null;
}

type OrdersThis = Service<OrdersSettings> & OrdersMethods & OrdersLocals;

function sleep(ms: number): Promise<void> {
    return new Promise(resolve => setTimeout(resolve, ms));
}

const OrdersService: ServiceSchema<OrdersSettings, OrdersThis> = {
    name: "orders",

    mixins: [
        DbMixin({
            schema: "orders",
            model: {
                name: "orders",
                define: {
                    id: { type: DataTypes.UUID, primaryKey: true },
                    userId: DataTypes.UUID,
                    status: DataTypes.TEXT,
                    items: DataTypes.JSONB,
                    total: DataTypes.BIGINT,
                    currency: DataTypes.TEXT,
                    shipping: DataTypes.JSONB,
                    shippingAsOf: DataTypes.DATE,
                    rejectionReason: DataTypes.TEXT,
                    idempotencyKey: DataTypes.TEXT,
                    requestHash: DataTypes.TEXT,
                    stockHeld: DataTypes.BOOLEAN,
                    releasePending: DataTypes.BOOLEAN,
                },
            },
            migrations,
        }),
        OutboxMixin({
            schema: "orders",
            publishes: [
                Channel.OrderPlaced,
                Channel.OrderConfirmed,
                Channel.OrderRejected,
                Channel.OrderCancelled,
                Channel.OrderStatusChanged,
            ],
        }),
        // Orders in each status now, for the dashboard (every status, 0 included).
        SampledMetrics(async function (this: unknown) {
            const self = this as OrdersThis;
            const rows = await self
                .sql()
                .query<{ status: string; count: number }>(
                    "SELECT status, count(*)::int AS count FROM orders.orders GROUP BY status",
                    { type: QueryTypes.SELECT },
                );
            for (const status of ORDER_STATUSES) {
                const count = rows.find(row => row.status === status)?.count ?? 0;
                setMetric(self.broker, AgoraMetric.OrdersByStatus, count, { status });
            }
        }),
    ],

    // --- Settings ---
    settings: {
        graphql: {
            enum: `enum OrderStatus { PENDING CONFIRMED SHIPPED DELIVERED REJECTED CANCELLED }`,
            type: `
                "Name and prices are null only while the order is PENDING and not yet priced."
                type OrderItem {
                    productId: ID!
                    name: String
                    unitPrice: Int
                    quantity: Int!
                    lineTotal: Int
                    product: Product
                }
                type Shipping {
                    name: String!
                    phone: String
                    address: Address!
                }
                type Order {
                    id: ID!
                    userId: ID!
                    status: OrderStatus!
                    items: [OrderItem!]!
                    "Null only while the order is PENDING and not yet priced."
                    total: Int
                    currency: String!
                    shipping: Shipping!
                    rejectionReason: String
                    createdAt: String!
                    updatedAt: String!
                    user: User
                }
                type OrderPage {
                    rows: [Order!]!
                    total: Int!
                    page: Int!
                    pageSize: Int!
                    totalPages: Int!
                }
            `,
            input: `
                input OrderItemInput {
                    productId: ID!
                    quantity: Int!
                }
                input PlaceOrderInput {
                    items: [OrderItemInput!]!
                }
            `,
            resolvers: {
                Order: {
                    user: {
                        action: "users.resolve",
                        rootParams: { userId: "id" },
                        dataLoader: true,
                    },
                },
                OrderItem: {
                    product: {
                        action: "products.resolve",
                        rootParams: { productId: "id" },
                        dataLoader: true,
                    },
                },
            },
        },
    },

    // --- Actions ---
    actions: {
        /**
         * Places an order for the caller: 201 CONFIRMED when the stock is reserved, 409 when some
         * item is short (nothing kept), 202 PENDING when the inventory can't answer in time.
         */
        place: {
            auth: "user",
            graphql: {
                mutation: "placeOrder(input: PlaceOrderInput!, idempotencyKey: String): Order",
            },
            params: {
                $$strict: "remove",
                items: {
                    type: "array",
                    min: 1,
                    max: MAX_LINES,
                    items: {
                        type: "object",
                        strict: "remove",
                        props: {
                            productId: { type: "uuid" },
                            quantity: { type: "number", integer: true, min: 1, max: MAX_QUANTITY },
                        },
                    },
                },
                idempotencyKey: {
                    type: "string",
                    min: 1,
                    max: MAX_IDEMPOTENCY_KEY_LENGTH,
                    optional: true,
                },
            },
            async handler(
                this: OrdersThis,
                ctx: Context<PlaceParams, RequestMeta>,
            ): Promise<Order> {
                const placement = await this.placeOrder(ctx).catch((error: { type?: string }) => {
                    if (error.type === "INSUFFICIENT_STOCK") {
                        countMetric(this.broker, AgoraMetric.OrdersPlaced, {
                            outcome: "insufficient_stock",
                        });
                    }
                    throw error;
                });
                countMetric(this.broker, AgoraMetric.OrdersPlaced, {
                    outcome: placement.statusCode === 202 ? "pending" : "confirmed",
                });
                ctx.meta.$statusCode = placement.statusCode;
                return placement.order;
            },
        },

        /** The caller's orders, newest first; an admin sees everyone's (or one user's). */
        list: {
            ...readPolicy,
            auth: "user",
            graphql: {
                query: "orders(status: OrderStatus, userId: ID, page: Int, pageSize: Int): OrderPage",
            },
            params: {
                $$strict: "remove",
                status: { type: "enum", values: ORDER_STATUSES, optional: true },
                userId: { type: "uuid", optional: true },
                ...pageParamRules,
            },
            handler(this: OrdersThis, ctx: Context<ListParams, RequestMeta>): Promise<Page<Order>> {
                return this.listOrders(ctx);
            },
        },

        /** One order, for its owner or an admin; 404 for anyone else. */
        get: {
            ...readPolicy,
            auth: "user",
            graphql: { query: "order(id: ID!): Order" },
            params: { $$strict: "remove", id: { type: "uuid" } },
            async handler(
                this: OrdersThis,
                ctx: Context<{ id: string }, RequestMeta>,
            ): Promise<Order> {
                const row = await this.findOrder(ctx.params.id);
                if (!row || (!isAdmin(ctx) && row.user_id !== caller(ctx).id)) {
                    throw new NotFoundError("Order", ctx.params.id);
                }
                return toOrder(row);
            },
        },

        /** Cancels a PENDING or CONFIRMED order of the caller (any order, for an admin). */
        cancel: {
            auth: "user",
            graphql: { mutation: "cancelOrder(id: ID!): Order" },
            params: { $$strict: "remove", id: { type: "uuid" } },
            handler(this: OrdersThis, ctx: Context<{ id: string }, RequestMeta>): Promise<Order> {
                return this.moveOrder(ctx, ctx.params.id, OrderStatus.Cancelled);
            },
        },

        /** An admin moves an order along its lifecycle: ship, deliver or cancel. */
        updateStatus: {
            auth: "admin",
            graphql: { mutation: "updateOrderStatus(id: ID!, status: OrderStatus!): Order" },
            params: {
                $$strict: "remove",
                id: { type: "uuid" },
                status: { type: "enum", values: ORDER_STATUSES },
            },
            handler(
                this: OrdersThis,
                ctx: Context<{ id: string; status: OrderStatus }, RequestMeta>,
            ): Promise<Order> {
                return this.moveOrder(ctx, ctx.params.id, ctx.params.status);
            },
        },

        /**
         * Internal: a user's new shipping details for their unshipped orders, at once. The users
         * service calls it when a profile changes; the durable `user.profileUpdated` event carries
         * the same change, and whichever comes second changes nothing (older `updatedAt`).
         */
        updateShipping: {
            visibility: "public",
            params: {
                $$strict: "remove",
                userId: { type: "uuid" },
                shipping: {
                    type: "object",
                    strict: "remove",
                    props: {
                        name: { type: "string", max: 200 },
                        phone: { type: "string", max: 64, nullable: true, optional: true },
                        address: { type: "object" },
                    },
                },
                updatedAt: { type: "string", max: 40 },
            },
            async handler(
                this: OrdersThis,
                ctx: Context<UserProfileUpdatedEvent>,
            ): Promise<{ updated: number }> {
                return { updated: await this.applyProfileUpdate(ctx.params) };
            },
        },

        /**
         * One settler pass now (the timer runs them anyway). Internal: tests and operators use it
         * to settle deterministically; `minAgeMs` defaults to the age the timer waits for.
         */
        settle: {
            visibility: "public",
            params: {
                $$strict: "remove",
                minAgeMs: { type: "number", integer: true, min: 0, optional: true, convert: true },
            },
            handler(this: OrdersThis, ctx: Context<{ minAgeMs?: number }>): Promise<SettleCounts> {
                return this.settle(ctx.params.minAgeMs ?? this.settleAgeMs());
            },
        },
    },

    // --- Channels ---
    // Durable (JetStream, through the users outbox): an orders node that was down catches up.
    channels: {
        [Channel.UserProfileUpdated]: {
            group: "orders",
            maxInFlight: 10,
            maxRetries: 5,
            deadLettering: { enabled: true, queueName: "DEAD_LETTER" },
            async handler(
                this: OrdersThis,
                event: ChannelEvent<UserProfileUpdatedEvent>,
            ): Promise<void> {
                await this.consumeOnce(event, transaction =>
                    this.applyProfileUpdate(event.data, transaction).then(() => undefined),
                );
            },
        },
    },

    // --- Methods ---
    methods: {
        /** Runs one SQL statement and returns the rows it produced (SELECT, or RETURNING). */
        queryRows<T extends object>(
            this: OrdersThis,
            query: string,
            replacements: Record<string, unknown> = {},
            transaction?: Transaction,
        ): Promise<T[]> {
            return this.sql().query<T>(query, {
                replacements,
                type: QueryTypes.SELECT,
                transaction,
            });
        },

        /** The placement flow of DESIGN.md "Consistency", steps 1–4, keyed or not. */
        async placeOrder(
            this: OrdersThis,
            ctx: Context<PlaceParams, RequestMeta>,
        ): Promise<Placement> {
            const userId = caller(ctx).id;
            const lines = normalizeLines(ctx.params.items);
            const key = idempotencyKeyOf(ctx.params.idempotencyKey, ctx.meta.idempotencyKey);
            const hash = requestHash(lines);
            if (key) {
                await this.expireIdempotencyKeys(userId, key);
                const earlier = await this.replayPlacement(userId, key, hash);
                if (earlier) return earlier;
            }
            const draft = await this.draftOrder(ctx, lines);
            for (let attempt = 0; attempt < MAX_KEY_ATTEMPTS; attempt++) {
                const stored = await this.insertPending(draft, key, hash);
                if (stored) return this.reserveStock(ctx, stored);
                // A concurrent request with the same key stored its order first: answer with it.
                // If it is gone again, it was refused for stock and the key is free once more.
                const earlier = await this.replayPlacement(userId, key!, hash);
                if (earlier) return earlier;
            }
            throw new IdempotencyConflictError();
        },

        /**
         * The answer to a repeated request: the order stored under this key, once its own
         * placement has finished; 409 if the key came with a different body; null if there is
         * no order under the key.
         */
        async replayPlacement(
            this: OrdersThis,
            userId: string,
            key: string,
            hash: string,
        ): Promise<Placement | null> {
            for (;;) {
                const [row] = await this.queryRows<OrderRow & { placing: boolean }>(
                    `SELECT *, (now() - created_at) < :windowMs * interval '1 millisecond' AS placing
                     FROM orders.orders WHERE user_id = :userId AND idempotency_key = :key`,
                    { userId, key, windowMs: this.reserveTimeoutMs() + 1000 },
                );
                if (!row) return null;
                if (row.request_hash !== hash) throw new IdempotencyConflictError();
                if (row.status !== OrderStatus.Pending || !row.placing) {
                    return {
                        order: toOrder(row),
                        statusCode: row.status === OrderStatus.Pending ? 202 : 201,
                    };
                }
                await sleep(REPLAY_POLL_MS);
            }
        },

        /** Copies the user's shipping details; the lines are priced when their stock is taken. */
        async draftOrder(
            this: OrdersThis,
            ctx: Context<PlaceParams, RequestMeta>,
            lines: OrderLine[],
        ): Promise<OrderDraft> {
            const userId = caller(ctx).id;
            const user = await ctx.call<User, { id: string }>("users.get", { id: userId });
            return {
                id: crypto.randomUUID(),
                userId,
                items: unpricedItems(lines),
                total: null,
                currency: readConfig().currency,
                shipping: shippingOf(user),
                shippingAsOf: user.updatedAt,
            };
        },

        /** Stores the order PENDING; null when another order already holds the same key. */
        async insertPending(
            this: OrdersThis,
            draft: OrderDraft,
            key: string | null,
            hash: string,
        ): Promise<OrderRow | null> {
            const [row] = await this.queryRows<OrderRow>(
                `INSERT INTO orders.orders
                     (id, user_id, status, items, total, currency, shipping, shipping_as_of,
                      idempotency_key, request_hash)
                 VALUES (:id, :userId, :status, CAST(:items AS jsonb), :total, :currency,
                         CAST(:shipping AS jsonb), :shippingAsOf, :key, :hash)
                 ON CONFLICT (user_id, idempotency_key) DO NOTHING
                 RETURNING *`,
                {
                    ...draft,
                    status: OrderStatus.Pending,
                    items: JSON.stringify(draft.items),
                    shipping: JSON.stringify(draft.shipping),
                    key,
                    hash,
                },
            );
            return row ?? null;
        },

        /** Step 3–4: reserve the stock and settle the order on the inventory's answer. */
        async reserveStock(
            this: OrdersThis,
            ctx: Context<PlaceParams, RequestMeta>,
            row: OrderRow,
        ): Promise<Placement> {
            const outcome = await this.askInventory(ctx, row);
            if (outcome.kind === "unreachable") return { order: toOrder(row), statusCode: 202 };
            if (outcome.kind === "refused") {
                // Not kept: the reason goes with the order.rejected event its deletion writes.
                await this.sql().transaction(async transaction => {
                    await this.queryRows(
                        `UPDATE orders.orders SET rejection_reason = :reason
                         WHERE id = :id AND status = :pending RETURNING id`,
                        { id: row.id, pending: OrderStatus.Pending, reason: outcome.reason },
                        transaction,
                    );
                    await this.queryRows(
                        `DELETE FROM orders.orders WHERE id = :id AND status = :pending RETURNING id`,
                        { id: row.id, pending: OrderStatus.Pending },
                        transaction,
                    );
                });
                // The caller gets the inventory's own 409 (each short item) or 422 (each unknown one).
                throw outcome.error;
            }
            const confirmed = await this.confirmOrder(row, outcome.reservation);
            if (confirmed) return { order: toOrder(confirmed), statusCode: 201 };
            // Someone moved the order while the stock was being reserved.
            const current = (await this.findOrder(row.id))!;
            if (
                current.status === OrderStatus.Cancelled &&
                (await this.releaseStock(ctx, row.id))
            ) {
                // The reservation landed after the cancel's release: this release is the last one.
                await this.markReleased(row.id);
            }
            return { order: toOrder(current), statusCode: 201 };
        },

        /** PENDING to CONFIRMED, priced by the reservation; null if the order has moved on. */
        async confirmOrder(
            this: OrdersThis,
            row: OrderRow,
            reservation: Reservation,
            transaction?: Transaction,
        ): Promise<OrderRow | null> {
            const { items, total } = pricedItems(row.items, reservation.items);
            const [confirmed] = await this.queryRows<OrderRow>(
                `UPDATE orders.orders
                 SET status = :confirmed, items = CAST(:items AS jsonb), total = :total,
                     updated_at = now()
                 WHERE id = :id AND status = :pending RETURNING *`,
                {
                    id: row.id,
                    confirmed: OrderStatus.Confirmed,
                    pending: OrderStatus.Pending,
                    items: JSON.stringify(items),
                    total,
                },
                transaction,
            );
            return confirmed ?? null;
        },

        /** Calls `products.reserve` once; a retry is safe, since it is idempotent by order id. */
        async askInventory(
            this: OrdersThis,
            via: Context | ServiceBroker,
            row: OrderRow,
        ): Promise<ReserveOutcome> {
            const params: ReserveParams = {
                orderId: row.id,
                items: row.items.map(item => ({
                    productId: item.productId,
                    quantity: item.quantity,
                })),
            };
            try {
                const reservation = await via.call<Reservation, ReserveParams>(
                    "products.reserve",
                    params,
                    { ...INVENTORY_CALL, timeout: this.reserveTimeoutMs() },
                );
                return { kind: "reserved", reservation };
            } catch (err) {
                const reason = refusalReason(err);
                if (reason) return { kind: "refused", reason, error: err };
                this.logger.warn(
                    `Stock for order ${row.id} not reserved yet:`,
                    (err as Error).message,
                );
                return { kind: "unreachable" };
            }
        },

        async findOrder(this: OrdersThis, id: string): Promise<OrderRow | null> {
            const [row] = await this.queryRows<OrderRow>(
                `SELECT * FROM orders.orders WHERE id = :id`,
                { id },
            );
            return row ?? null;
        },

        async listOrders(
            this: OrdersThis,
            ctx: Context<ListParams, RequestMeta>,
        ): Promise<Page<Order>> {
            const { status } = ctx.params;
            const { page, pageSize, offset } = pageParams(ctx.params);
            // A user's own orders only: the userId filter is an admin's.
            const userId = isAdmin(ctx) ? ctx.params.userId : caller(ctx).id;
            const where = [
                userId ? "user_id = :userId" : "TRUE",
                status ? "status = :status" : "TRUE",
            ].join(" AND ");
            const replacements = { userId, status, limit: pageSize, offset };
            const [rows, [{ count }]] = await Promise.all([
                this.queryRows<OrderRow>(
                    `SELECT * FROM orders.orders WHERE ${where}
                     ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset`,
                    replacements,
                ),
                this.queryRows<{ count: string }>(
                    `SELECT count(*) AS count FROM orders.orders WHERE ${where}`,
                    replacements,
                ),
            ]);
            return toPage(rows.map(toOrder), Number(count), page, pageSize);
        },

        /**
         * A manual move (cancel, ship, deliver). One conditional UPDATE decides it, so a concurrent
         * cancel and ship can't both win. Not the caller's order (for a non-admin) is a 404.
         */
        async moveOrder(
            this: OrdersThis,
            ctx: Context<unknown, RequestMeta>,
            id: string,
            to: OrderStatus,
        ): Promise<Order> {
            const ownerId = isAdmin(ctx) ? null : caller(ctx).id;
            const sources = manualSourcesOf(to);
            const cancelling = to === OrderStatus.Cancelled;
            const [moved] = sources.length
                ? await this.queryRows<OrderRow & { previous_status: OrderStatus }>(
                      `WITH previous AS (
                           SELECT id, status FROM orders.orders
                           WHERE id = :id AND status IN (:sources)
                               ${ownerId ? "AND user_id = :ownerId" : ""}
                           FOR UPDATE
                       )
                       UPDATE orders.orders AS o
                       SET status = :to, updated_at = now(),
                           release_pending = o.release_pending OR :cancelling
                       FROM previous WHERE o.id = previous.id
                       RETURNING o.*, previous.status AS previous_status`,
                      { id, sources, ownerId, to, cancelling },
                  )
                : [];
            if (!moved) {
                const current = await this.findOrder(id);
                if (!current || (ownerId && current.user_id !== ownerId)) {
                    throw new NotFoundError("Order", id);
                }
                throw new InvalidTransitionError(current.status, to);
            }
            if (cancelling && (await this.releaseStock(ctx, id))) {
                // A PENDING order's reservation may still be on its way to the inventory: the
                // settler releases once more when that can no longer happen.
                if (moved.previous_status !== OrderStatus.Pending) await this.markReleased(id);
            }
            return toOrder(moved);
        },

        /** Gives an order's stock back; false when the inventory can't be reached (retry later). */
        async releaseStock(
            this: OrdersThis,
            via: Context | ServiceBroker,
            orderId: string,
        ): Promise<boolean> {
            try {
                await via.call("products.release", { orderId }, INVENTORY_CALL);
                return true;
            } catch (err) {
                this.logger.warn(
                    `Stock of order ${orderId} not released yet:`,
                    (err as Error).message,
                );
                return false;
            }
        },

        async markReleased(this: OrdersThis, orderId: string): Promise<void> {
            await this.queryRows(
                `UPDATE orders.orders SET release_pending = false, stock_held = false
                 WHERE id = :orderId RETURNING id`,
                { orderId },
            );
        },

        /** One settler pass: PENDING orders first, then owed releases. */
        async settle(this: OrdersThis, minAgeMs: number): Promise<SettleCounts> {
            const pending = await this.settlePendingOrders(minAgeMs);
            const releases = await this.settleOwedReleases(minAgeMs);
            await this.expireIdempotencyKeys();
            return { ...pending, ...releases };
        },

        /**
         * Idempotency keys last `IDEMPOTENCY_TTL_HOURS`; then the key is free again (the order
         * stays). All of them on a settler pass, or one user's key before it is used.
         */
        async expireIdempotencyKeys(
            this: OrdersThis,
            userId?: string,
            key?: string,
        ): Promise<void> {
            const scope = userId ? "AND user_id = :userId AND idempotency_key = :key" : "";
            await this.queryRows(
                `UPDATE orders.orders SET idempotency_key = NULL, request_hash = NULL
                 WHERE idempotency_key IS NOT NULL
                   AND created_at < now() - :ttlMs * interval '1 millisecond' ${scope}
                 RETURNING id`,
                { ttlMs: readConfig().idempotencyTtlMs, userId, key },
            );
        },

        /**
         * Asks the inventory again for PENDING orders older than `minAgeMs` (younger ones may still
         * be in their own placement). Rows are claimed with SKIP LOCKED, so the settlers of several
         * nodes share the work, and a cancel waits for the inventory's answer instead of racing it.
         */
        async settlePendingOrders(
            this: OrdersThis,
            minAgeMs: number,
        ): Promise<Pick<SettleCounts, "confirmed" | "rejected" | "unsettled">> {
            return this.sql().transaction(async transaction => {
                const claimed = await this.queryRows<OrderRow>(
                    `SELECT * FROM orders.orders
                     WHERE status = :pending AND created_at < now() - :minAgeMs * interval '1 millisecond'
                     ORDER BY created_at LIMIT :batch
                     FOR UPDATE SKIP LOCKED`,
                    { pending: OrderStatus.Pending, minAgeMs, batch: SETTLE_BATCH },
                    transaction,
                );
                const outcomes = await Promise.all(
                    claimed.map(row => this.askInventory(this.broker, row)),
                );
                const counts = { confirmed: 0, rejected: 0, unsettled: 0 };
                for (const [index, outcome] of outcomes.entries()) {
                    const id = claimed[index].id;
                    if (outcome.kind === "reserved") {
                        counts.confirmed++;
                        countMetric(this.broker, AgoraMetric.OrdersSettled, {
                            outcome: "confirmed",
                        });
                        await this.confirmOrder(claimed[index], outcome.reservation, transaction);
                    } else if (outcome.kind === "refused") {
                        counts.rejected++;
                        countMetric(this.broker, AgoraMetric.OrdersSettled, {
                            outcome: "rejected",
                        });
                        // An earlier reserve of this order (its placement's) may still land:
                        // one more release after it no longer can keeps the stock conserved.
                        await this.queryRows(
                            `UPDATE orders.orders
                             SET status = :rejected, rejection_reason = :reason,
                                 release_pending = true, updated_at = now()
                             WHERE id = :id RETURNING id`,
                            { id, rejected: OrderStatus.Rejected, reason: outcome.reason },
                            transaction,
                        );
                    } else {
                        counts.unsettled++;
                    }
                }
                return counts;
            });
        },

        /** Calls `products.release` again for orders that gave their stock up and still owe one. */
        async settleOwedReleases(
            this: OrdersThis,
            minAgeMs: number,
        ): Promise<Pick<SettleCounts, "released" | "releaseFailed">> {
            return this.sql().transaction(async transaction => {
                const claimed = await this.queryRows<{ id: string }>(
                    `SELECT id FROM orders.orders
                     WHERE release_pending AND updated_at < now() - :minAgeMs * interval '1 millisecond'
                     ORDER BY updated_at LIMIT :batch
                     FOR UPDATE SKIP LOCKED`,
                    { minAgeMs, batch: SETTLE_BATCH },
                    transaction,
                );
                const released = await Promise.all(
                    claimed.map(row => this.releaseStock(this.broker, row.id)),
                );
                const ids = claimed.filter((_, index) => released[index]).map(row => row.id);
                if (ids.length) {
                    await this.queryRows(
                        `UPDATE orders.orders SET release_pending = false, stock_held = false
                         WHERE id IN (:ids) RETURNING id`,
                        { ids },
                        transaction,
                    );
                }
                return { released: ids.length, releaseFailed: claimed.length - ids.length };
            });
        },

        /** Starts a settler pass unless the previous one is still running. */
        runSettlerTick(this: OrdersThis): void {
            if (this.settling) return;
            this.settling = this.settle(this.settleAgeMs())
                .catch(err => this.logger.error("Settler pass failed:", err))
                .finally(() => {
                    this.settling = null;
                });
        },

        /**
         * The new shipping details go to every order of the user not yet shipped. An update older
         * than an order's copy (a late or repeated event) changes nothing.
         */
        async applyProfileUpdate(
            this: OrdersThis,
            event: UserProfileUpdatedEvent,
            transaction?: Transaction,
        ): Promise<number> {
            const updated = await this.queryRows(
                `UPDATE orders.orders
                 SET shipping = CAST(:shipping AS jsonb), shipping_as_of = :asOf, updated_at = now()
                 WHERE user_id = :userId AND status IN (:unshipped) AND shipping_as_of < :asOf
                 RETURNING id`,
                {
                    userId: event.userId,
                    shipping: JSON.stringify(event.shipping),
                    asOf: event.updatedAt,
                    unshipped: UNSHIPPED_STATUSES,
                },
                transaction,
            );
            return updated.length;
        },

        /** Placement waits this long for the inventory before answering 202 PENDING. */
        reserveTimeoutMs(this: OrdersThis): number {
            // Half the broker's request timeout, so that the whole placement still answers in time.
            return Math.max(1000, Math.floor((this.broker.options.requestTimeout ?? 5000) / 2));
        },

        /** The settler leaves younger PENDING orders to their own placement. */
        settleAgeMs(this: OrdersThis): number {
            return this.broker.options.requestTimeout ?? 5000;
        },
    },

    // --- Lifecycle ---
    created(this: OrdersThis) {
        this.settleTimer = null;
        this.settling = null;
    },

    started(this: OrdersThis) {
        this.settleTimer = setInterval(() => this.runSettlerTick(), readConfig().settleIntervalMs);
    },

    async stopped(this: OrdersThis) {
        if (this.settleTimer) clearInterval(this.settleTimer);
        this.settleTimer = null;
        await this.settling;
    },
};

export default OrdersService;
