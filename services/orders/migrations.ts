/**
 * The `orders` schema: one row per order, holding its own copy of what was bought and where it goes.
 */
import type { Migration } from "../../mixins/db.mixin";

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
];
