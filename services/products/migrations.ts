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
    {
        // A reservation is one statement: one round trip, one transaction, and the row lock of each
        // product is held only from its UPDATE to the COMMIT of that statement (a hot product's
        // buyers queue on that lock). Any shortfall or unknown product raises AGR01 with what is
        // wrong in DETAIL, which rolls back every line and the reservation row.
        name: "003-reserve-in-one-statement",
        up: [
            `CREATE FUNCTION products.reserve_stock(p_order_id uuid, p_lines jsonb)
             RETURNS products.reservations LANGUAGE plpgsql AS $$
             DECLARE
                 line record;
                 taken record;
                 available integer;
                 reserved jsonb := '[]';
                 short jsonb := '[]';
                 unknown jsonb := '[]';
                 result products.reservations;
             BEGIN
                 -- The unique order id makes a repeat wait for the first attempt, then see it.
                 INSERT INTO products.reservations (order_id, items, status)
                 VALUES (p_order_id, '[]', 'held') ON CONFLICT (order_id) DO NOTHING;
                 IF NOT FOUND THEN
                     SELECT * INTO result FROM products.reservations WHERE order_id = p_order_id;
                     RETURN result;
                 END IF;
                 -- In id order, so that two orders over the same products never deadlock. The
                 -- name and price come from the same row update: the order pays what was reserved.
                 FOR line IN
                     SELECT l."productId"::uuid AS id, l.quantity
                     FROM jsonb_to_recordset(p_lines) AS l("productId" text, quantity integer)
                     ORDER BY 1
                 LOOP
                     UPDATE products.products SET stock = stock - line.quantity, updated_at = now()
                     WHERE id = line.id AND stock >= line.quantity AND deleted_at IS NULL
                     RETURNING name, price INTO taken;
                     IF FOUND THEN
                         reserved := reserved || jsonb_build_object('productId', line.id,
                             'quantity', line.quantity, 'name', taken.name, 'unitPrice', taken.price);
                         CONTINUE;
                     END IF;
                     SELECT stock INTO available FROM products.products
                     WHERE id = line.id AND deleted_at IS NULL;
                     IF FOUND THEN
                         short := short || jsonb_build_object('productId', line.id,
                             'requested', line.quantity, 'available', available);
                     ELSE
                         unknown := unknown || to_jsonb(line.id);
                     END IF;
                 END LOOP;
                 IF short <> '[]' OR unknown <> '[]' THEN
                     RAISE EXCEPTION 'reservation refused' USING ERRCODE = 'AGR01',
                         DETAIL = jsonb_build_object('short', short, 'unknown', unknown)::text;
                 END IF;
                 UPDATE products.reservations SET items = reserved WHERE order_id = p_order_id
                 RETURNING * INTO result;
                 RETURN result;
             END $$`,
        ],
    },
];
