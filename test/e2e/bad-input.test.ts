/**
 * The bad-input corpus (test/support/bad-input-corpus.ts) against a four-node cluster whose JWT
 * keys the test holds, so it can forge tokens with the right key as well as the wrong ones.
 *
 * Every case must get its 4xx (or its stated 2xx) and no 5xx, and must change nothing: the test
 * database is read before and after each case (row counts, stock, every product's name and
 * price, fingerprints of users and orders), and once more after the whole corpus. The inputs
 * that are fine once their extra fields are dropped write, so they run afterwards, on their own,
 * and check what those fields did not do.
 */
import crypto from "node:crypto";
import { Client } from "pg";
import { restRoutes } from "../../services/api/routes";
import {
    createWorld,
    graphqlOperations,
    startCluster,
    type Cluster,
} from "../support/authorization-matrix";
import {
    ACCEPTED_WRITES,
    CASES,
    COSTLY_GRAPHQL_QUERY,
    checkAnswer,
    encodeJson,
    forgeTokens,
    type Answer,
    type Caller,
    type Fixtures,
    type HttpCall,
} from "../support/bad-input-corpus";
import { http } from "../support/http";
import { rsaKeyPair } from "../support/keys";

jest.setTimeout(120_000);

const keys = rsaKeyPair();

let cluster: Cluster;
let fx: Fixtures;
let db: Client;

beforeAll(async () => {
    cluster = await startCluster({
        JWT_PRIVATE_KEY: keys.privateKey,
        JWT_PUBLIC_KEY: keys.publicKey,
    });
    const world = await createWorld(cluster.base, cluster.admin);
    const { admin, user, anotherUser } = world.accounts;
    const as = (token: string, method: string, path: string, body?: unknown) =>
        http(cluster.base, method, path, { token, body });

    const lowStockProductId = await world.freshProduct();
    await as(admin.token, "POST", `/api/products/${lowStockProductId}/inventory`, {
        op: "set",
        quantity: 2,
    });
    const deletedProductId = await world.freshProduct();
    await as(admin.token, "DELETE", `/api/products/${deletedProductId}`);
    const cancelledOrderId = await world.freshOrder();
    await as(user.token, "POST", `/api/orders/${cancelledOrderId}/cancel`);

    fx = {
        tokens: { admin: admin.token, user: user.token },
        userId: user.id,
        userEmail: user.email,
        anotherUserId: anotherUser.id,
        productId: world.productId,
        lowStockProductId,
        victimProductId: await world.freshProduct(),
        deletedProductId,
        orderId: world.orderId,
        anotherOrderId: world.anotherOrderId,
        cancelledOrderId,
        forged: forgeTokens(
            keys,
            { sub: admin.id, email: admin.email, role: "admin", sid: crypto.randomUUID() },
            user.token,
        ),
    };
    expect((await as(admin.token, "GET", `/api/products/${lowStockProductId}`)).body.stock).toBe(2);
    expect((await as(admin.token, "GET", `/api/products/${deletedProductId}`)).status).toBe(404);
    expect((await as(user.token, "GET", `/api/orders/${cancelledOrderId}`)).body.status).toBe(
        "CANCELLED",
    );
    db = new Client({ connectionString: cluster.db.url });
    await db.connect();
});

afterAll(async () => {
    await db?.end();
    await cluster?.stop();
});

async function send(call: HttpCall, as: Caller, timeoutMs = 10_000): Promise<Answer> {
    const headers: Record<string, string> = { ...call.headers };
    if (as !== "anonymous" && headers.Authorization === undefined) {
        headers.Authorization = `Bearer ${fx.tokens[as]}`;
    }
    // Bytes, so fetch adds no Content-Type of its own.
    let body: Uint8Array | undefined;
    if (call.json !== undefined) {
        body = new Uint8Array(Buffer.from(encodeJson(call.json)));
        headers["Content-Type"] ??= "application/json";
    } else if (call.raw !== undefined) {
        body = new Uint8Array(Buffer.from(call.raw));
    }
    let response: Response;
    try {
        response = await fetch(cluster.base + call.path, {
            method: call.method,
            headers,
            body: body as RequestInit["body"],
            signal: AbortSignal.timeout(timeoutMs),
        });
    } catch (error) {
        throw new Error(`no answer to ${call.method} ${call.path.slice(0, 100)}: ${error}`);
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
        parsed = text ? JSON.parse(text) : null;
    } catch {
        // Not JSON: the check says so.
    }
    return { status: response.status, text, body: parsed };
}

type Snapshot = Record<string, unknown>;

/**
 * What bad input must never change, read straight from the tables. An order's shipping copy is
 * left out: it follows its user's profile by a later event, and a changed profile already shows
 * in `userRows` of the case that changed it.
 */
