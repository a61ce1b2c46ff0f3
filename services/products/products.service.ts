/**
 * products: the catalogue and its inventory. Owns the `products` schema. Listings and single
 * products are served through the stamped cache (lib/stamped-cache.ts, lib/product-cache.ts); every
 * write that changes what they return (stock from reservations included) bumps their stamps before
 * it answers.
 */
import crypto from "node:crypto";
import type { Context, ServiceSchema } from "moleculer";
import { DataTypes, QueryTypes } from "sequelize";
import { DbMixin } from "../../mixins/db.mixin";
import { OutboxMixin } from "../../mixins/outbox.mixin";
import { readPolicy } from "../../lib/call-policy";
import { readConfig } from "../../lib/config";
import { AgoraMetric, countMetric } from "../../lib/metrics";
import {
    FieldValidationError,
    InsufficientStockError,
    NotFoundError,
    type FieldProblem,
    type ShortItem,
} from "../../lib/errors";
import {
    Channel,
    type InventoryOp,
    type Page,
    type Product,
    type ProductListParams,
    type Reservation,
    type ReserveParams,
    type ReservedLine,
} from "../../types";
import { migrations } from "./migrations";
import { pageParams, toPage } from "../../lib/pagination";
import {
    MAX_PRICE,
    PRODUCT_CACHE_GROUPS,
    ProductCacheGroup,
    getKey,
    listKey,
    productGetRules,
    productIdRule,
    productListRules,
} from "../../lib/product-cache";
import { stampedCache } from "../../lib/stamped-cache";

/** Stock and prices are PostgreSQL `integer`s; bounds keep every sum inside it. */
const MAX_STOCK = 1_000_000_000;
const MAX_QUANTITY = 1_000_000;
/** The SQLSTATE `products.reserve_stock` raises when some line is short or unknown. */
const REFUSED = "AGR01";

interface ProductRow {
    id: string;
    name: string;
    description: string | null;
    price: number;
    stock: number;
    category: string | null;
    created_at: Date;
    updated_at: Date;
}

interface ReservationRow {
    order_id: string;
    items: ReservedLine[];
    status: "held" | "released";
    created_at: Date;
}

const SORT_COLUMNS: Record<string, string> = {
    name: "lower(name)",
    price: "price",
    createdAt: "created_at",
};

const uuid = productIdRule;

// --- Settings ---

const settings = {
    currency: readConfig().currency,
    graphql: {
        type: `
            type Product {
                id: ID!
                name: String!
                description: String
                price: Int!
                currency: String!
                stock: Int!
                category: String
                createdAt: String!
                updatedAt: String!
            }
            type ProductPage {
                rows: [Product!]!
                total: Int!
                page: Int!
                pageSize: Int!
                totalPages: Int!
            }
        `,
        input: `
            input CreateProductInput {
                name: String!
                description: String
                price: Int!
                stock: Int
                category: String
            }
            input UpdateProductInput {
                name: String
                description: String
                price: Int
                category: String
            }
            input InventoryInput {
                productId: ID!
                op: InventoryOp!
                quantity: Int!
            }
        `,
        enum: `enum InventoryOp { ADD SUBTRACT SET }`,
        resolvers: { InventoryOp: { ADD: "add", SUBTRACT: "subtract", SET: "set" } },
    },
};

interface ProductsThis {
    settings: typeof settings;
    broker: import("moleculer").ServiceBroker;
    sql(): import("sequelize").Sequelize;
    clearCache(): Promise<void>;
    toProduct(row: ProductRow): Product;
    findLive(id: string): Promise<ProductRow | null>;
    listProducts(params: ProductListParams): Promise<Page<Product>>;
    reserveStock(params: ReserveParams): Promise<Reservation>;
    releaseStock(orderId: string): Promise<boolean>;
    adjustStock(id: string, op: InventoryOp, quantity: number): Promise<Product>;
}

type ProductsContext<P> = Context<P>;

