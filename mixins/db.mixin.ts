/**
 * DbMixin: a service's own PostgreSQL schema through moleculer-db and Sequelize.
 *
 * - Each service owns one schema (`users`, `products`, `orders`) and nothing else reads it.
 * - Tables come from umzug migrations, run at start under a PostgreSQL advisory lock so that N
 *   replicas starting together don't race. Sequelize's `sync()` is never used.
 * - moleculer-db's generic actions (`find`, `insert`, …) are switched off: a service publishes
 *   only the actions it declares itself.
 */
import { Cachers, type ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import SequelizeAdapter from "moleculer-db-adapter-sequelize";
import { QueryTypes, Sequelize, type ModelAttributes, type ModelOptions } from "sequelize";
import { SequelizeStorage, Umzug } from "umzug";
import { readConfig } from "../lib/config";

/** One schema change. `up` is SQL run in order inside one transaction. */
export interface Migration {
    name: string;
    up: string[];
}

export interface DbMixinOptions {
    /** PostgreSQL schema the service owns. */
    schema: string;
    /** The main entity, for moleculer-db (other tables are reached through SQL). */
    model: { name: string; define: ModelAttributes; options?: ModelOptions };
    migrations: Migration[];
}

export function createSequelize(databaseUrl: string): Sequelize {
    return new Sequelize(databaseUrl, {
        dialect: "postgres",
        logging: false,
        // Enough for bursts of orders; each service on a node has its own pool.
        pool: { max: 10, min: 0, idle: 10_000, acquire: 10_000 },
        define: { underscored: true, timestamps: true },
    });
}

/**
 * moleculer-db's Sequelize adapter, connected to `DATABASE_URL` when the service starts (not when
 * the module is imported), with `noSync` so that the adapter never calls `sync()`.
 */
class MigratedSequelizeAdapter extends SequelizeAdapter {
    declare opts: unknown[];
    declare db: Sequelize;

    constructor() {
        super({});
    }

    override connect(): Promise<void> {
        const databaseUrl = readConfig().databaseUrl;
        if (!databaseUrl) return Promise.reject(new Error("DATABASE_URL is not set"));
        // moleculer-db retries `connect` after a failure: close the pool of the failed attempt.
        const previous = this.db;
        if (previous) void previous.close().catch(() => undefined);
        this.opts = [createSequelize(databaseUrl), undefined, undefined, { noSync: true }];
        return (SequelizeAdapter.prototype.connect as () => Promise<void>).call(this);
    }
}

/** Runs the pending migrations of one schema, one node at a time across the cluster. */
export async function migrate(
    sequelize: Sequelize,
    schema: string,
    migrations: Migration[],
): Promise<string[]> {
    return sequelize.transaction(async lock => {
        // Held by this transaction's connection until it ends; umzug works on other connections.
        await sequelize.query("SELECT pg_advisory_xact_lock(hashtext(:key))", {
            replacements: { key: `agora:migrate:${schema}` },
            transaction: lock,
            type: QueryTypes.SELECT,
        });
        await sequelize.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
        const umzug = new Umzug({
            context: sequelize,
            storage: new SequelizeStorage({ sequelize, schema, tableName: "migrations" }),
            logger: undefined,
            migrations: migrations.map(migration => ({
                name: migration.name,
                up: ({ context }: { context: Sequelize }) =>
                    context.transaction(async transaction => {
                        for (const statement of migration.up) {
                            await context.query(statement, { transaction });
                        }
                    }),
            })),
        });
        const applied = await umzug.up();
        return applied.map(m => m.name);
    });
}

export function DbMixin(options: DbMixinOptions): Partial<ServiceSchema> {
    return {
        mixins: [DbService],
        adapter: new MigratedSequelizeAdapter(),
        model: {
            name: options.model.name,
            define: options.model.define,
            options: {
                schema: options.schema,
                tableName: options.model.name,
                ...options.model.options,
            },
        },
        settings: { idField: "id" },
        actions: {
            find: false,
            count: false,
            list: false,
            create: false,
            insert: false,
            get: false,
            update: false,
            remove: false,
        },
        methods: {
            /** The service's Sequelize instance, for transactions and SQL. */
            sql(): Sequelize {
                return this.adapter.db as Sequelize;
            },
            /**
             * Readiness: migrations are done and the database answers now. Until then it says
             * why not: still connecting (the adapter retries every second), or migrating.
             */
            async checkDatabase(): Promise<boolean> {
                const db = this.adapter.db as Sequelize | undefined;
                if (!db) throw new Error("connecting");
                await db.query("SELECT 1");
                return this.migrated === true;
            },
        },
        created() {
            // One shared Redis needs one clean; memory cachers on several nodes need every node told.
            this.settings.cacheCleanEventType =
                this.broker.cacher instanceof Cachers.Redis ? "emit" : "broadcast";
        },
        async started() {
            const applied = await migrate(this.adapter.db, options.schema, options.migrations);
            if (applied.length) this.logger.info(`Migrated ${options.schema}:`, applied.join(", "));
            this.migrated = true;
        },
    } as Partial<ServiceSchema>;
}
