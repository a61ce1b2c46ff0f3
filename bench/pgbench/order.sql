-- The PostgreSQL statements of one confirmed order (docs/write-path.md), for pgbench: simple
-- protocol with inlined values, as Sequelize sends them (`-M simple`), against named prepared
-- statements (`-M prepared`). Users and products are picked by offset in a subquery, the order id
-- is derived from a random integer, so both modes run exactly the same SQL. Run it on a copy of a
-- bench database (bench/README.md "Prepared statements").
\set n random(0, 199)
\set u random(0, 63)
\set q random(1, 3)
\set o random(1, 9000000000000000)
SELECT * FROM users.users WHERE id = (SELECT id FROM users.users ORDER BY id OFFSET :u LIMIT 1);
INSERT INTO orders.orders (id, user_id, status, items, total, currency, shipping, shipping_as_of, idempotency_key, request_hash) VALUES (md5(:o::text)::uuid, (SELECT id FROM users.users ORDER BY id OFFSET :u LIMIT 1), 'PENDING', CAST('[]' AS jsonb), NULL, 'USD', CAST('{"name":"x"}' AS jsonb), now(), NULL, 'h') ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING *;
SELECT * FROM products.reserve_stock(md5(:o::text)::uuid, jsonb_build_array(jsonb_build_object('productId', (SELECT id FROM products.products ORDER BY id OFFSET :n LIMIT 1), 'quantity', (:q)::int)));
UPDATE orders.orders SET status = 'CONFIRMED', items = CAST('[]' AS jsonb), total = 100, updated_at = now() WHERE id = md5(:o::text)::uuid AND status = 'PENDING' RETURNING *;
