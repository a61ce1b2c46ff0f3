/**
 * Whole GraphQL answers to catalogue queries, cached by the gateway (services/api/graphql-catalog.ts)
 * in the real Redis: a repeated query is answered without running a resolver, byte for byte as
 * Apollo answered it; a write that has answered (price, stock, an order's reservation, a delete) is
 * in the very next answer; an answer computed from rows read before a write is not kept; and only
 * catalogue queries without errors are kept (never `me`, a mixed query, or an error).
 */
import crypto from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { createTestBroker, gatewayUrl } from "../support/broker";
import { countProductReads } from "../support/product-reads";
import {
    cleanNamespace,
    createTestDatabase,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { graphql, http } from "../support/http";
import { readConfig } from "../../lib/config";
import { ProductCacheGroup } from "../../lib/product-cache";
import { stampedCache } from "../../lib/stamped-cache";
import { CATALOG_TYPES } from "../../services/api/graphql-catalog";

jest.setTimeout(60_000);

let db: TestDatabase;
let broker: ServiceBroker;
let base: string;
let adminToken: string;
const namespace = testNamespace();

/** Product reads that reached the products service (a resolver ran). */
const served: string[] = [];
const CountReads = countProductReads(served);

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    broker = createTestBroker({
        namespace,
        cacher: REDIS_URL,
        services: ["api", "users", "products", "orders"],
        middlewares: [CountReads],
    });
    await broker.start();
    base = gatewayUrl(broker);
    const { adminEmail, adminPassword } = readConfig();
    const login = await http(base, "POST", "/api/auth/login", {
        body: { email: adminEmail, password: adminPassword },
    });
    adminToken = login.body.accessToken as string;
});

afterAll(async () => {
    await broker.stop();
    await db.drop();
    await cleanNamespace(namespace);
});

async function createProduct(name: string, category: string, stock = 5) {
    const created = await http(base, "POST", "/api/products", {
        token: adminToken,
        body: { name, price: 100, stock, category },
    });
    expect(created.status).toBe(201);
    return created.body as { id: string };
}

const LISTING = `query Listing($category: String) {
    products(category: $category, page: 1, pageSize: 20) { total rows { id name price stock } }
}`;

it("keeps the catalogue types closed: scalars and each other only, below the catalogue fields", async () => {
    const typeRef = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    const answer = await graphql(
        base,
        `{ __schema { queryType { fields { name type { ${typeRef} } } } }
           ${CATALOG_TYPES.map(t => `${t}: __type(name: "${t}") { fields { name type { ${typeRef} } } }`).join(" ")} }`,
    );
    type TypeRef = { kind: string; name: string | null; ofType: TypeRef | null };
    const named = (ref: TypeRef): TypeRef => (ref.ofType ? named(ref.ofType) : ref);
    const query = answer.body.data.__schema.queryType.fields as { name: string; type: TypeRef }[];
    const roots = Object.fromEntries(query.map(f => [f.name, named(f.type).name]));
    expect([roots.products, roots.product]).toEqual(["ProductPage", "Product"]);
    for (const type of CATALOG_TYPES) {
        for (const field of answer.body.data[type].fields as { name: string; type: TypeRef }[]) {
            const target = named(field.type);
            const closed =
                target.kind === "SCALAR" ||
                target.kind === "ENUM" ||
                (CATALOG_TYPES as readonly string[]).includes(target.name ?? "");
            expect({ type, field: field.name, closed }).toEqual({
                type,
                field: field.name,
                closed: true,
            });
        }
    }
});

it("answers a repeated catalogue query from the cache, exactly as Apollo answered it", async () => {
    const product = await createProduct("Cached answer", "gql-hit");
    const variables = { category: "gql-hit" };
    const first = await http(base, "POST", "/graphql", { body: { query: LISTING, variables } });
    expect(first.status).toBe(200);
    expect(first.body.data.products.rows).toEqual([
        { id: product.id, name: "Cached answer", price: 100, stock: 5 },
    ]);
    served.length = 0;
    const raw = await fetch(`${base}/graphql`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ query: LISTING, variables }),
    });
    expect(served).toEqual([]);
    expect(raw.status).toBe(200);
    expect(raw.headers.get("content-type")).toBe(first.headers.get("content-type"));
    expect(JSON.parse(await raw.text())).toEqual(first.body);
    // The same query for another category is another entry.
    await createProduct("Other", "gql-other");
    const other = await graphql(base, LISTING, { category: "gql-other" });
    expect(other.body.data.products.rows[0].name).toBe("Other");
    expect(served).toEqual(["products.list"]);
});

