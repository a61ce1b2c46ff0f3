/**
 * A walk through the whole public contract (shared/API.md) over HTTP, REST and GraphQL, good and
 * bad inputs. The e2e suites run it against real processes: a four-node cluster and `npm start`.
 */
import crypto from "node:crypto";
import { graphql, http } from "../support/http";

export interface Credentials {
    email: string;
    password: string;
}

function unique(prefix: string): string {
    return `${prefix}-${crypto.randomBytes(4).toString("hex")}@example.com`;
}

async function register(base: string, name: string) {
    const email = unique(name);
    const password = "correct horse battery";
    const created = await http(base, "POST", "/api/auth/register", {
        body: {
            email,
            password,
            name,
            phone: "+1 555 0100",
            address: {
                line1: "1 Main St",
                city: "Springfield",
                postalCode: "12345",
                country: "US",
            },
        },
    });
    expect(created.status).toBe(201);
    const login = await http(base, "POST", "/api/auth/login", { body: { email, password } });
    expect(login.status).toBe(200);
    return {
        id: created.body.id as string,
        email,
        password,
        token: login.body.accessToken as string,
        login,
    };
}

export async function walkContract(base: string, admin: Credentials): Promise<void> {
    // --- Auth and users ---
    const adminLogin = await http(base, "POST", "/api/auth/login", { body: admin });
    expect(adminLogin.status).toBe(200);
    expect(adminLogin.body.user.role).toBe("admin");
    const adminToken = adminLogin.body.accessToken as string;

    const alice = await register(base, "alice");
    const bob = await register(base, "bob");
    expect(alice.login.body).toMatchObject({
        tokenType: "Bearer",
        expiresIn: 900,
        user: { email: alice.email },
    });
    expect(JSON.stringify(alice.login.body)).not.toMatch(/password|hash/i);

    const duplicate = await http(base, "POST", "/api/auth/register", {
        body: { email: alice.email.toUpperCase(), password: "another password", name: "A2" },
    });
    expect(duplicate).toMatchObject({ status: 409, body: { type: "EMAIL_TAKEN" } });
    const selfAdmin = await http(base, "POST", "/api/auth/register", {
        body: { email: unique("mallory"), password: "long enough pw", name: "M", role: "admin" },
    });
    expect(selfAdmin).toMatchObject({ status: 201, body: { role: "user" } });
    const shortPassword = await http(base, "POST", "/api/auth/register", {
        body: { email: unique("x"), password: "short", name: "X" },
    });
    expect(shortPassword.status).toBe(422);
    expect(shortPassword.body.data.map((d: { field: string }) => d.field)).toContain("password");

    const wrongPassword = await http(base, "POST", "/api/auth/login", {
        body: { email: alice.email, password: "wrong password" },
    });
    const unknownEmail = await http(base, "POST", "/api/auth/login", {
        body: { email: unique("nobody"), password: "wrong password" },
    });
    expect(wrongPassword).toMatchObject({ status: 401, body: { type: "INVALID_CREDENTIALS" } });
    expect(unknownEmail.body).toEqual(wrongPassword.body);

    const me = await http(base, "GET", "/api/users/me", { token: alice.token });
    expect(me).toMatchObject({
        status: 200,
        body: { id: alice.id, role: "user", address: { city: "Springfield" } },
    });
    expect(await http(base, "GET", "/api/users/me")).toMatchObject({ status: 401 });
    expect(await http(base, "GET", "/api/users", { token: alice.token })).toMatchObject({
        status: 403,
    });
    const users = await http(base, "GET", "/api/users?pageSize=2", { token: adminToken });
    expect(users).toMatchObject({ status: 200, body: { page: 1, pageSize: 2 } });
    expect(users.body.rows.length).toBeLessThanOrEqual(2);
    expect(await http(base, "GET", `/api/users/${bob.id}`, { token: alice.token })).toMatchObject({
        status: 404,
    });
    expect(await http(base, "GET", `/api/users/${bob.id}`, { token: adminToken })).toMatchObject({
        status: 200,
    });

    const refreshed = await http(base, "POST", "/api/auth/refresh", {
        body: { refreshToken: alice.login.body.refreshToken },
    });
    expect(refreshed.status).toBe(200);
    const reused = await http(base, "POST", "/api/auth/refresh", {
        body: { refreshToken: alice.login.body.refreshToken },
    });
    expect(reused.status).toBe(401);
    const afterReuse = await http(base, "POST", "/api/auth/refresh", {
        body: { refreshToken: refreshed.body.refreshToken },
    });
    expect(afterReuse.status).toBe(401);
    const logoutLogin = await http(base, "POST", "/api/auth/login", {
        body: { email: bob.email, password: bob.password },
    });
    const logout = await http(base, "POST", "/api/auth/logout", {
        body: { refreshToken: logoutLogin.body.refreshToken },
    });
    expect(logout.status).toBe(204);
    expect(
        (
            await http(base, "POST", "/api/auth/refresh", {
                body: { refreshToken: logoutLogin.body.refreshToken },
            })
        ).status,
    ).toBe(401);

    // --- Products ---
    const category = `cat-${crypto.randomBytes(3).toString("hex")}`;
    const createProduct = (body: Record<string, unknown>, token = adminToken) =>
        http(base, "POST", "/api/products", { token, body: { category, ...body } });
    const kettle = await createProduct({
        name: "Kettle",
        price: 2599,
        stock: 10,
        description: "Boils",
    });
    expect(kettle).toMatchObject({
        status: 201,
        body: { price: 2599, currency: "USD", stock: 10 },
    });
    const mug = await createProduct({ name: "Mug", price: 899, stock: 2 });
    const lamp = await createProduct({ name: "Lamp", price: 4999, stock: 0 });
    expect(await createProduct({ name: "Nope", price: 1 }, alice.token)).toMatchObject({
        status: 403,
    });
    expect(await createProduct({ name: "Nope", price: -5 })).toMatchObject({ status: 422 });

    const listing = await http(
        base,
        "GET",
        `/api/products?category=${category}&sort=price&inStock=true`,
    );
    expect(listing.body.rows.map((p: { name: string }) => p.name)).toEqual(["Mug", "Kettle"]);
    // A page size over 100 is capped, not refused (docs/api.md).
    expect(await http(base, "GET", "/api/products?pageSize=500")).toMatchObject({
        status: 200,
        body: { pageSize: 100 },
    });
    expect(await http(base, "GET", "/api/products/not-a-uuid")).toMatchObject({ status: 422 });
    expect(await http(base, "GET", `/api/products/${crypto.randomUUID()}`)).toMatchObject({
        status: 404,
    });

    const renamed = await http(base, "PATCH", `/api/products/${kettle.body.id}`, {
        token: adminToken,
        body: { name: "Steel kettle", price: 2499 },
    });
    expect(renamed).toMatchObject({ status: 200, body: { name: "Steel kettle", price: 2499 } });
    const listed = await http(base, "GET", `/api/products?category=${category}&search=steel`);
    expect(listed.body.rows[0]).toMatchObject({ price: 2499 });

    const restock = await http(base, "POST", `/api/products/${lamp.body.id}/inventory`, {
        token: adminToken,
        body: { op: "add", quantity: 5 },
    });
    expect(restock).toMatchObject({ status: 200, body: { stock: 5 } });
    const oversubtract = await http(base, "POST", `/api/products/${lamp.body.id}/inventory`, {
        token: adminToken,
        body: { op: "subtract", quantity: 6 },
    });
    expect(oversubtract).toMatchObject({ status: 409, body: { type: "INSUFFICIENT_STOCK" } });

    // --- Orders ---
    const place = (token: string, items: unknown, key?: string) =>
        http(base, "POST", "/api/orders", {
            token,
            body: { items, userId: bob.id },
            headers: key ? { "Idempotency-Key": key } : {},
        });
    const order = await place(alice.token, [
        { productId: kettle.body.id, quantity: 2, unitPrice: 1 },
        { productId: mug.body.id, quantity: 1 },
    ]);
    expect(order.status).toBe(201);
    expect(order.body).toMatchObject({
        userId: alice.id,
        status: "CONFIRMED",
        total: 2 * 2499 + 899,
        currency: "USD",
        shipping: { name: "alice", phone: "+1 555 0100", address: { city: "Springfield" } },
    });
    expect(order.body.items[0]).toMatchObject({
        name: "Steel kettle",
        unitPrice: 2499,
        quantity: 2,
        lineTotal: 4998,
    });

    const short = await place(alice.token, [
        { productId: kettle.body.id, quantity: 1 },
        { productId: mug.body.id, quantity: 5 },
    ]);
    expect(short).toMatchObject({ status: 409, body: { type: "INSUFFICIENT_STOCK" } });
    expect(short.body.data.items).toEqual([{ productId: mug.body.id, requested: 5, available: 1 }]);
    const kettleNow = await http(base, "GET", `/api/products/${kettle.body.id}`);
    expect(kettleNow.body.stock).toBe(8);

    for (const bad of [
        [],
        [{ productId: kettle.body.id, quantity: 0 }],
        [{ productId: "x", quantity: 1 }],
        "nope",
    ]) {
        expect((await place(alice.token, bad)).status).toBe(422);
    }
    expect(await place("", [{ productId: kettle.body.id, quantity: 1 }])).toMatchObject({
        status: 401,
    });

    const key = crypto.randomUUID();
    const first = await place(bob.token, [{ productId: kettle.body.id, quantity: 1 }], key);
    const again = await place(bob.token, [{ productId: kettle.body.id, quantity: 1 }], key);
    expect(first.status).toBe(201);
    expect(again).toMatchObject({ status: 201, body: { id: first.body.id } });
    const conflict = await place(bob.token, [{ productId: kettle.body.id, quantity: 2 }], key);
    expect(conflict).toMatchObject({ status: 409, body: { type: "IDEMPOTENCY_CONFLICT" } });
    expect((await http(base, "GET", `/api/products/${kettle.body.id}`)).body.stock).toBe(7);

    const aliceOrders = await http(base, "GET", "/api/orders", { token: alice.token });
    expect(aliceOrders.body.rows.map((o: { id: string }) => o.id)).toEqual([order.body.id]);
    const allOrders = await http(base, "GET", `/api/orders?userId=${bob.id}`, {
        token: adminToken,
    });
    expect(allOrders.body.rows.map((o: { id: string }) => o.id)).toEqual([first.body.id]);
    expect(
        await http(base, "GET", `/api/orders/${order.body.id}`, { token: bob.token }),
    ).toMatchObject({
        status: 404,
    });

    const profile = await http(base, "PATCH", "/api/users/me", {
        token: alice.token,
        body: {
            address: { line1: "2 New Rd", city: "Shelbyville", postalCode: "54321", country: "US" },
        },
    });
    expect(profile).toMatchObject({ status: 200, body: { address: { city: "Shelbyville" } } });
    await expectEventually(async () => {
        const current = await http(base, "GET", `/api/orders/${order.body.id}`, {
            token: alice.token,
        });
        expect(current.body.shipping.address.city).toBe("Shelbyville");
    });

    const shipped = await http(base, "PATCH", `/api/orders/${first.body.id}/status`, {
        token: adminToken,
        body: { status: "SHIPPED" },
    });
    expect(shipped).toMatchObject({ status: 200, body: { status: "SHIPPED" } });
    expect(
        await http(base, "PATCH", `/api/orders/${first.body.id}/status`, {
            token: adminToken,
            body: { status: "PENDING" },
        }),
    ).toMatchObject({ status: 409, body: { type: "INVALID_TRANSITION" } });
    expect(
        await http(base, "POST", `/api/orders/${first.body.id}/cancel`, { token: bob.token }),
    ).toMatchObject({
        status: 409,
    });
    expect(
        await http(base, "PATCH", `/api/orders/${first.body.id}/status`, {
            token: bob.token,
            body: { status: "DELIVERED" },
        }),
    ).toMatchObject({ status: 403 });

    const cancelled = await http(base, "POST", `/api/orders/${order.body.id}/cancel`, {
        token: alice.token,
    });
    expect(cancelled).toMatchObject({ status: 200, body: { status: "CANCELLED" } });
    expect((await http(base, "GET", `/api/products/${kettle.body.id}`)).body.stock).toBe(9);
    expect((await http(base, "GET", `/api/products/${mug.body.id}`)).body.stock).toBe(2);

    const password = await http(base, "POST", "/api/users/me/password", {
        token: alice.token,
        body: { currentPassword: alice.password, newPassword: "a brand new passphrase" },
    });
    expect(password.status).toBe(204);
    expect(
        (
            await http(base, "POST", "/api/auth/login", {
                body: { email: alice.email, password: "a brand new passphrase" },
            })
        ).status,
    ).toBe(200);

    // --- Bad requests in general ---
    expect(await http(base, "GET", "/api/nowhere")).toMatchObject({
        status: 404,
        body: { type: "NOT_FOUND" },
    });
    expect(
        await http(base, "POST", "/api/auth/login", {
            raw: "{oops",
            headers: { "Content-Type": "application/json" },
        }),
    ).toMatchObject({ status: 400, body: { type: "INVALID_REQUEST_BODY" } });

    // --- GraphQL: the same operations, resolved across services ---
    const gqlOrder = await graphql(
        base,
        `
            mutation ($items: [OrderItemInput!]!, $key: String) {
                placeOrder(input: { items: $items }, idempotencyKey: $key) {
                    id
                    status
                    total
                    user {
                        email
                    }
                    items {
                        name
                        quantity
                        product {
                            id
                            stock
                        }
                    }
                }
            }
        `,
        { items: [{ productId: mug.body.id, quantity: 1 }], key: crypto.randomUUID() },
        bob.token,
    );
    expect(gqlOrder.body.errors).toBeUndefined();
    expect(gqlOrder.body.data.placeOrder).toMatchObject({
        status: "CONFIRMED",
        total: 899,
        user: { email: bob.email },
        items: [{ name: "Mug", quantity: 1, product: { id: mug.body.id, stock: 1 } }],
    });
    const gqlOrders = await graphql(
        base,
        "{ orders(pageSize: 10) { total rows { id user { id } items { product { name } } } } }",
        {},
        adminToken,
    );
    expect(gqlOrders.body.errors).toBeUndefined();
    expect(gqlOrders.body.data.orders.total).toBeGreaterThanOrEqual(3);
    const gqlMe = await graphql(base, "{ me { email role } }", {}, bob.token);
    expect(gqlMe.body.data.me).toEqual({ email: bob.email, role: "user" });
    const gqlShort = await graphql(
        base,
        "mutation($id: ID!) { placeOrder(input: { items: [{ productId: $id, quantity: 50 }] }) { id } }",
        { id: mug.body.id },
        bob.token,
    );
    expect(gqlShort.body.errors[0].extensions.code).toBe("INSUFFICIENT_STOCK");
    const gqlForbidden = await graphql(base, "{ users { total } }", {}, bob.token);
    expect(gqlForbidden.body.errors[0].extensions.code).toBe("FORBIDDEN");
    const gqlLogin = await graphql(
        base,
        "mutation($input: LoginInput!) { login(input: $input) { accessToken user { email } } }",
        { input: { email: bob.email, password: bob.password } },
    );
    expect(gqlLogin.body.data.login.user.email).toBe(bob.email);
    const gqlInventory = await graphql(
        base,
        "mutation($id: ID!) { updateInventory(input: { productId: $id, op: SET, quantity: 3 }) { stock } }",
        { id: lamp.body.id },
        adminToken,
    );
    expect(gqlInventory.body.data.updateInventory.stock).toBe(3);
}

/** Retries an assertion for a short while: for effects carried by events. */
export async function expectEventually(
    assertion: () => Promise<void>,
    timeoutMs = 5000,
): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        try {
            return await assertion();
        } catch (error) {
            if (Date.now() > deadline) throw error;
            await new Promise(resolve => setTimeout(resolve, 100));
        }
    }
}
