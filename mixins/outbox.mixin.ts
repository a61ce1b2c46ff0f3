/**
 * OutboxMixin: durable business events through a transactional outbox.
 *
 * - A change and its event commit together: the service's tables have triggers (in its own
 *   migrations) that insert the event into `<schema>.outbox` in the same transaction.
 * - A relay on every node of the service sends unsent rows with `broker.sendToChannel`
 *   (@moleculer/channels: NATS JetStream in a cluster) and marks them sent. Rows are claimed with
 *   `FOR UPDATE SKIP LOCKED`, so replicas share the work; a crash between send and mark sends a row
 *   again, which consumers absorb (at-least-once delivery, exactly-once effect).
 * - Consumers wrap their effect in `consumeOnce`: the event id goes into
 *   `<schema>.processed_events` in the same transaction as the effect, so a redelivery does nothing.
 * - Its lag is measured: `outboxBacklog` (an action too, for the REPL) and the gauges
 *   `agora_outbox_unsent_events` and `agora_outbox_oldest_unsent_age_seconds`.
 */
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import { readConfig } from "../lib/config";
import type { Migration } from "./db.mixin";
import type { ChannelEvent, OutboxBacklog } from "../types";
import { AgoraMetric, setMetric } from "../lib/metrics";
import { SampledMetrics } from "./metrics.mixin";

/** How many events the relay sends per pass (it runs every `OUTBOX_RELAY_INTERVAL_MS`). */
const RELAY_BATCH = 100;
/** nats.js' error code when nobody (no stream) takes a JetStream publish. */
const NO_RESPONDERS = "503";

/** The outbox, the consumer's dedupe table and the trigger helper, for one schema. */
export function outboxMigration(schema: string): Migration {
    return {
        name: "outbox-and-processed-events",
        up: [
            `CREATE TABLE "${schema}".outbox (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                channel text NOT NULL,
                payload jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                sent_at timestamptz
            )`,
            `CREATE INDEX outbox_unsent_idx ON "${schema}".outbox (created_at) WHERE sent_at IS NULL`,
            `CREATE TABLE "${schema}".processed_events (
                event_id uuid PRIMARY KEY,
                channel text NOT NULL,
                processed_at timestamptz NOT NULL DEFAULT now()
            )`,
            // Triggers call this to add an event to the transaction that made the change.
            `CREATE FUNCTION "${schema}".enqueue_event(channel text, payload jsonb) RETURNS void
             LANGUAGE sql AS $$ INSERT INTO "${schema}".outbox (channel, payload) VALUES (channel, payload) $$`,
            // ISO 8601 in UTC with milliseconds, as every JSON answer has them.
            `CREATE FUNCTION "${schema}".iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
             $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$`,
        ],
    };
}

interface OutboxRow {
    id: string;
    channel: string;
    payload: Record<string, unknown>;
    created_at: Date;
}

interface OutboxThis {
    broker: ServiceBroker & {
        sendToChannel(name: string, payload: unknown): Promise<void>;
        channelAdapter?: {
            connected: boolean;
            createStream?(name: string, subjects: string[], config: object): Promise<unknown>;
            addPrefixTopic(name: string): string;
        };
    };
    logger: import("moleculer").LoggerInstance;
    sql(): Sequelize;
    relayTimer: NodeJS.Timeout | null;
    relaying: Promise<number> | null;
    streamsReady: boolean;
    name: string;
    relayOutbox(): Promise<number>;
    outboxBacklog(): Promise<OutboxBacklog>;
    sendOutboxBatch(): Promise<number>;
    ensureStreams(): Promise<boolean>;
}

export interface OutboxOptions {
    /** The service's schema, where its outbox lives. */
    schema: string;
    /** Channels the service publishes; their streams are made at start so no event waits for a consumer. */
    publishes: string[];
}

