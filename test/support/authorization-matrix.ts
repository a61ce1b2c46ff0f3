/**
 * Who may call what (shared/API.md), written once: every REST route of services/api/routes.ts and
 * every GraphQL operation, against every kind of caller, with the answer each must get.
 * test/e2e/authorization.test.ts runs it against a real cluster, and test/e2e/bad-input.test.ts
 * reuses the cluster and the callers' world set up here.
 *
 * An allowed call must answer its exact 2xx status with a body of the contract's shape (and the
 * row's own check: it is the caller's order, the name did change...); a denied one must answer
 * the contract's error body, and where the call would have changed something, that thing is read
 * before and after and must not have changed. So no row passes because "something" answered.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
    cleanRedisNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "./database";
import { connect } from "nats";
import { graphql, http, type HttpResult } from "./http";
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "./processes";

export const CALLERS = ["anonymous", "user", "anotherUser", "admin"] as const;
export type Caller = (typeof CALLERS)[number];
export type SignedIn = Exclude<Caller, "anonymous">;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface Credentials {
    email: string;
    password: string;
}

// --- The cluster ---

export interface Cluster {
    base: string;
    admin: Credentials;
    db: TestDatabase;
    /**
     * Restarts every node that died or stopped answering its health check, and says which and
     * why (the end of its log); an empty list when all were well.
     */
    recover(): Promise<string[]>;
    /** False as soon as a node process has exited. */
    allRunning(): boolean;
    stop(): Promise<void>;
}

/** GraphQL fields that only exist once their service has joined (the schema follows the nodes). */
const LAST_TO_JOIN = ["me", "products", "orders", "placeOrder", "updateInventory"];

interface ClusterNode {
    name: string;
    env: Record<string, string>;
    readyUrl: string;
    process: NodeProcess;
    restarts: number;
}

function running(node: ClusterNode): boolean {
    return node.process.child.exitCode === null && node.process.child.signalCode === null;
}

async function answers(url: string, timeoutMs: number): Promise<boolean> {
    try {
        return (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).status === 200;
    } catch {
        return false;
    }
}

/**
 * api, users, products and orders as four node processes over NATS with the Redis cacher and a
 * fresh database, as test/e2e/cluster.test.ts runs them; answers once the gateway sees every
 * service, over REST and in the GraphQL schema.
 */
export async function startCluster(env: Record<string, string> = {}): Promise<Cluster> {
    const db = await createTestDatabase();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-e2e-"));
    const namespace = testNamespace();
    const admin = { email: "root@agora.test", password: "a long admin passphrase" };
    const shared = {
        TRANSPORTER: NATS_URL,
        CACHER: REDIS_URL,
        DATABASE_URL: db.url,
        NAMESPACE: namespace,
        DATA_DIR: dataDir,
        ADMIN_EMAIL: admin.email,
        ADMIN_PASSWORD: admin.password,
        METRICS_PORT: "0",
        // Cheap hashes: these suites log in and register hundreds of times.
        BCRYPT_ROUNDS: "4",
        ...env,
    };
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const nodes: ClusterNode[] = [];
    const launch = async (name: string, env: Record<string, string>, readyUrl: string) => {
        const node = { name, env, readyUrl, process: startNode(name, env), restarts: 0 };
        nodes.push(node);
        await waitUntilHealthy(node.process, readyUrl);
    };
    const stop = async () => {
        await Promise.all(nodes.map(node => node.process.stop()));
        await db.drop();
        await cleanRedisNamespace(namespace);
        await deleteJetStreamStreams(namespace);
        fs.rmSync(dataDir, { recursive: true, force: true });
    };
    try {
        // The services start together: each runs its own migrations under an advisory lock.
        const services = ["users", "products", "orders"].map(async kind => {
            const healthPort = await freePort();
            const nodeEnv = {
                ...shared,
                SERVICES: kind,
                NODE_ID: `${kind}-e2e`,
                HEALTH_PORT: String(healthPort),
            };
            await launch(kind, nodeEnv, `http://127.0.0.1:${healthPort}/health/ready`);
        });
        await Promise.all(services);
        const apiEnv = { ...shared, SERVICES: "api", NODE_ID: "api-e2e", PORT: String(port) };
        await launch("api", apiEnv, `${base}/health/ready`);
        await waitForEveryService(base);
    } catch (error) {
        await stop();
        throw error;
    }
    return {
        base,
        admin,
        db,
        allRunning: () => nodes.every(running),
        async recover() {
            const reports: string[] = [];
            for (const node of nodes) {
                const alive = running(node);
                if (alive && (await answers(node.readyUrl, 3000))) continue;
                const log = node.process.logs().trim().split("\n").slice(-12).join("\n");
                reports.push(
                    `${node.name} ${alive ? "stopped answering" : "died"}; its log ends:\n${log}`,
                );
                await node.process.stop("SIGKILL");
                // A new node id: the old one's open circuits and stale registry entries stay behind.
                node.restarts++;
                const env = { ...node.env, NODE_ID: `${node.env.NODE_ID}-${node.restarts}` };
                node.process = startNode(node.name, env);
                await waitUntilHealthy(node.process, node.readyUrl);
            }
            if (reports.length) await waitForEveryService(base);
            return reports;
        },
        stop,
    };
}

