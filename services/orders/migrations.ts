/**
 * The `orders` schema: one row per order, holding its own copy of what was bought and where it goes.
 */
import type { Migration } from "../../mixins/db.mixin";
import { outboxMigration } from "../../mixins/outbox.mixin";

export const migrations: Migration[] = [
    {
        name: "001-orders",
        up: [
            `CREATE TABLE orders.orders (
                id uuid PRIMARY KEY,
                user_id uuid NOT NULL,
                status text NOT NULL CHECK (status IN
                    ('PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED')),
                items jsonb NOT NULL,
                total bigint NOT NULL CHECK (total >= 0),
                currency text NOT NULL,
                shipping jsonb NOT NULL,
                -- The user's profile time the shipping copy is from: an older update never wins.
                shipping_as_of timestamptz NOT NULL,
                rejection_reason text,
                idempotency_key text,
                -- Hash of the normalized request, to tell a retry from a different order.
                request_hash text,
                -- A reservation may exist for this order; false once it is known released.
                stock_held boolean NOT NULL DEFAULT true,
                -- The order gave its stock up and a products.release call is still owed.
                release_pending boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (user_id, idempotency_key)
            )`,
            `CREATE INDEX orders_user_created_idx ON orders.orders (user_id, created_at DESC, id DESC)`,
            `CREATE INDEX orders_created_idx ON orders.orders (created_at DESC, id DESC)`,
            `CREATE INDEX orders_status_idx ON orders.orders (status)`,
            // The settler's second queue stays tiny: only orders that still owe a release.
            `CREATE INDEX orders_release_pending_idx ON orders.orders (updated_at) WHERE release_pending`,
        ],
    },
    outboxMigration("orders"),
    {
        // Every lifecycle step commits with its \`order.*\` event, whichever code path made it. A
        // PENDING order deleted because its stock was short was placed, then rejected.
        name: "002-order-lifecycle-events",
        up: [
            `CREATE FUNCTION orders.lifecycle_event() RETURNS trigger LANGUAGE plpgsql AS $$
             DECLARE
                 target orders.orders;
                 channel text;
                 status text;
                 previous text;
                 reason text;
             BEGIN
                 IF TG_OP = 'INSERT' THEN
                     target := NEW; channel := 'order.placed'; status := NEW.status;
                     reason := NEW.rejection_reason;
                 ELSIF TG_OP = 'DELETE' THEN
                     target := OLD; channel := 'order.rejected'; status := 'REJECTED';
                     previous := OLD.status; reason := 'Not enough stock';
                 ELSE
                     target := NEW; status := NEW.status; previous := OLD.status;
                     reason := NEW.rejection_reason;
                     channel := CASE NEW.status
                         WHEN 'CONFIRMED' THEN 'order.confirmed'
                         WHEN 'REJECTED' THEN 'order.rejected'
                         WHEN 'CANCELLED' THEN 'order.cancelled'
                         ELSE 'order.statusChanged' END;
                 END IF;
                 PERFORM orders.enqueue_event(channel, jsonb_build_object(
                     'orderId', target.id,
                     'userId', target.user_id,
                     'status', status,
                     'previousStatus', previous,
                     'total', target.total,
                     'currency', target.currency,
                     'items', (SELECT jsonb_agg(jsonb_build_object(
                                   'productId', line->>'productId',
                                   'quantity', (line->>'quantity')::int))
                               FROM jsonb_array_elements(target.items) AS line),
                     'rejectionReason', reason,
                     'updatedAt', orders.iso(clock_timestamp())));
                 RETURN NULL;
             END $$`,
            `CREATE TRIGGER orders_placed AFTER INSERT ON orders.orders
             FOR EACH ROW EXECUTE FUNCTION orders.lifecycle_event()`,
            `CREATE TRIGGER orders_status_changed AFTER UPDATE OF status ON orders.orders
             FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
             EXECUTE FUNCTION orders.lifecycle_event()`,
            `CREATE TRIGGER orders_discarded AFTER DELETE ON orders.orders
             FOR EACH ROW WHEN (OLD.status = 'PENDING')
             EXECUTE FUNCTION orders.lifecycle_event()`,
        ],
    },
    {
        // An order is priced by the reservation that takes its stock, so one taken while the
        // inventory is unreachable waits PENDING with no total. A refused order's deletion carries
        // the reason it was refused (not enough stock, or an unknown product).
        name: "003-priced-by-reservation",
        up: [
            `ALTER TABLE orders.orders ALTER COLUMN total DROP NOT NULL`,
            `ALTER TABLE orders.orders ADD CONSTRAINT orders_priced_once_reserved
                 CHECK (total IS NOT NULL OR status IN ('PENDING', 'REJECTED', 'CANCELLED'))`,
            `CREATE OR REPLACE FUNCTION orders.lifecycle_event() RETURNS trigger LANGUAGE plpgsql AS $$
             DECLARE
                 target orders.orders;
                 channel text;
                 status text;
                 previous text;
                 reason text;
             BEGIN
                 IF TG_OP = 'INSERT' THEN
                     target := NEW; channel := 'order.placed'; status := NEW.status;
                     reason := NEW.rejection_reason;
                 ELSIF TG_OP = 'DELETE' THEN
                     target := OLD; channel := 'order.rejected'; status := 'REJECTED';
                     previous := OLD.status;
                     reason := COALESCE(OLD.rejection_reason, 'Refused by the inventory');
                 ELSE
                     target := NEW; status := NEW.status; previous := OLD.status;
                     reason := NEW.rejection_reason;
                     channel := CASE NEW.status
                         WHEN 'CONFIRMED' THEN 'order.confirmed'
                         WHEN 'REJECTED' THEN 'order.rejected'
                         WHEN 'CANCELLED' THEN 'order.cancelled'
                         ELSE 'order.statusChanged' END;
                 END IF;
                 PERFORM orders.enqueue_event(channel, jsonb_build_object(
                     'orderId', target.id,
                     'userId', target.user_id,
                     'status', status,
                     'previousStatus', previous,
                     'total', target.total,
                     'currency', target.currency,
                     'items', (SELECT jsonb_agg(jsonb_build_object(
                                   'productId', line->>'productId',
                                   'quantity', (line->>'quantity')::int))
                               FROM jsonb_array_elements(target.items) AS line),
                     'rejectionReason', reason,
                     'updatedAt', orders.iso(clock_timestamp())));
                 RETURN NULL;
             END $$`,
        ],
    },
];