async function snapshot(): Promise<Snapshot> {
    const fingerprint = (columns: string, table: string) =>
        `(SELECT md5(coalesce(string_agg(concat_ws('|', ${columns}), ',' ORDER BY id), '')) FROM ${table})`;
    const { rows } = await db.query(`
        SELECT
            (SELECT count(*) FROM users.users)::int AS users,
            ${fingerprint(
                `id, email, name, role, password_hash, phone, address_line1, address_line2,
                 address_city, address_postal_code, address_country`,
                "users.users",
            )} AS "userRows",
            (SELECT count(*) FROM users.refresh_tokens)::int AS "refreshTokens",
            (SELECT count(*) FROM users.refresh_tokens
                WHERE revoked_at IS NOT NULL OR rotated_at IS NOT NULL)::int AS "spentRefreshTokens",
            (SELECT count(*) FROM products.products)::int AS products,
            (SELECT coalesce(sum(stock), 0)::int FROM products.products) AS "totalStock",
            (SELECT count(*) FROM products.reservations)::int AS reservations,
            (SELECT count(*) FROM products.reservations WHERE status = 'held')::int AS "heldReservations",
            (SELECT count(*) FROM orders.orders)::int AS orders,
            ${fingerprint("id, user_id, status, total, items::text, idempotency_key", "orders.orders")}
                AS "orderRows",
            (SELECT coalesce(json_agg(json_build_object(
                'id', id, 'name', name, 'description', description, 'price', price, 'stock', stock,
                'category', category, 'deleted', deleted_at IS NOT NULL) ORDER BY id), '[]')
             FROM products.products) AS "productRows"
    `);
    return rows[0];
}

function changes(before: Snapshot, after: Snapshot): string[] {
    const changed = Object.keys(before).filter(
        key => JSON.stringify(before[key]) !== JSON.stringify(after[key]),
    );
    return changed.map(key =>
        key === "productRows"
            ? `products: ${JSON.stringify(after[key]).slice(0, 600)}`
            : `${key}: ${JSON.stringify(before[key])} → ${JSON.stringify(after[key])}`,
    );
}

describe("the corpus", () => {
    it("has at least 500 cases, over every REST route and GraphQL operation", async () => {
        process.stdout.write(
            `bad-input corpus: ${CASES.length} cases that must change nothing, ` +
                `${ACCEPTED_WRITES.length} acceptable inputs that write\n`,
        );
        expect(CASES.length).toBeGreaterThanOrEqual(500);
        expect(new Set(CASES.map(c => c.name)).size).toBe(CASES.length);
        const targets = new Set(CASES.map(c => c.target));
        const { queries, mutations } = await graphqlOperations(cluster.base);
        const expected = [
            ...Object.keys(restRoutes).map(route => `REST ${route}`),
            ...[...queries, ...mutations].map(field => `GraphQL ${field}`),
        ];
        expect(expected.filter(target => !targets.has(target))).toEqual([]);
    });
});

/** An answer slower than this makes the test look at every node's health. */
const SLOW_MS = 1500;

/** The tables once what a case set off (events between services) has landed. */
async function settledSnapshot(start: Snapshot): Promise<Snapshot> {
    let current = await snapshot();
    const deadline = Date.now() + 3000;
    while (changes(start, current).length && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 200));
        const next = await snapshot();
        if (!changes(current, next).length) break;
        current = next;
    }
    return current;
}

describe("bad input gets a 4xx, never a 5xx, and changes nothing", () => {
    let before: Snapshot;
    /** Nodes that died or hung on a case; each was restarted so the corpus could go on. */
    const outages: string[] = [];

    beforeAll(async () => {
        before = await snapshot();
    });

    it.each(CASES.map(c => [c.name, c] as const))("%s", async (_, c) => {
        const problems: string[] = [];
        const start = await snapshot();
        const started = Date.now();
        let answer: Answer | null = null;
        try {
            answer = await send(c.call(fx), c.as);
            checkAnswer(c.expect, answer, fx);
        } catch (error) {
            problems.push((error as Error).message);
        }
        const suspicious = !answer || answer.status >= 500 || Date.now() - started > SLOW_MS;
        if (suspicious || !cluster.allRunning()) {
            for (const report of await cluster.recover()) {
                outages.push(`${c.name}: ${report.split("\n")[0]}`);
                problems.push(`a node went down: ${report}`);
            }
        }
        const changed = changes(start, await settledSnapshot(start));
        if (changed.length) problems.push(`it changed data: ${changed.join("; ")}`);
        if (problems.length) throw new Error(problems.join("\n"));
    });

    it("kept every node up and answering", () => {
        expect(outages).toEqual([]);
    });

    it("leaves every table as the corpus found it", async () => {
        expect(changes(before, await snapshot())).toEqual([]);
    });
});

describe("input that is acceptable once its extra fields are dropped", () => {
    it.each(ACCEPTED_WRITES.map(c => [`${c.name} (${c.why})`, c] as const))("%s", async (_, c) => {
        const answer = await send(c.call(fx), c.as);
        if (answer.status !== c.status) {
            throw new Error(
                `expected ${c.status}; got ${answer.status} ${answer.text.slice(0, 800)}`,
            );
        }
        c.verify(answer.body, fx);
    });
});

// GraphQL validation is quadratic in the fields of one selection: this query would hold the
// gateway for seconds if it were validated. It is refused by its field count, before validation.
describe("a GraphQL query that is costly to validate", () => {
    it("is refused for its size with a 422 naming the query, before GraphQL validates it", async () => {
        const answer = await send(
            { method: "POST", path: "/graphql", json: { query: COSTLY_GRAPHQL_QUERY } },
            "anonymous",
            60_000,
        );
        expect(answer.status).toBe(422);
        expect(answer.body).toMatchObject({
            type: "VALIDATION_ERROR",
            data: [{ field: "query", type: "queryComplexity" }],
        });
    });
});