/** The durable-event streams the nodes of a namespace made (`<namespace>_<channel>`). */
async function deleteJetStreamStreams(namespace: string): Promise<void> {
    const nc = await connect({ servers: NATS_URL });
    try {
        const jsm = await nc.jetstreamManager();
        for await (const stream of jsm.streams.list()) {
            if (stream.config.name.startsWith(`${namespace}_`)) {
                await jsm.streams.delete(stream.config.name);
            }
        }
    } finally {
        await nc.close();
    }
}

/**
 * Until the gateway reaches every service: calls that get as far as users and products and change
 * nothing (logging out an unknown token, an unknown product), orders' auth check, and the fields
 * of every service in the GraphQL schema.
 */
async function waitForEveryService(base: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
        try {
            const [logout, product, orders, schema] = await Promise.all([
                http(base, "POST", "/api/auth/logout", { body: { refreshToken: "probe" } }),
                http(base, "GET", "/api/products/00000000-0000-4000-8000-000000000000"),
                http(base, "GET", "/api/orders"),
                graphqlOperations(base),
            ]);
            const fields = new Set([...schema.queries, ...schema.mutations]);
            if (
                logout.status === 204 &&
                product.status === 404 &&
                orders.status === 401 &&
                LAST_TO_JOIN.every(field => fields.has(field))
            ) {
                return;
            }
        } catch {
            // The gateway is not listening yet.
        }
        if (Date.now() > deadline) throw new Error("The gateway did not reach every service");
        await new Promise(resolve => setTimeout(resolve, 250));
    }
}

/** The Query and Mutation fields of the gateway's live schema. */
export async function graphqlOperations(
    base: string,
): Promise<{ queries: string[]; mutations: string[] }> {
    const response = await graphql(
        base,
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
    );
    const schema = response.body?.data?.__schema;
    const names = (type: { fields: { name: string }[] } | null) =>
        (type?.fields ?? []).map(field => field.name);
    return { queries: names(schema?.queryType), mutations: names(schema?.mutationType) };
}

// --- The callers' world ---

export interface Account extends Credentials {
    id: string;
    token: string;
}

/** What every row works on: three signed-in callers and things that belong to them. */
export interface World {
    base: string;
    accounts: Record<SignedIn, Account>;
    /** A product with plenty of stock, ordered by the orders below. */
    productId: string;
    /** A CONFIRMED order of `user`. */
    orderId: string;
    /** A CONFIRMED order of `anotherUser`. */
    anotherOrderId: string;
    /** A new product (stock 100) for a row that changes or deletes one. */
    freshProduct(): Promise<string>;
    /** A new CONFIRMED order of `user`, for a row that moves one. */
    freshOrder(): Promise<string>;
    /** A new session of the caller's account (of `user` for anonymous): the login answer. */
    login(caller: Caller): Promise<Json>;
    uniqueEmail(prefix: string): string;
}

export const PRODUCT_PRICE = 1250;

function expectStatus(result: HttpResult, status: number, what: string): Json {
    if (result.status !== status) {
        throw new Error(
            `${what}: expected ${status}, got ${result.status} ${JSON.stringify(result.body)}`,
        );
    }
    return result.body;
}

export async function createWorld(base: string, admin: Credentials): Promise<World> {
    const uniqueEmail = (prefix: string) =>
        `${prefix}-${crypto.randomBytes(5).toString("hex")}@example.com`;
    const signIn = async (credentials: Credentials): Promise<Account> => {
        const login = await http(base, "POST", "/api/auth/login", { body: credentials });
        const body = expectStatus(login, 200, `login of ${credentials.email}`);
        return { ...credentials, id: body.user.id, token: body.accessToken };
    };
    const register = async (name: string): Promise<Account> => {
        const credentials = { email: uniqueEmail(name), password: `${name} has a long password` };
        const created = await http(base, "POST", "/api/auth/register", {
            body: {
                ...credentials,
                name,
                phone: "+1 555 0100",
                address: { line1: "1 Main St", city: "Springfield", country: "US" },
            },
        });
        expectStatus(created, 201, `register ${name}`);
        return signIn(credentials);
    };
    const accounts: Record<SignedIn, Account> = {
        admin: await signIn(admin),
        user: await register("user"),
        anotherUser: await register("another"),
    };
    const createProduct = async (stock: number) => {
        const created = await http(base, "POST", "/api/products", {
            token: accounts.admin.token,
            body: {
                name: `Product ${crypto.randomBytes(4).toString("hex")}`,
                price: PRODUCT_PRICE,
                stock,
            },
        });
        return expectStatus(created, 201, "create a product").id as string;
    };
    const productId = await createProduct(1_000_000);
    const placeOrder = async (who: SignedIn) => {
        const placed = await http(base, "POST", "/api/orders", {
            token: accounts[who].token,
            body: { items: [{ productId, quantity: 1 }] },
        });
        return expectStatus(placed, 201, `an order of ${who}`).id as string;
    };
    return {
        base,
        accounts,
        productId,
        orderId: await placeOrder("user"),
        anotherOrderId: await placeOrder("anotherUser"),
        freshProduct: () => createProduct(100),
        freshOrder: () => placeOrder("user"),
        async login(caller) {
            const account = accounts[caller === "anonymous" ? "user" : caller];
            const login = await http(base, "POST", "/api/auth/login", {
                body: { email: account.email, password: account.password },
            });
            return expectStatus(login, 200, `login of ${caller}`);
        },
        uniqueEmail,
    };
}

