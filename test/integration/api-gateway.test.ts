/**
 * The gateway over real HTTP: the contract's error shapes, auth checks, body rules, unreachable
 * internals, 503 for a service with no live node, and GraphQL beside REST.
 */
import type { ServiceBroker } from "moleculer";
import { createTestBroker, gatewayUrl } from "../support/broker";
import { createTestDatabase, type TestDatabase } from "../support/database";
import { graphql, http } from "../support/http";
import { signAccessToken } from "../../lib/access-token";
import { loadJwtKeys } from "../../lib/jwt-keys";
import { readConfig } from "../../lib/config";

let db: TestDatabase;
let broker: ServiceBroker;
let base: string;
let adminToken: string;
let userToken: string;

beforeAll(async () => {
    db = await createTestDatabase();
    process.env.DATABASE_URL = db.url;
    broker = createTestBroker({ services: ["api", "products"] });
    await broker.start();
    base = gatewayUrl(broker);
    const config = readConfig();
    const keys = loadJwtKeys(config);
    const sign = (role: "admin" | "user") =>
        signAccessToken(
            {
                id: crypto.randomUUID(),
                email: `${role}@x.io`,
                role,
                sessionId: crypto.randomUUID(),
            },
            keys,
            config,
        ).token;
    adminToken = sign("admin");
    userToken = sign("user");
});

afterAll(async () => {
    await broker.stop();
    await db.drop();
});

describe("REST", () => {
    it("creates with 201 and a Location, reads it back", async () => {
        const created = await http(base, "POST", "/api/products", {
            token: adminToken,
            body: { name: "Kettle", price: 2500, stock: 4 },
        });
        expect(created.status).toBe(201);
        expect(created.headers.get("location")).toBe(`/api/products/${created.body.id}`);
        const read = await http(base, "GET", `/api/products/${created.body.id}`);
        expect(read).toMatchObject({ status: 200, body: { name: "Kettle", price: 2500 } });
        const deleted = await http(base, "DELETE", `/api/products/${created.body.id}`, {
            token: adminToken,
        });
        expect(deleted.status).toBe(204);
        expect(deleted.body).toBeNull();
    });

    it("answers 401 without a token, 401 for a bad one and 403 for the wrong role", async () => {
        const body = { name: "X", price: 1 };
        const anonymous = await http(base, "POST", "/api/products", { body });
        expect(anonymous).toMatchObject({ status: 401, body: { type: "UNAUTHORIZED", code: 401 } });
        const garbage = await http(base, "POST", "/api/products", { body, token: "not.a.jwt" });
        expect(garbage).toMatchObject({ status: 401, body: { type: "UNAUTHORIZED" } });
        const user = await http(base, "POST", "/api/products", { body, token: userToken });
        expect(user).toMatchObject({ status: 403, body: { type: "FORBIDDEN" } });
    });

    it("answers 422 naming the field for invalid input", async () => {
        const result = await http(base, "POST", "/api/products", {
            token: adminToken,
            body: { name: "X", price: "free" },
        });
        expect(result.status).toBe(422);
        expect(result.body).toMatchObject({
            name: "ValidationError",
            type: "VALIDATION_ERROR",
            code: 422,
        });
        expect(result.body.data[0].field).toBe("price");
    });

    it("answers 400 for malformed JSON and for a body that is not JSON", async () => {
        const malformed = await http(base, "POST", "/api/products", {
            token: adminToken,
            raw: '{"name": "X", price: }',
            headers: { "Content-Type": "application/json" },
        });
        expect(malformed).toMatchObject({ status: 400, body: { type: "INVALID_REQUEST_BODY" } });
        const text = await http(base, "POST", "/api/products", {
            token: adminToken,
            raw: "name=X&price=1",
            headers: { "Content-Type": "application/x-www-form-urlencoded" },
        });
        expect(text).toMatchObject({ status: 400, body: { type: "INVALID_REQUEST_BODY" } });
    });

    it("answers 413 for a body over the limit", async () => {
        const result = await http(base, "POST", "/api/products", {
            token: adminToken,
            body: { name: "X", price: 1, description: "x".repeat(200_000) },
        });
        expect(result).toMatchObject({ status: 413, body: { type: "PAYLOAD_TOO_LARGE" } });
    });

    it("answers 404 NOT_FOUND for unknown routes and never exposes internal actions", async () => {
        for (const url of [
            "/api/nothing",
            "/api/products/find",
            "/api/products.reserve",
            "/api/~node/actions",
        ]) {
            const result = await http(base, "POST", url, { token: adminToken, body: {} });
            expect([404, 422]).toContain(result.status);
            if (result.status === 404) expect(result.body.type).toBe("NOT_FOUND");
        }
        const find = await http(base, "GET", "/api/products/find");
        expect(find.status).toBe(422);
    });

    it("allows no other origin when CORS_ORIGINS is unset: no CORS headers, same-origin only", async () => {
        const headers = {
            Origin: "https://elsewhere.example",
            "Access-Control-Request-Method": "POST",
        };
        for (const path of ["/api/products", "/graphql"]) {
            const answer = await http(base, "OPTIONS", path, { headers });
            expect(answer.headers.get("access-control-allow-origin")).toBeNull();
            expect(answer.headers.get("access-control-allow-methods")).toBeNull();
        }
        const read = await http(base, "GET", "/api/products", { headers });
        expect(read.status).toBe(200);
        expect(read.headers.get("access-control-allow-origin")).toBeNull();
    });

    it("serves health", async () => {
        expect(await http(base, "GET", "/health/live")).toMatchObject({ status: 200 });
        expect(await http(base, "GET", "/health/ready")).toMatchObject({
            status: 200,
            body: { ready: true, checks: { broker: "ok", "database:products": "ok" } },
        });
    });
});

