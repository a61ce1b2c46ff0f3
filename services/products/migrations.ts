/**
 * The `products` schema: the catalogue and the reservations that hold stock for orders.
 */
import type { Migration } from "../../mixins/db.mixin";
import { outboxMigration } from "../../mixins/outbox.mixin";

export const migrations: Migration[] = [
    {
        name: "001-products-and-reservations",
        up: [
            `CREATE TABLE products.products (
                id uuid PRIMARY KEY,
                name text NOT NULL,
                description text,
                price integer NOT NULL CHECK (price >= 0),
                stock integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
                category text,
                deleted_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            )`,
            // Listings only ever read live products.
            `CREATE INDEX products_live_created_idx ON products.products (created_at DESC, id) WHERE deleted_at IS NULL`,
            `CREATE INDEX products_live_price_idx ON products.products (price, id) WHERE deleted_at IS NULL`,
            `CREATE INDEX products_live_name_idx ON products.products (lower(name), id) WHERE deleted_at IS NULL`,
            `CREATE INDEX products_live_category_idx ON products.products (category) WHERE deleted_at IS NULL`,
            // One row per order: the unique key is what makes `reserve` idempotent.
            `CREATE TABLE products.reservations (
                order_id uuid PRIMARY KEY,
                items jsonb NOT NULL,
                status text NOT NULL CHECK (status IN ('held', 'released')),
                created_at timestamptz NOT NULL DEFAULT now(),
                released_at timestamptz
            )`,
        ],
    },
    outboxMigration("products"),
    {
        // Every stock change (reservation, release, admin) commits with its \`inventory.updated\`.
        name: "002-inventory-updated-events",
        up: [
            `CREATE FUNCTION products.inventory_updated() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM products.enqueue_event('inventory.updated', jsonb_build_object(
                     'productId', NEW.id,
                     'stock', NEW.stock,
                     'previousStock', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.stock END,
                     'updatedAt', products.iso(NEW.updated_at)));
                 RETURN NULL;
             END $$`,
            `CREATE TRIGGER products_inventory_created AFTER INSERT ON products.products
             FOR EACH ROW EXECUTE FUNCTION products.inventory_updated()`,
            `CREATE TRIGGER products_inventory_updated AFTER UPDATE OF stock ON products.products
             FOR EACH ROW WHEN (OLD.stock IS DISTINCT FROM NEW.stock)
             EXECUTE FUNCTION products.inventory_updated()`,
        ],
    },
];