// --- Shapes of the contract ---

/** Checks a value is of a contract type; throws with what is wrong. */
export type Shape = (value: Json) => void;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function fail(what: string, value: unknown): never {
    throw new Error(`${what}; got ${JSON.stringify(value)?.slice(0, 600)}`);
}

function object(value: Json, keys: string[], type: string): void {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail(`expected a ${type} object`, value);
    }
    const actual = Object.keys(value).sort();
    if (JSON.stringify(actual) !== JSON.stringify([...keys].sort())) {
        fail(`a ${type} must have exactly the fields ${keys.join(", ")}`, value);
    }
}

function field(value: Json, name: string, ok: (v: Json) => boolean, what: string): void {
    if (!ok(value[name])) fail(`'${name}' must be ${what}`, value);
}

const isId = (v: Json) => typeof v === "string" && UUID.test(v);
const isTime = (v: Json) => typeof v === "string" && ISO_TIME.test(v);
const isText = (v: Json) => typeof v === "string";
const isOptionalText = (v: Json) => v === null || typeof v === "string";
const isCount = (v: Json) => Number.isInteger(v) && v >= 0;

const ADDRESS_KEYS = ["line1", "line2", "city", "postalCode", "country"];

function address(value: Json): void {
    object(value, ADDRESS_KEYS, "Address");
    for (const key of ADDRESS_KEYS) field(value, key, isOptionalText, "a string or null");
}

export const shapes = {
    user(value: Json): void {
        object(
            value,
            ["id", "email", "name", "role", "phone", "address", "createdAt", "updatedAt"],
            "User",
        );
        field(value, "id", isId, "a UUID");
        field(value, "email", isText, "a string");
        field(value, "name", isText, "a string");
        field(value, "role", v => v === "user" || v === "admin", '"user" or "admin"');
        field(value, "phone", isOptionalText, "a string or null");
        field(value, "createdAt", isTime, "an ISO time");
        field(value, "updatedAt", isTime, "an ISO time");
        address(value.address);
    },
    product(value: Json): void {
        object(
            value,
            [
                "id",
                "name",
                "description",
                "price",
                "currency",
                "stock",
                "category",
                "createdAt",
                "updatedAt",
            ],
            "Product",
        );
        field(value, "id", isId, "a UUID");
        field(value, "name", isText, "a string");
        field(value, "description", isOptionalText, "a string or null");
        field(value, "price", isCount, "an integer >= 0");
        field(value, "currency", v => /^[A-Z]{3}$/.test(v), "a currency code");
        field(value, "stock", isCount, "an integer >= 0");
        field(value, "category", isOptionalText, "a string or null");
        field(value, "createdAt", isTime, "an ISO time");
        field(value, "updatedAt", isTime, "an ISO time");
    },
    order(value: Json): void {
        object(
            value,
            [
                "id",
                "userId",
                "status",
                "items",
                "total",
                "currency",
                "shipping",
                "rejectionReason",
                "createdAt",
                "updatedAt",
            ],
            "Order",
        );
        field(value, "id", isId, "a UUID");
        field(value, "userId", isId, "a UUID");
        field(
            value,
            "status",
            v =>
                ["PENDING", "CONFIRMED", "SHIPPED", "DELIVERED", "REJECTED", "CANCELLED"].includes(
                    v,
                ),
            "an order status",
        );
        field(value, "items", v => Array.isArray(v) && v.length > 0, "a non-empty array");
        for (const item of value.items) {
            object(item, ["productId", "name", "unitPrice", "quantity", "lineTotal"], "OrderItem");
            field(item, "productId", isId, "a UUID");
            field(item, "unitPrice", isCount, "an integer >= 0");
            field(item, "quantity", isCount, "an integer >= 0");
            field(item, "lineTotal", isCount, "an integer >= 0");
        }
        field(value, "total", isCount, "an integer >= 0");
        field(value, "currency", v => /^[A-Z]{3}$/.test(v), "a currency code");
        object(value.shipping, ["name", "phone", "address"], "Shipping");
        address(value.shipping.address);
        field(value, "rejectionReason", isOptionalText, "a string or null");
        field(value, "createdAt", isTime, "an ISO time");
        field(value, "updatedAt", isTime, "an ISO time");
    },
    tokenPair(value: Json): void {
        object(value, ["accessToken", "refreshToken", "tokenType", "expiresIn", "user"], "login");
        field(value, "accessToken", v => isText(v) && v.split(".").length === 3, "a JWT");
        field(value, "refreshToken", v => isText(v) && v.length > 0, "a token");
        field(value, "tokenType", v => v === "Bearer", '"Bearer"');
        field(value, "expiresIn", v => Number.isInteger(v) && v > 0, "a number of seconds");
        shapes.user(value.user);
    },
    pageOf(row: Shape): Shape {
        return (value: Json) => {
            object(value, ["rows", "total", "page", "pageSize", "totalPages"], "page");
            field(value, "rows", Array.isArray, "an array");
            for (const key of ["total", "page", "pageSize", "totalPages"]) {
                field(value, key, isCount, "an integer >= 0");
            }
            for (const item of value.rows) row(item);
        };
    },
    /** GraphQL's `health`. */
    ok(value: Json): void {
        if (value !== "ok") fail('expected "ok"', value);
    },
};