const ProductsService: ServiceSchema = {
    name: "products",
    mixins: [
        DbMixin({
            schema: "products",
            migrations,
            model: {
                name: "products",
                define: {
                    id: { type: DataTypes.UUID, primaryKey: true },
                    name: DataTypes.TEXT,
                    description: DataTypes.TEXT,
                    price: DataTypes.INTEGER,
                    stock: DataTypes.INTEGER,
                    category: DataTypes.TEXT,
                    deletedAt: DataTypes.DATE,
                },
            },
        }),
        OutboxMixin({ schema: "products", publishes: [Channel.InventoryUpdated] }),
    ],
    settings,

    // --- Actions ---
    actions: {
        /** A page of live products; served from the cache. */
        list: {
            ...readPolicy,
            params: productListRules,
            graphql: {
                query: "products(search: String, category: String, minPrice: Int, maxPrice: Int, inStock: Boolean, sort: String, page: Int, pageSize: Int): ProductPage!",
            },
            async handler(this: ProductsThis, ctx: ProductsContext<ProductListParams>) {
                const text = await stampedCache(this.broker).read(
                    ProductCacheGroup.List,
                    listKey(ctx.params),
                    () => this.listProducts(ctx.params),
                );
                return JSON.parse(text) as Page<Product>;
            },
        },

        /** One live product. */
        get: {
            ...readPolicy,
            params: productGetRules,
            graphql: { query: "product(id: ID!): Product" },
            async handler(this: ProductsThis, ctx: ProductsContext<{ id: string }>) {
                const text = await stampedCache(this.broker).read(
                    ProductCacheGroup.Get,
                    getKey(ctx.params),
                    async () => {
                        const row = await this.findLive(ctx.params.id);
                        if (!row) throw new NotFoundError("Product", ctx.params.id);
                        return this.toProduct(row);
                    },
                );
                return JSON.parse(text) as Product;
            },
        },

        create: {
            auth: "admin",
            params: {
                $$strict: "remove",
                name: { type: "string", trim: true, min: 1, max: 200 },
                description: { type: "string", optional: true, nullable: true, max: 5000 },
                price: { type: "number", integer: true, min: 0, max: MAX_PRICE },
                stock: { type: "number", integer: true, min: 0, max: MAX_STOCK, optional: true },
                category: {
                    type: "string",
                    optional: true,
                    nullable: true,
                    trim: true,
                    min: 1,
                    max: 100,
                },
            },
            graphql: { mutation: "createProduct(input: CreateProductInput!): Product!" },
            async handler(
                this: ProductsThis,
                ctx: ProductsContext<Pick<Product, "name" | "price"> & Partial<Product>>,
            ) {
                const { name, description, price, stock, category } = ctx.params;
                const [row] = await this.sql().query(
                    `INSERT INTO products.products (id, name, description, price, stock, category)
                     VALUES (:id, :name, :description, :price, :stock, :category) RETURNING *`,
                    {
                        replacements: {
                            id: crypto.randomUUID(),
                            name,
                            description: description ?? null,
                            price,
                            stock: stock ?? 0,
                            category: category ?? null,
                        },
                        type: QueryTypes.SELECT,
                    },
                );
                await this.clearCache();
                (ctx.meta as { $statusCode?: number }).$statusCode = 201;
                return this.toProduct(row as ProductRow);
            },
        },

        update: {
            auth: "admin",
            params: {
                $$strict: "remove",
                id: uuid,
                name: { type: "string", optional: true, trim: true, min: 1, max: 200 },
                description: { type: "string", optional: true, nullable: true, max: 5000 },
                price: { type: "number", optional: true, integer: true, min: 0, max: MAX_PRICE },
                category: {
                    type: "string",
                    optional: true,
                    nullable: true,
                    trim: true,
                    min: 1,
                    max: 100,
                },
            },
            graphql: { mutation: "updateProduct(id: ID!, input: UpdateProductInput!): Product!" },
            async handler(
                this: ProductsThis,
                ctx: ProductsContext<Partial<Product> & { id: string }>,
            ) {
                // fastest-validator lets null through optional fields; these two can't be cleared.
                const cleared = (["name", "price"] as const).filter(
                    field => ctx.params[field] === null,
                );
                if (cleared.length) {
                    throw new FieldValidationError(
                        cleared.map(field => ({
                            field,
                            message: `The '${field}' field can't be null.`,
                            type: "required",
                        })),
                    );
                }
                const changes: Record<string, unknown> = {};
                for (const field of ["name", "description", "price", "category"] as const) {
                    if (ctx.params[field] !== undefined) changes[field] = ctx.params[field];
                }
                const assignments = Object.keys(changes).map(field => `${field} = :${field}`);
                const [row] = await this.sql().query(
                    `UPDATE products.products SET ${[...assignments, "updated_at = now()"].join(", ")}
                     WHERE id = :id AND deleted_at IS NULL RETURNING *`,
                    { replacements: { ...changes, id: ctx.params.id }, type: QueryTypes.SELECT },
                );
                if (!row) throw new NotFoundError("Product", ctx.params.id);
                await this.clearCache();
                return this.toProduct(row as ProductRow);
            },
        },

        /** Soft delete: gone from listings and orders; past orders keep their copy. */
        remove: {
            auth: "admin",
            params: { $$strict: "remove", id: uuid },
            graphql: { mutation: "deleteProduct(id: ID!): Boolean!" },
            async handler(this: ProductsThis, ctx: ProductsContext<{ id: string }>) {
                const [row] = await this.sql().query(
                    `UPDATE products.products SET deleted_at = now(), updated_at = now()
                     WHERE id = :id AND deleted_at IS NULL RETURNING id`,
                    { replacements: { id: ctx.params.id }, type: QueryTypes.SELECT },
                );
                if (!row) throw new NotFoundError("Product", ctx.params.id);
                await this.clearCache();
                (ctx.meta as { $statusCode?: number }).$statusCode = 204;
                return true;
            },
        },

        /** Admin stock changes; stock never goes below 0. */
        adjustInventory: {
            auth: "admin",
            params: {
                $$strict: "remove",
                productId: uuid,
                op: { type: "enum", values: ["add", "subtract", "set"] },
                quantity: { type: "number", integer: true, min: 0, max: MAX_QUANTITY },
            },
            graphql: { mutation: "updateInventory(input: InventoryInput!): Product!" },
            handler(
                this: ProductsThis,
                ctx: ProductsContext<{ productId: string; op: InventoryOp; quantity: number }>,
            ) {
                return this.adjustStock(ctx.params.productId, ctx.params.op, ctx.params.quantity);
            },
        },

        /** Internal: products by id, in the order asked, null for unknown or deleted ones. */
        resolve: {
            ...readPolicy,
            visibility: "public",
            params: { $$strict: "remove", id: { type: "array", items: uuid, max: 100 } },
            async handler(this: ProductsThis, ctx: ProductsContext<{ id: string[] }>) {
                const rows = ctx.params.id.length
                    ? await this.sql().query<ProductRow>(
                          `SELECT * FROM products.products WHERE id IN (:ids) AND deleted_at IS NULL`,
                          { replacements: { ids: ctx.params.id }, type: QueryTypes.SELECT },
                      )
                    : [];
                const byId = new Map(rows.map(row => [row.id, this.toProduct(row)]));
                return ctx.params.id.map(id => byId.get(id) ?? null);
            },
        },

        /** Internal: take the stock of every line of an order, all or nothing; idempotent by order. */
        reserve: {
            visibility: "public",
            params: {
                $$strict: "remove",
                orderId: { type: "uuid" },
                items: {
                    type: "array",
                    min: 1,
                    max: 100,
                    items: {
                        type: "object",
                        strict: "remove",
                        props: {
                            productId: uuid,
                            quantity: { type: "number", integer: true, min: 1, max: MAX_QUANTITY },
                        },
                    },
                },
            },
            handler(this: ProductsThis, ctx: ProductsContext<ReserveParams>) {
                return this.reserveStock(ctx.params);
            },
        },

        /** Internal: put an order's stock back; idempotent, a no-op for an unknown order. */
        release: {
            visibility: "public",
            params: { $$strict: "remove", orderId: { type: "uuid" } },
            async handler(this: ProductsThis, ctx: ProductsContext<{ orderId: string }>) {
                const released = await this.releaseStock(ctx.params.orderId);
                return { orderId: ctx.params.orderId, released };
            },
        },
    },

    // --- Methods ---
    methods: {
        /**
         * Every cached read of products is stale once this answers: the listing and product stamps
         * are replaced (lib/stamped-cache.ts). Called by every write before it answers.
         */
        async clearCache(this: ProductsThis): Promise<void> {
            await stampedCache(this.broker).bump(PRODUCT_CACHE_GROUPS);
        },

        toProduct(this: ProductsThis, row: ProductRow): Product {
            return {
                id: row.id,
                name: row.name,
                description: row.description,
                price: row.price,
                currency: this.settings.currency,
                stock: row.stock,
                category: row.category,
                createdAt: new Date(row.created_at).toISOString(),
                updatedAt: new Date(row.updated_at).toISOString(),
            };
        },

        async findLive(this: ProductsThis, id: string) {
            const [row] = await this.sql().query<ProductRow>(
                `SELECT * FROM products.products WHERE id = :id AND deleted_at IS NULL`,
                { replacements: { id }, type: QueryTypes.SELECT },
            );
            return row ?? null;
        },

        async listProducts(this: ProductsThis, params: ProductListParams): Promise<Page<Product>> {
            const { page, pageSize, offset } = pageParams(params);
            const where = ["deleted_at IS NULL"];
            const replacements: Record<string, unknown> = { limit: pageSize, offset };
            if (params.search) {
                // ILIKE wildcards in the search text are matched literally.
                replacements.search = `%${params.search.replace(/[\\%_]/g, c => `\\${c}`)}%`;
                where.push("(name ILIKE :search OR description ILIKE :search)");
            }
            if (params.category) {
                replacements.category = params.category;
                where.push("category = :category");
            }
            if (params.minPrice !== undefined) {
                replacements.minPrice = params.minPrice;
                where.push("price >= :minPrice");
            }
            if (params.maxPrice !== undefined) {
                replacements.maxPrice = params.maxPrice;
                where.push("price <= :maxPrice");
            }
            if (params.inStock === true) where.push("stock > 0");
            if (params.inStock === false) where.push("stock = 0");
            const sort = params.sort ?? "-createdAt";
            const direction = sort.startsWith("-") ? "DESC" : "ASC";
            const column = SORT_COLUMNS[sort.replace(/^-/, "")];
            const rows = await this.sql().query<ProductRow & { total: string }>(
                `SELECT *, count(*) OVER () AS total FROM products.products
                 WHERE ${where.join(" AND ")}
                 ORDER BY ${column} ${direction}, id ${direction}
                 LIMIT :limit OFFSET :offset`,
                { replacements, type: QueryTypes.SELECT },
            );
            let total = rows.length ? Number(rows[0].total) : 0;
            if (!rows.length && offset > 0) {
                // Past the last page the window count is empty: count separately.
                const [count] = await this.sql().query<{ total: string }>(
                    `SELECT count(*) AS total FROM products.products WHERE ${where.join(" AND ")}`,
                    { replacements, type: QueryTypes.SELECT },
                );
                total = Number(count.total);
            }
            return toPage(
                rows.map(row => this.toProduct(row)),
                total,
                page,
                pageSize,
            );
        },

        async reserveStock(this: ProductsThis, params: ReserveParams): Promise<Reservation> {
            let reservation: ReservationRow;
            try {
                // One statement (products.reserve_stock, migration 003): see there why.
                [reservation] = await this.sql().query<ReservationRow>(
                    `SELECT * FROM products.reserve_stock(:orderId, CAST(:lines AS jsonb))`,
                    {
                        replacements: {
                            orderId: params.orderId,
                            lines: JSON.stringify(params.items),
                        },
                        type: QueryTypes.SELECT,
                    },
                );
            } catch (err) {
                const refusal = refusalOf(err, params);
                if (refusal instanceof InsufficientStockError) {
                    countMetric(this.broker, AgoraMetric.ReservationShortfalls);
                }
                throw refusal ?? err;
            }
            await this.clearCache();
            return toReservation(reservation);
        },

        async releaseStock(this: ProductsThis, orderId: string): Promise<boolean> {
            const released = await this.sql().transaction(async transaction => {
                const [row] = await this.sql().query<ReservationRow>(
                    `UPDATE products.reservations SET status = 'released', released_at = now()
                     WHERE order_id = :orderId AND status = 'held' RETURNING *`,
                    { replacements: { orderId }, type: QueryTypes.SELECT, transaction },
                );
                if (!row) return false;
                const items = [...row.items].sort((a, b) => a.productId.localeCompare(b.productId));
                for (const item of items) {
                    // Deleted products get their stock back too: the books must balance.
                    await this.sql().query(
                        `UPDATE products.products SET stock = stock + :quantity, updated_at = now() WHERE id = :id`,
                        {
                            replacements: { id: item.productId, quantity: item.quantity },
                            transaction,
                        },
                    );
                }
                return true;
            });
            if (released) await this.clearCache();
            return released;
        },

        async adjustStock(this: ProductsThis, id: string, op: InventoryOp, quantity: number) {
            const change = {
                add: { set: "stock + :quantity", guard: "stock <= :maxStock - :quantity" },
                subtract: { set: "stock - :quantity", guard: "stock >= :quantity" },
                set: { set: ":quantity", guard: "TRUE" },
            }[op];
            const [row] = await this.sql().query<ProductRow>(
                `UPDATE products.products SET stock = ${change.set}, updated_at = now()
                 WHERE id = :id AND deleted_at IS NULL AND ${change.guard} RETURNING *`,
                {
                    replacements: { id, quantity, maxStock: MAX_STOCK },
                    type: QueryTypes.SELECT,
                },
            );
            if (!row) {
                const current = await this.findLive(id);
                if (!current) throw new NotFoundError("Product", id);
                if (op === "subtract") {
                    throw new InsufficientStockError([
                        { productId: id, requested: quantity, available: current.stock },
                    ]);
                }
                throw new FieldValidationError([
                    {
                        field: "quantity",
                        message: `Stock can't exceed ${MAX_STOCK}`,
                        type: "numberMax",
                    },
                ]);
            }
            await this.clearCache();
            return this.toProduct(row);
        },
    },
};

/** What `products.reserve_stock` raises (SQLSTATE AGR01) when it refuses an order. */
interface Refusal {
    short: ShortItem[];
    unknown: string[];
}

/**
 * The typed error for a refused reservation: 422 naming each unknown or deleted product (by its
 * line in the request), else 409 naming each short line; null for any other failure.
 */
function refusalOf(err: unknown, params: ReserveParams): Error | null {
    const cause = (err as { original?: { code?: string; detail?: string } }).original;
    if (cause?.code !== REFUSED || !cause.detail) return null;
    const refusal = JSON.parse(cause.detail) as Refusal;
    if (refusal.unknown.length) {
        const positions = new Map(
            params.items.map((item, index) => [item.productId.toLowerCase(), index]),
        );
        return new FieldValidationError(
            refusal.unknown.map((id): FieldProblem => ({
                field: `items[${positions.get(id)}].productId`,
                message: "No such product",
                type: "notFound",
                actual: id,
            })),
        );
    }
    return new InsufficientStockError(refusal.short);
}

function toReservation(row: ReservationRow): Reservation {
    return {
        orderId: row.order_id,
        items: row.items,
        status: row.status,
        createdAt: new Date(row.created_at).toISOString(),
    };
}

export default ProductsService;