it("shows every write that has answered in the very next answer", async () => {
    const product = await createProduct("Fresh answer", "gql-fresh", 10);
    const byId = `query One($id: ID!) { product(id: $id) { price stock } }`;
    const read = async () => {
        const [listing, one] = await Promise.all([
            graphql(base, LISTING, { category: "gql-fresh" }),
            graphql(base, byId, { id: product.id }),
        ]);
        return { listed: listing.body.data.products.rows[0], one: one.body.data.product };
    };
    await read();
    for (let price = 101; price <= 103; price++) {
        await read(); // a hit, so the write below must make it unreachable
        const patched = await http(base, "PATCH", `/api/products/${product.id}`, {
            token: adminToken,
            body: { price },
        });
        expect(patched.status).toBe(200);
        expect((await read()).listed.price).toBe(price);
        expect((await read()).one.price).toBe(price);
    }
    // An order's reservation takes stock: the next answer shows it.
    const order = await http(base, "POST", "/api/orders", {
        token: adminToken,
        body: { items: [{ productId: product.id, quantity: 3 }] },
    });
    expect(order.status).toBe(201);
    expect(await read()).toEqual({
        listed: expect.objectContaining({ stock: 7 }),
        one: { price: 103, stock: 7 },
    });
    // A deleted product is gone from the next answer.
    expect(
        (await http(base, "DELETE", `/api/products/${product.id}`, { token: adminToken })).status,
    ).toBe(204);
    const after = await graphql(base, LISTING, { category: "gql-fresh" });
    expect(after.body.data.products).toEqual({ total: 0, rows: [] });
});

it("never keeps an answer computed from rows read before a write", async () => {
    const product = await createProduct("Slow answer", "gql-slow");
    const cache = stampedCache(broker);
    let held!: () => void;
    const reached = new Promise<void>(resolve => {
        cache.beforeStore = group => {
            if (group !== ProductCacheGroup.GraphQL) return Promise.resolve();
            cache.beforeStore = null;
            resolve();
            // Apollo has answered with price 100; the answer waits before it is stored.
            return new Promise<void>(release => (held = release));
        };
    });
    const slow = graphql(base, LISTING, { category: "gql-slow" });
    await reached;
    const patched = await http(base, "PATCH", `/api/products/${product.id}`, {
        token: adminToken,
        body: { price: 150 },
    });
    expect(patched.status).toBe(200);
    held();
    expect((await slow).body.data.products.rows[0].price).toBe(100);
    // The read that starts after the write answered sees the new price, now and from the cache.
    for (let i = 0; i < 2; i++) {
        const next = await graphql(base, LISTING, { category: "gql-slow" });
        expect(next.body.data.products.rows[0].price).toBe(150);
    }
});

it("never keeps an answer with errors, a query that reads more than the catalogue, or a mutation", async () => {
    const missing = crypto.randomUUID();
    const byId = `query One($id: ID!) { product(id: $id) { name } }`;
    served.length = 0;
    for (let i = 0; i < 2; i++) {
        const answer = await graphql(base, byId, { id: missing });
        expect(answer.body.errors[0].extensions.code).toBe("NOT_FOUND");
    }
    expect(served).toEqual(["products.get", "products.get"]);

    // `me` is the caller's own: two callers, two answers, each run by the resolvers.
    await createProduct("Mixed", "gql-mixed");
    const mixed = `{ products(category: "gql-mixed") { total } me { email } }`;
    const alice = await registerAndLogin("alice");
    const bob = await registerAndLogin("bob");
    served.length = 0;
    const forAlice = await graphql(base, mixed, {}, alice.token);
    const forBob = await graphql(base, mixed, {}, bob.token);
    expect(forAlice.body.data).toEqual({ products: { total: 1 }, me: { email: alice.email } });
    expect(forBob.body.data).toEqual({ products: { total: 1 }, me: { email: bob.email } });
    expect(served).toEqual(["products.list", "products.list"]);

    // A batch is resolved operation by operation, every time.
    served.length = 0;
    for (let i = 0; i < 2; i++) {
        const batch = await http(base, "POST", "/graphql", {
            body: [{ query: `{ products(category: "gql-mixed") { total } }` }],
        });
        expect(batch.body[0].data.products.total).toBe(1);
    }
    expect(served).toEqual(["products.list", "products.list"]);
});

async function registerAndLogin(name: string) {
    const email = `${name}-${crypto.randomUUID()}@example.com`;
    const password = "correct horse battery";
    const created = await http(base, "POST", "/api/auth/register", {
        body: { email, password, name },
    });
    expect(created.status).toBe(201);
    const login = await http(base, "POST", "/api/auth/login", { body: { email, password } });
    return { email, token: login.body.accessToken as string };
}