/** The error body of the contract, for an HTTP answer with this status and type. */
export function contractError(body: Json, status: number, type: string | string[]): void {
    object(
        body,
        Object.keys(body ?? {}).includes("data")
            ? ["name", "message", "code", "type", "data"]
            : ["name", "message", "code", "type"],
        "contract error",
    );
    field(body, "name", v => isText(v) && v.length > 0, "a name");
    field(body, "message", v => isText(v) && v.length > 0, "a message");
    field(body, "code", v => v === status, `the HTTP status ${status}`);
    const types = Array.isArray(type) ? type : [type];
    field(body, "type", v => types.includes(v), types.join(" or "));
}

// --- The matrix ---

/** What a call of a row must come to for one caller. */
export interface Outcome {
    allowed: boolean;
    /** The REST status; a GraphQL call answers 200 with data, or an error of this status. */
    status: number;
    /** For allowed calls: the shape of the REST body or the GraphQL field. */
    shape?: Shape;
    /** For allowed calls: what else proves the call did what it should, for this caller. */
    check?(value: Json, context: CallContext): void | Promise<void>;
}

export interface CallContext {
    world: World;
    caller: Caller;
    target: Target;
}

/** What a row prepared for one call: fresh resources, unique names... */
export type Target = Record<string, Json>;

export interface RestCall {
    method: string;
    path: string;
    body?: unknown;
}

export interface GraphqlCall {
    query: string;
    variables?: Record<string, unknown>;
}

/** One operation of the contract: its REST route and/or GraphQL field, with the same rules. */
export interface Operation {
    /** A key of services/api/routes.ts `restRoutes`. */
    route?: string;
    /** A Query or Mutation field of the generated schema. */
    field?: string;
    /** Which case of the operation, when it has several rows. */
    variant?: string;
    prepare?(world: World, caller: Caller): Promise<Target>;
    rest?(target: Target, world: World, caller: Caller): RestCall;
    graphql?(target: Target, world: World, caller: Caller): GraphqlCall;
    /**
     * Reads what the call would change, so a denied call can be shown to have changed nothing.
     */
    probe?(world: World, target: Target): Promise<unknown>;
    outcomes: Record<Caller, Outcome>;
}

export const ERROR_TYPES: Record<number, string> = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
};

const deny = (status: 401 | 403 | 404): Outcome => ({ allowed: false, status });
const allow = (status: number, shape?: Shape, check?: Outcome["check"]): Outcome => ({
    allowed: true,
    status,
    shape,
    check,
});
const anyone = (outcome: Outcome) => ({
    anonymous: outcome,
    user: outcome,
    anotherUser: outcome,
    admin: outcome,
});
const signedIn = (outcome: Outcome) => ({
    anonymous: deny(401),
    user: outcome,
    anotherUser: outcome,
    admin: outcome,
});
const adminOnly = (outcome: Outcome) => ({
    anonymous: deny(401),
    user: deny(403),
    anotherUser: deny(403),
    admin: outcome,
});

function account(world: World, caller: Caller): Account {
    return world.accounts[caller === "anonymous" ? "user" : caller];
}

function same(actual: unknown, expected: unknown, what: string): void {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        fail(`${what}: expected ${JSON.stringify(expected)}`, actual);
    }
}