describe("GraphQL", () => {
    it("lists products and reports errors with the contract's type", async () => {
        await http(base, "POST", "/api/products", {
            token: adminToken,
            body: { name: "Gql", price: 10, stock: 1 },
        });
        const listed = await graphql(
            base,
            '{ products(search: "Gql") { total rows { name price currency } } }',
        );
        expect(listed.status).toBe(200);
        expect(listed.body.data.products).toEqual({
            total: 1,
            rows: [{ name: "Gql", price: 10, currency: "USD" }],
        });

        const anonymous = await graphql(
            base,
            'mutation { createProduct(input: { name: "X", price: 1 }) { id } }',
        );
        expect(anonymous.body.errors[0].extensions.code).toBe("UNAUTHORIZED");
        const invalid = await graphql(
            base,
            'mutation { createProduct(input: { name: "", price: 1 }) { id } }',
            {},
            adminToken,
        );
        expect(invalid.body.errors[0].extensions.code).toBe("VALIDATION_ERROR");
        const created = await graphql(
            base,
            'mutation { createProduct(input: { name: "G2", price: 5, stock: 2 }) { id stock } }',
            {},
            adminToken,
        );
        expect(created.status).toBe(200);
        const id = created.body.data.createProduct.id;
        const adjusted = await graphql(
            base,
            "mutation($id: ID!) { updateInventory(input: { productId: $id, op: ADD, quantity: 3 }) { stock } }",
            { id },
            adminToken,
        );
        expect(adjusted.body.data.updateInventory.stock).toBe(5);
        const badArg = await graphql(base, '{ products(page: "x") { total } }');
        expect(badArg.body.errors[0].extensions.code).toBe("VALIDATION_ERROR");
    });
});

describe("a service with no live node", () => {
    it("answers 503 SERVICE_UNAVAILABLE on REST", async () => {
        const result = await http(base, "GET", "/api/orders", { token: userToken });
        expect(result).toMatchObject({ status: 503, body: { type: "SERVICE_UNAVAILABLE" } });
    });
});