export function OutboxMixin(options: OutboxOptions): Partial<ServiceSchema> {
    const { schema } = options;
    return {
        mixins: [
            SampledMetrics(async function (this: OutboxThis) {
                const backlog = await this.outboxBacklog();
                const labels = { service: this.name };
                setMetric(this.broker, AgoraMetric.OutboxUnsent, backlog.unsent, labels);
                setMetric(
                    this.broker,
                    AgoraMetric.OutboxOldestAge,
                    backlog.oldestAgeSeconds,
                    labels,
                );
            } as (this: unknown) => Promise<void>),
        ],
        actions: {
            /** What the relay still has to send (internal: the REPL's `outbox` command asks it). */
            outboxBacklog: {
                visibility: "public",
                handler(this: OutboxThis): Promise<OutboxBacklog> {
                    return this.outboxBacklog();
                },
            },
        },
        methods: {
            /** Unsent events and the age of the oldest, through the partial index on unsent rows. */
            async outboxBacklog(this: OutboxThis): Promise<OutboxBacklog> {
                const [row] = await this.sql().query<{ unsent: string; age: number | null }>(
                    `SELECT count(*) AS unsent,
                            extract(epoch FROM clock_timestamp() - min(created_at))::float8 AS age
                     FROM "${schema}".outbox WHERE sent_at IS NULL`,
                    { type: QueryTypes.SELECT },
                );
                return {
                    service: this.name,
                    unsent: Number(row.unsent),
                    oldestAgeSeconds: Math.max(0, row.age ?? 0),
                };
            },

            /** One relay pass at a time per node; returns how many events were sent. */
            relayOutbox(this: OutboxThis): Promise<number> {
                if (!this.relaying) {
                    this.relaying = this.sendOutboxBatch().finally(() => (this.relaying = null));
                }
                return this.relaying;
            },

            /**
             * JetStream refuses events that no stream takes: make ours (bounded, from the broker's
             * channel options) before the first send, whether or not anyone consumes them yet.
             */
            async ensureStreams(this: OutboxThis): Promise<boolean> {
                const adapter = this.broker.channelAdapter;
                if (this.streamsReady || !adapter?.createStream) return true;
                if (!adapter.connected) return false;
                for (const channel of options.publishes) {
                    const subject = adapter.addPrefixTopic(channel);
                    await adapter.createStream(subject.split(".").join("_"), [subject], {});
                }
                this.streamsReady = true;
                return true;
            },

            async sendOutboxBatch(this: OutboxThis): Promise<number> {
                if (!(await this.ensureStreams())) return 0;
                let sent = 0;
                await this.sql().transaction(async transaction => {
                    const rows = await this.sql().query<OutboxRow>(
                        `SELECT id, channel, payload, created_at FROM "${schema}".outbox
                         WHERE sent_at IS NULL ORDER BY created_at, id LIMIT :batch
                         FOR UPDATE SKIP LOCKED`,
                        {
                            replacements: { batch: RELAY_BATCH },
                            type: QueryTypes.SELECT,
                            transaction,
                        },
                    );
                    const delivered: string[] = [];
                    try {
                        for (const row of rows) {
                            const event: ChannelEvent = {
                                eventId: row.id,
                                channel: row.channel,
                                occurredAt: new Date(row.created_at).toISOString(),
                                data: row.payload,
                            };
                            await this.broker.sendToChannel(row.channel, event).catch(error => {
                                // No stream takes the subject (JetStream answers "no responders",
                                // 503): it is gone (a NATS that lost its store) or was never made
                                // (JetStream refused it). Make the streams again next pass.
                                if ((error as { code?: string }).code === NO_RESPONDERS) {
                                    this.streamsReady = false;
                                }
                                throw error;
                            });
                            delivered.push(row.id);
                        }
                    } finally {
                        // What was sent before a failure is marked; the rest waits for the next pass.
                        if (delivered.length) {
                            await this.sql().query(
                                `UPDATE "${schema}".outbox SET sent_at = now() WHERE id IN (:ids)`,
                                { replacements: { ids: delivered }, transaction },
                            );
                        }
                        sent = delivered.length;
                    }
                });
                return sent;
            },

            /**
             * Runs `effect` once per event id: the id and the effect commit together, and a
             * redelivered event finds its id taken and does nothing. Returns whether it ran.
             */
            async consumeOnce(
                this: OutboxThis,
                event: ChannelEvent,
                effect: (transaction: Transaction) => Promise<void>,
            ): Promise<boolean> {
                return this.sql().transaction(async transaction => {
                    const [fresh] = await this.sql().query(
                        `INSERT INTO "${schema}".processed_events (event_id, channel)
                         VALUES (:id, :channel) ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
                        {
                            replacements: { id: event.eventId, channel: event.channel },
                            type: QueryTypes.SELECT,
                            transaction,
                        },
                    );
                    if (!fresh) return false;
                    await effect(transaction);
                    return true;
                });
            },
        },

        started(this: OutboxThis) {
            this.streamsReady = false;
            this.relayTimer = setInterval(() => {
                this.relayOutbox().catch(error =>
                    this.logger.warn(
                        "Outbox relay pass failed; retrying:",
                        (error as Error).message,
                    ),
                );
            }, readConfig().outboxRelayIntervalMs);
        },

        async stopped(this: OutboxThis) {
            if (this.relayTimer) clearInterval(this.relayTimer);
            this.relayTimer = null;
            // Let a pass in flight finish marking what it sent.
            await this.relaying?.catch(() => undefined);
        },
    } as unknown as Partial<ServiceSchema>;
}