const ADDRESS = "address { line1 line2 city postalCode country }";
const USER = `id email name role phone ${ADDRESS} createdAt updatedAt`;
/** GraphQL selections of every field of each contract type, so the shapes above apply as is. */
export const GRAPHQL_FIELDS = {
    user: USER,
    product: "id name description price currency stock category createdAt updatedAt",
    order: `id userId status items { productId name unitPrice quantity lineTotal } total currency
        shipping { name phone ${ADDRESS} } rejectionReason createdAt updatedAt`,
    page: (row: string) => `rows { ${row} } total page pageSize totalPages`,
    tokenPair: `accessToken refreshToken tokenType expiresIn user { ${USER} }`,
};
const F = GRAPHQL_FIELDS;

async function productAsAdmin(world: World, id: string): Promise<unknown> {
    const found = await http(world.base, "GET", `/api/products/${id}`);
    return { status: found.status, price: found.body?.price, stock: found.body?.stock };
}

async function orderAsAdmin(world: World, id: string): Promise<unknown> {
    const found = await http(world.base, "GET", `/api/orders/${id}`, {
        token: world.accounts.admin.token,
    });
    return { status: found.status, order: found.body?.status };
}

function ownOrders(value: Json, userId: string, includes: string[], excludes: string[]): void {
    for (const order of value.rows) same(order.userId, userId, "every order is the caller's");
    const ids = value.rows.map((order: Json) => order.id);
    for (const id of includes) if (!ids.includes(id)) fail(`order ${id} is missing`, ids);
    for (const id of excludes) if (ids.includes(id)) fail(`order ${id} must not be listed`, ids);
}

const aFreshProduct = async (world: World): Promise<Target> => ({ id: await world.freshProduct() });
const aFreshOrder = async (world: World): Promise<Target> => ({ id: await world.freshOrder() });

export const OPERATIONS: Operation[] = [
    // --- Auth and users ---
    {
        route: "POST /auth/register",
        field: "register",
        async prepare(world) {
            return { email: world.uniqueEmail("new") };
        },
        rest: t => ({
            method: "POST",
            path: "/api/auth/register",
            body: { email: t.email, password: "a fine long password", name: "New" },
        }),
        graphql: t => ({
            query: `mutation($input: RegisterInput!) { register(input: $input) { ${F.user} } }`,
            variables: { input: { email: t.email, password: "a fine long password", name: "New" } },
        }),
        outcomes: anyone(
            allow(201, shapes.user, (user, { target }) => {
                same([user.email, user.role], [target.email, "user"], "a plain user");
            }),
        ),
    },
    {
        route: "POST /auth/login",
        field: "login",
        rest: (t, world, caller) => ({
            method: "POST",
            path: "/api/auth/login",
            body: {
                email: account(world, caller).email,
                password: account(world, caller).password,
            },
        }),
        graphql: (t, world, caller) => ({
            query: `mutation($input: LoginInput!) { login(input: $input) { ${F.tokenPair} } }`,
            variables: {
                input: {
                    email: account(world, caller).email,
                    password: account(world, caller).password,
                },
            },
        }),
        outcomes: anyone(
            allow(200, shapes.tokenPair, (pair, { world, caller }) => {
                same(pair.user.id, account(world, caller).id, "the account that logged in");
            }),
        ),
    },
    {
        route: "POST /auth/refresh",
        field: "refreshToken",
        async prepare(world, caller) {
            return { refreshToken: (await world.login(caller)).refreshToken };
        },
        rest: t => ({
            method: "POST",
            path: "/api/auth/refresh",
            body: { refreshToken: t.refreshToken },
        }),
        graphql: t => ({
            query: `mutation($token: String!) { refreshToken(refreshToken: $token) { ${F.tokenPair} } }`,
            variables: { token: t.refreshToken },
        }),
        outcomes: anyone(
            allow(200, shapes.tokenPair, (pair, { world, caller, target }) => {
                same(pair.user.id, account(world, caller).id, "the session's account");
                if (pair.refreshToken === target.refreshToken) fail("not rotated", pair);
            }),
        ),
    },
    {
        route: "POST /auth/logout",
        field: "logout",
        async prepare(world, caller) {
            return { refreshToken: (await world.login(caller)).refreshToken };
        },
        rest: t => ({
            method: "POST",
            path: "/api/auth/logout",
            body: { refreshToken: t.refreshToken },
        }),
        graphql: t => ({
            query: "mutation($token: String!) { logout(refreshToken: $token) }",
            variables: { token: t.refreshToken },
        }),
        outcomes: anyone(
            allow(204, undefined, async (_, { world, target }) => {
                const refresh = await http(world.base, "POST", "/api/auth/refresh", {
                    body: { refreshToken: target.refreshToken },
                });
                same(refresh.status, 401, "a refresh after logout");
            }),
        ),
    },
    {
        route: "GET /users/me",
        field: "me",
        rest: () => ({ method: "GET", path: "/api/users/me" }),
        graphql: () => ({ query: `{ me { ${F.user} } }` }),
        outcomes: signedIn(
            allow(200, shapes.user, (user, { world, caller }) => {
                same(user.id, account(world, caller).id, "the caller");
            }),
        ),
    },
    {
        route: "PATCH /users/me",
        field: "updateProfile",
        async prepare(_, caller) {
            return { name: `Renamed ${caller} ${crypto.randomBytes(3).toString("hex")}` };
        },
        rest: t => ({ method: "PATCH", path: "/api/users/me", body: { name: t.name } }),
        graphql: t => ({
            query: `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { ${F.user} } }`,
            variables: { input: { name: t.name } },
        }),
        outcomes: signedIn(
            allow(200, shapes.user, (user, { world, caller, target }) => {
                same([user.id, user.name], [account(world, caller).id, target.name], "renamed");
            }),
        ),
    },
    {
        route: "POST /users/me/password",
        field: "changePassword",
        async prepare(world, caller) {
            const current = account(world, caller).password;
            return {
                current,
                next: `${current.replace(/ #\w+$/, "")} #${crypto.randomBytes(3).toString("hex")}`,
            };
        },
        rest: t => ({
            method: "POST",
            path: "/api/users/me/password",
            body: { currentPassword: t.current, newPassword: t.next },
        }),
        graphql: t => ({
            query: "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }",
            variables: { input: { currentPassword: t.current, newPassword: t.next } },
        }),
        outcomes: signedIn(
            allow(204, undefined, async (_, { world, caller, target }) => {
                const changed = account(world, caller);
                changed.password = target.next;
                const login = await http(world.base, "POST", "/api/auth/login", {
                    body: { email: changed.email, password: target.next },
                });
                same(login.status, 200, "a login with the new password");
            }),
        ),
    },
    {
        route: "GET /users",
        field: "users",
        rest: () => ({ method: "GET", path: "/api/users?pageSize=100" }),
        graphql: () => ({ query: `{ users(pageSize: 100) { ${F.page(F.user)} } }` }),
        outcomes: adminOnly(
            allow(200, shapes.pageOf(shapes.user), (page, { world }) => {
                const ids = page.rows.map((user: Json) => user.id);
                for (const who of ["user", "anotherUser", "admin"] as const) {
                    if (!ids.includes(world.accounts[who].id)) fail(`${who} is missing`, ids);
                }
            }),
        ),
    },
    {
        route: "GET /users/:id",
        field: "user",
        variant: "user's profile",
        rest: (t, world) => ({ method: "GET", path: `/api/users/${world.accounts.user.id}` }),
        graphql: (t, world) => ({
            query: `query($id: ID!) { user(id: $id) { ${F.user} } }`,
            variables: { id: world.accounts.user.id },
        }),
        outcomes: {
            anonymous: deny(401),
            user: allow(200, shapes.user, (user, { world }) =>
                same(user.id, world.accounts.user.id, "the profile asked for"),
            ),
            anotherUser: deny(404),
            admin: allow(200, shapes.user, (user, { world }) =>
                same(user.id, world.accounts.user.id, "the profile asked for"),
            ),
        },
    },
    {
        route: "GET /users/:id",
        field: "user",
        variant: "the admin's profile",
        rest: (t, world) => ({ method: "GET", path: `/api/users/${world.accounts.admin.id}` }),
        graphql: (t, world) => ({
            query: `query($id: ID!) { user(id: $id) { ${F.user} } }`,
            variables: { id: world.accounts.admin.id },
        }),
        outcomes: {
            anonymous: deny(401),
            user: deny(404),
            anotherUser: deny(404),
            admin: allow(200, shapes.user, (user, { world }) =>
                same([user.id, user.role], [world.accounts.admin.id, "admin"], "the admin"),
            ),
        },
    },

    // --- Products ---
    {
        route: "GET /products",
        field: "products",
        rest: () => ({ method: "GET", path: "/api/products?pageSize=100" }),
        graphql: () => ({ query: `{ products(pageSize: 100) { ${F.page(F.product)} } }` }),
        outcomes: anyone(
            allow(200, shapes.pageOf(shapes.product), (page, { world }) => {
                const ids = page.rows.map((product: Json) => product.id);
                if (!ids.includes(world.productId)) fail("the product is missing", ids);
            }),
        ),
    },
    {
        route: "GET /products/:id",
        field: "product",
        rest: (t, world) => ({ method: "GET", path: `/api/products/${world.productId}` }),
        graphql: (t, world) => ({
            query: `query($id: ID!) { product(id: $id) { ${F.product} } }`,
            variables: { id: world.productId },
        }),
        outcomes: anyone(
            allow(200, shapes.product, (product, { world }) =>
                same(product.id, world.productId, "the product asked for"),
            ),
        ),
    },
    {
        route: "POST /products",
        field: "createProduct",
        async prepare() {
            return { name: `Created ${crypto.randomBytes(4).toString("hex")}` };
        },
        rest: t => ({
            method: "POST",
            path: "/api/products",
            body: { name: t.name, price: 500, stock: 3 },
        }),
        graphql: t => ({
            query: `mutation($input: CreateProductInput!) { createProduct(input: $input) { ${F.product} } }`,
            variables: { input: { name: t.name, price: 500, stock: 3 } },
        }),
        async probe(world, t) {
            const found = await http(world.base, "GET", `/api/products?search=${t.name}`);
            return found.body.total;
        },
        outcomes: adminOnly(
            allow(201, shapes.product, (product, { target }) =>
                same(
                    [product.name, product.price, product.stock],
                    [target.name, 500, 3],
                    "created",
                ),
            ),
        ),
    },
    {
        route: "PATCH /products/:id",
        field: "updateProduct",
        prepare: aFreshProduct,
        rest: t => ({ method: "PATCH", path: `/api/products/${t.id}`, body: { price: 777 } }),
        graphql: t => ({
            query: `mutation($id: ID!) { updateProduct(id: $id, input: { price: 777 }) { ${F.product} } }`,
            variables: { id: t.id },
        }),
        probe: (world, t) => productAsAdmin(world, t.id),
        outcomes: adminOnly(
            allow(200, shapes.product, (product, { target }) =>
                same([product.id, product.price], [target.id, 777], "updated"),
            ),
        ),
    },
    {
        route: "DELETE /products/:id",
        field: "deleteProduct",
        prepare: aFreshProduct,
        rest: t => ({ method: "DELETE", path: `/api/products/${t.id}` }),
        graphql: t => ({
            query: "mutation($id: ID!) { deleteProduct(id: $id) }",
            variables: { id: t.id },
        }),
        probe: (world, t) => productAsAdmin(world, t.id),
        outcomes: adminOnly(
            allow(204, undefined, async (_, { world, target }) => {
                same(await productAsAdmin(world, target.id), { status: 404 }, "deleted");
            }),
        ),
    },
    {
        route: "POST /products/:productId/inventory",
        field: "updateInventory",
        prepare: aFreshProduct,
        rest: t => ({
            method: "POST",
            path: `/api/products/${t.id}/inventory`,
            body: { op: "add", quantity: 5 },
        }),
        graphql: t => ({
            query: `mutation($id: ID!) { updateInventory(input: { productId: $id, op: ADD, quantity: 5 }) { ${F.product} } }`,
            variables: { id: t.id },
        }),
        probe: (world, t) => productAsAdmin(world, t.id),
        outcomes: adminOnly(
            allow(200, shapes.product, (product, { target }) =>
                same([product.id, product.stock], [target.id, 105], "restocked"),
            ),
        ),
    },

    // --- Orders ---
    {
        route: "POST /orders",
        field: "placeOrder",
        rest: (t, world) => ({
            method: "POST",
            path: "/api/orders",
            body: { items: [{ productId: world.productId, quantity: 1 }] },
        }),
        graphql: (t, world) => ({
            query: `mutation($id: ID!) { placeOrder(input: { items: [{ productId: $id, quantity: 1 }] }) { ${F.order} } }`,
            variables: { id: world.productId },
        }),
        outcomes: signedIn(
            allow(201, shapes.order, (order, { world, caller }) => {
                same(
                    [order.userId, order.status, order.total],
                    [account(world, caller).id, "CONFIRMED", PRODUCT_PRICE],
                    "the caller's order",
                );
            }),
        ),
    },
    {
        route: "GET /orders",
        field: "orders",
        variant: "no filter",
        rest: () => ({ method: "GET", path: "/api/orders?pageSize=100" }),
        graphql: () => ({ query: `{ orders(pageSize: 100) { ${F.page(F.order)} } }` }),
        outcomes: {
            anonymous: deny(401),
            user: allow(200, shapes.pageOf(shapes.order), (page, { world }) =>
                ownOrders(page, world.accounts.user.id, [world.orderId], [world.anotherOrderId]),
            ),
            anotherUser: allow(200, shapes.pageOf(shapes.order), (page, { world }) =>
                ownOrders(
                    page,
                    world.accounts.anotherUser.id,
                    [world.anotherOrderId],
                    [world.orderId],
                ),
            ),
            admin: allow(200, shapes.pageOf(shapes.order), page => {
                const owners = new Set(page.rows.map((order: Json) => order.userId));
                if (owners.size < 2) fail("an admin sees everyone's orders", [...owners]);
            }),
        },
    },
    {
        route: "GET /orders",
        field: "orders",
        variant: "userId= of user",
        rest: (t, world) => ({
            method: "GET",
            path: `/api/orders?pageSize=100&userId=${world.accounts.user.id}`,
        }),
        graphql: (t, world) => ({
            query: `query($userId: ID) { orders(userId: $userId, pageSize: 100) { ${F.page(F.order)} } }`,
            variables: { userId: world.accounts.user.id },
        }),
        outcomes: {
            anonymous: deny(401),
            user: allow(200, shapes.pageOf(shapes.order), (page, { world }) =>
                ownOrders(page, world.accounts.user.id, [world.orderId], []),
            ),
            // The filter is an admin's: anyone else still sees only their own orders.
            anotherUser: allow(200, shapes.pageOf(shapes.order), (page, { world }) =>
                ownOrders(
                    page,
                    world.accounts.anotherUser.id,
                    [world.anotherOrderId],
                    [world.orderId],
                ),
            ),
            admin: allow(200, shapes.pageOf(shapes.order), (page, { world }) =>
                ownOrders(page, world.accounts.user.id, [world.orderId], [world.anotherOrderId]),
            ),
        },
    },
    {
        route: "GET /orders/:id",
        field: "order",
        variant: "user's order",
        rest: (t, world) => ({ method: "GET", path: `/api/orders/${world.orderId}` }),
        graphql: (t, world) => ({
            query: `query($id: ID!) { order(id: $id) { ${F.order} } }`,
            variables: { id: world.orderId },
        }),
        outcomes: {
            anonymous: deny(401),
            user: allow(200, shapes.order, (order, { world }) =>
                same(order.id, world.orderId, "the order asked for"),
            ),
            anotherUser: deny(404),
            admin: allow(200, shapes.order, (order, { world }) =>
                same(order.id, world.orderId, "the order asked for"),
            ),
        },
    },
    {
        route: "POST /orders/:id/cancel",
        field: "cancelOrder",
        variant: "user's order",
        prepare: aFreshOrder,
        rest: t => ({ method: "POST", path: `/api/orders/${t.id}/cancel` }),
        graphql: t => ({
            query: `mutation($id: ID!) { cancelOrder(id: $id) { ${F.order} } }`,
            variables: { id: t.id },
        }),
        probe: (world, t) => orderAsAdmin(world, t.id),
        outcomes: {
            anonymous: deny(401),
            user: allow(200, shapes.order, (order, { target }) =>
                same([order.id, order.status], [target.id, "CANCELLED"], "cancelled"),
            ),
            anotherUser: deny(404),
            admin: allow(200, shapes.order, (order, { target }) =>
                same([order.id, order.status], [target.id, "CANCELLED"], "cancelled"),
            ),
        },
    },
    {
        route: "PATCH /orders/:id/status",
        field: "updateOrderStatus",
        variant: "user's order",
        prepare: aFreshOrder,
        rest: t => ({
            method: "PATCH",
            path: `/api/orders/${t.id}/status`,
            body: { status: "SHIPPED" },
        }),
        graphql: t => ({
            query: `mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { ${F.order} } }`,
            variables: { id: t.id },
        }),
        probe: (world, t) => orderAsAdmin(world, t.id),
        outcomes: adminOnly(
            allow(200, shapes.order, (order, { target }) =>
                same([order.id, order.status], [target.id, "SHIPPED"], "shipped"),
            ),
        ),
    },

    // --- The gateway's own ---
    {
        field: "health",
        graphql: () => ({ query: "{ health }" }),
        outcomes: anyone(allow(200, shapes.ok)),
    },
];

/** One `it` of the matrix: an operation, over one surface, for one caller. */
export interface MatrixRow {
    surface: "REST" | "GraphQL";
    operation: Operation;
    caller: Caller;
    outcome: Outcome;
    title: string;
}

function describeOutcome(surface: MatrixRow["surface"], outcome: Outcome): string {
    if (surface === "GraphQL") return outcome.allowed ? "data" : ERROR_TYPES[outcome.status];
    return outcome.allowed
        ? `${outcome.status}`
        : `${outcome.status} ${ERROR_TYPES[outcome.status]}`;
}

export const MATRIX: MatrixRow[] = OPERATIONS.flatMap(operation =>
    (["REST", "GraphQL"] as const).flatMap(surface => {
        const name = surface === "REST" ? operation.route : operation.field;
        if (!name || !(surface === "REST" ? operation.rest : operation.graphql)) return [];
        const variant = operation.variant ? ` (${operation.variant})` : "";
        return CALLERS.map(caller => {
            const outcome = operation.outcomes[caller];
            const expected = describeOutcome(surface, outcome);
            return {
                surface,
                operation,
                caller,
                outcome,
                title: `${surface} ${name}${variant} as ${caller} → ${expected}`,
            };
        });
    }),
);
