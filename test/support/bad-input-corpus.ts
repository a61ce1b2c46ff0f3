/**
 * A generated corpus of bad input for every REST route and GraphQL operation: wrong types, missing
 * and extra fields, huge strings, odd unicode, injection strings, out-of-range numbers, malformed
 * JSON, wrong content types, bad path ids and query strings, tampered tokens.
 *
 * Each case says what the answer must be: a 4xx with the contract's error body (and, for a 422,
 * the field it names), a GraphQL error of a contract type, or, where the input is acceptable once
 * its extra fields are dropped, a 2xx, with the reason in the case. test/e2e/bad-input.test.ts
 * sends them all to a real cluster and checks, from the database itself, that none changed data.
 * Cases that legitimately write live apart, in ACCEPTED_WRITES, and check what the dropped fields
 * did not do.
 *
 * Inputs are built from the valid request of each route, so a value that slips through
 * validation reaches real data and shows as a 2xx or a changed table, never as a lucky 404.
 */
import crypto from "node:crypto";
import zlib from "node:zlib";
import jwt from "jsonwebtoken";
import { keyIdOf } from "../../lib/jwt-keys";
import { contractError, GRAPHQL_FIELDS as F } from "./authorization-matrix";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export type Caller = "admin" | "user" | "anonymous";

/** What the cases point at, made by the test before the corpus runs. */
export interface Fixtures {
    tokens: Record<"admin" | "user", string>;
    userId: string;
    userEmail: string;
    anotherUserId: string;
    /** Live, with plenty of stock. */
    productId: string;
    /** Live, stock 2: asking for 3 is a shortage. */
    lowStockProductId: string;
    /** What a forged admin token would be able to delete. */
    victimProductId: string;
    deletedProductId: string;
    /** CONFIRMED orders of `user` and of another user, and a CANCELLED one of `user`. */
    orderId: string;
    anotherOrderId: string;
    cancelledOrderId: string;
    /** Authorization header values of forged and broken tokens, by name (see forgeTokens). */
    forged: Record<string, string>;
}

export interface HttpCall {
    method: string;
    path: string;
    headers?: Record<string, string>;
    /** Sent as JSON with `Content-Type: application/json`; see `rawNumber` for non-JSON numbers. */
    json?: unknown;
    /** Sent as is, with only the headers given (no Content-Type of its own). */
    raw?: string | Buffer;
}

export type Expectation =
    /** A 4xx with the contract's body; a 422 must name `field` in its `data`. */
    | { reject: number | number[]; type: string | string[]; field?: string }
    /** A GraphQL error of this type (or the REST contract error, for HTTP-level refusals). */
    | { graphql: string; field?: string; status?: number }
    /** Acceptable input: this 2xx, and no data changed (see `why`). */
    | { accept: number; why: string; verify?: (body: Json, fx: Fixtures) => void };

export interface BadInputCase {
    name: string;
    /** `REST <route of restRoutes>` or `GraphQL <field>`; every route and field has cases. */
    target: string;
    as: Caller;
    call(fx: Fixtures): HttpCall;
    expect: Expectation;
}

/** Input that is fine once its extra fields are dropped: it writes, but only what it should. */
export interface AcceptedWrite {
    name: string;
    target: string;
    as: Caller;
    why: string;
    status: number;
    call(fx: Fixtures): HttpCall;
    verify(body: Json, fx: Fixtures): void;
}

// --- Values ---

/** A well-formed id that names nothing. */
const NOTHING = "7c6a4b1e-9a55-4d3f-8f43-3e0b0c5d2a10";
const RAW_NUMBER = /"@@raw:([^"]*)@@"/g;

/** A number JSON.stringify can't write (`-0`, `1e400`): spliced into the body as is. */
export function rawNumber(text: string): string {
    return `@@raw:${text}@@`;
}

export function encodeJson(value: unknown): string {
    return JSON.stringify(value).replace(RAW_NUMBER, "$1");
}

const INJECTIONS: [string, string][] = [
    ["SQL injection", "' OR 1=1 --"],
    ["SQL statement", "x'; DROP TABLE products.products; --"],
    ["NoSQL operator as text", '{"$gt":""}'],
    ["HTML script", "<script>alert(1)</script>"],
    ["path traversal", "../../etc/passwd"],
    ["LIKE wildcards", "%_%"],
    ["template expression", "${7*7}{{7*7}}"],
];

const ODD_TEXT: [string, string][] = [
    ["emoji", "👩‍👩‍👧 🛒"],
    ["right-to-left override", "\u202Egnp.exe"],
    ["Arabic", "متجر"],
    ["zero-width characters", "a\u200B\u200C\u200Db\uFEFF"],
    ["combining marks", "Z\u0351\u0367\u0311a\u035Blgo"],
];

/**
 * Text PostgreSQL can't store as sent: refused, not silently changed. Every text field of every
 * action refuses it with a 422 naming the field (lib/validator.ts), lookups included.
 */
const UNSTORABLE: [string, string][] = [
    ["a NUL character", "a\u0000b"],
    ["a lone high surrogate", "a\uD800b"],
    ["a lone low surrogate", "a\uDFFFb"],
];

const repeat = (length: number) => "x".repeat(length);
const BIG = 100_000;
const BELOW_BODY_LIMIT = 60_000;

// --- Tokens ---

export interface JwtKeyPair {
    privateKey: string;
    publicKey: string;
}

export interface Claims {
    sub: string;
    email: string;
    role: string;
    sid: string;
}

const ISSUER = "agora";
const AUDIENCE = "agora-api";

function base64url(value: unknown): string {
    return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** What a forgery is made from. */
interface Forge {
    keys: JwtKeyPair;
    kid: string;
    /** The claims of an admin, valid for 15 minutes from `now`. */
    payload: Record<string, unknown>;
    now: number;
    /** A key the gateway doesn't trust. */
    otherKey: string;
    /** A valid access token of a plain user. */
    userToken: string;
}

function sign(
    forge: Forge,
    changes: Record<string, unknown> = {},
    header: Record<string, unknown> = { kid: forge.kid },
    algorithm: jwt.Algorithm = "RS256",
    key = forge.keys.privateKey,
): string {
    return jwt.sign({ ...forge.payload, ...changes }, key, {
        algorithm,
        header: { alg: algorithm, ...header },
    });
}

function unsigned(forge: Forge, alg: string): string {
    return `${base64url({ alg, typ: "JWT", kid: forge.kid })}.${base64url(forge.payload)}`;
}

const bearer = (token: string) => `Bearer ${token}`;

/**
 * Authorization headers that must all be refused with 401: tokens that claim to be an admin (so
 * any that slipped through would write) signed wrongly, aged, addressed elsewhere or not tokens at
 * all, and a valid token of a user with its payload changed.
 */
const FORGERIES: Record<string, (forge: Forge) => string> = {
    "alg none": f => bearer(`${unsigned(f, "none")}.`),
    "alg none without a signature part": f => bearer(unsigned(f, "none")),
    "alg NONE in capitals": f => bearer(`${unsigned(f, "NONE")}.`),
    "HS256 signed with the public key": f => {
        const head = unsigned(f, "HS256");
        const mac = crypto.createHmac("sha256", f.keys.publicKey).update(head).digest("base64url");
        return bearer(`${head}.${mac}`);
    },
    "RS256 signed with another key": f => bearer(sign(f, {}, { kid: f.kid }, "RS256", f.otherKey)),
    "RS512 with the right key": f => bearer(sign(f, {}, { kid: f.kid }, "RS512")),
    "PS256 with the right key": f => bearer(sign(f, {}, { kid: f.kid }, "PS256")),
    "expired an hour ago": f => bearer(sign(f, { iat: f.now - 7200, exp: f.now - 3600 })),
    "not valid before an hour from now": f => bearer(sign(f, { nbf: f.now + 3600 })),
    "a wrong issuer": f => bearer(sign(f, { iss: "evil" })),
    "no issuer": f => bearer(sign(f, { iss: undefined })),
    "a wrong audience": f => bearer(sign(f, { aud: "another-api" })),
    "an unknown key id": f => bearer(sign(f, {}, { kid: "not-our-key" })),
    "no key id": f => bearer(sign(f, {}, {})),
    "key id 'constructor'": f => bearer(sign(f, {}, { kid: "constructor" })),
    "key id '__proto__'": f => bearer(sign(f, {}, { kid: "__proto__" })),
    "a role that doesn't exist": f => bearer(sign(f, { role: "superuser" })),
    "no subject": f => bearer(sign(f, { sub: undefined })),
    "a user's token with role admin pasted in": f => {
        const [head, body, signature] = f.userToken.split(".");
        const claims = JSON.parse(Buffer.from(body, "base64url").toString());
        return bearer(`${head}.${base64url({ ...claims, role: "admin" })}.${signature}`);
    },
    "a user's token with its signature cut off": f => {
        const [head, body] = f.userToken.split(".");
        return bearer(`${head}.${body}.`);
    },
    garbage: () => bearer("garbage"),
    "three empty parts": () => bearer(".."),
    "a.b.c": () => bearer("a.b.c"),
    "10,000 characters": () => bearer(repeat(10_000)),
    "two tokens": f => `Bearer ${f.userToken} ${f.userToken}`,
    "no Bearer prefix": f => f.userToken,
    "Bearer and nothing": () => "Bearer ",
    "Basic credentials": () =>
        `Basic ${Buffer.from("root@agora.test:password").toString("base64")}`,
    "Token scheme": f => `Token ${f.userToken}`,
};

/** The Authorization headers of every forgery, by name, for `Fixtures.forged`. */
export function forgeTokens(
    keys: JwtKeyPair,
    claims: Claims,
    userToken: string,
): Record<string, string> {
    const now = Math.floor(Date.now() / 1000);
    const forge: Forge = {
        keys,
        kid: keyIdOf(keys.publicKey),
        payload: { ...claims, iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 900 },
        now,
        otherKey: crypto
            .generateKeyPairSync("rsa", { modulusLength: 2048 })
            .privateKey.export({ type: "pkcs8", format: "pem" }) as string,
        userToken,
    };
    return Object.fromEntries(Object.entries(FORGERIES).map(([name, make]) => [name, make(forge)]));
}

/** Every forged token is 401; only a well-signed expired one says TOKEN_EXPIRED. */
function forgedTokenType(name: string): string {
    return name.startsWith("expired") ? "TOKEN_EXPIRED" : "UNAUTHORIZED";
}

// --- Building cases ---

const cases: BadInputCase[] = [];

function add(
    target: string,
    name: string,
    as: Caller,
    call: BadInputCase["call"],
    expect: Expectation,
): void {
    cases.push({ name: `${target}: ${name}`, target, as, call, expect });
}

const invalid = (field?: string): Expectation => ({ reject: 422, type: "VALIDATION_ERROR", field });
const reject = (status: number, type: string): Expectation => ({ reject: status, type });
const BAD_BODY: Expectation = { reject: 400, type: "INVALID_REQUEST_BODY" };
const TOO_LARGE: Expectation = { reject: 413, type: "PAYLOAD_TOO_LARGE" };

type FieldKind = "text" | "secret" | "email" | "int" | "enum" | "uuid" | "object" | "array";

interface FieldRule {
    kind: FieldKind;
    min?: number;
    max?: number;
    nullable?: boolean;
    trim?: boolean;
    /** Text the service stores: a value it can't store as sent must be refused. */
    stored?: boolean;
    /** The only values of an enum. */
    values?: string[];
}

/** A route with a body, as the field cases mutate it. */
interface BodyRoute {
    route: string;
    as: Caller;
    path(fx: Fixtures): string;
    /** The request the cases start from; field cases change one field of it. */
    body(fx: Fixtures): Record<string, unknown>;
    /**
     * A valid request that would change something, for the cases that wrap or re-encode it (an
     * array of it, another content type): if one got through, it would show. `body` by default.
     */
    sample?(fx: Fixtures): Record<string, unknown>;
    /** Fields by path (`address.line1`, `items.0.quantity`). */
    fields: Record<string, FieldRule>;
    required: string[];
}

function withField(body: Record<string, unknown>, path: string, value: unknown): Json {
    const copy = structuredClone(body);
    const keys = path.split(".");
    let node: Json = copy;
    for (const key of keys.slice(0, -1)) {
        node[key] ??= {};
        node = node[key];
    }
    node[keys[keys.length - 1]] = value;
    return copy;
}

function withoutField(body: Record<string, unknown>, path: string): Json {
    const copy = structuredClone(body);
    const keys = path.split(".");
    let node: Json = copy;
    for (const key of keys.slice(0, -1)) node = node[key];
    delete node[keys[keys.length - 1]];
    return copy;
}

/** fastest-validator's name of a field: `items[0].quantity`. */
function dataField(path: string): string {
    return path.replace(/\.(\d+)/g, "[$1]");
}

/** The wrong values of a field of this kind, each with what it must come to. */
function badValues(rule: FieldRule, field: string): [string, unknown, Expectation][] {
    const no = invalid(field);
    // JSON has no Infinity: refused as a body (400) or as a field (422), never taken as null.
    const notFinite: Expectation = {
        reject: [400, 422],
        type: ["INVALID_REQUEST_BODY", "VALIDATION_ERROR"],
    };
    const wrongTypes: [string, unknown, Expectation][] = [
        ["a number", 123, no],
        ["a boolean", true, no],
        ["an object", { a: 1 }, no],
        ["an array", ["a"], no],
        ["a NoSQL operator", { $gt: "" }, no],
    ];
    if (!rule.nullable) wrongTypes.push(["null", null, no]);
    const texts = (): [string, unknown, Expectation][] => {
        const values: [string, unknown, Expectation][] = [...wrongTypes];
        if ((rule.min ?? 0) >= 1) values.push(["empty", "", no]);
        if ((rule.min ?? 0) >= 1 && rule.trim) values.push(["only spaces", "   \t ", no]);
        if (rule.min && rule.min > 1)
            values.push([`${rule.min - 1} characters`, repeat(rule.min - 1), no]);
        if (rule.max !== undefined) {
            values.push([`${rule.max + 1} characters`, repeat(rule.max + 1), no]);
            if (rule.max < BELOW_BODY_LIMIT) {
                values.push([
                    `${BELOW_BODY_LIMIT} characters (under the body limit)`,
                    repeat(BELOW_BODY_LIMIT),
                    no,
                ]);
            }
        }
        values.push([`${BIG} characters (over the body limit)`, repeat(BIG), TOO_LARGE]);
        if (rule.stored) {
            for (const [label, value] of UNSTORABLE) values.push([label, value, no]);
        }
        return values;
    };
    switch (rule.kind) {
        case "text":
        case "secret":
            return texts();
        case "email":
            return [
                ...texts(),
                ["no @", "not-an-email", no],
                ["no domain", "a@", no],
                ["no local part", "@example.com", no],
                ["a space", "a b@example.com", no],
                ["SQL injection", "' OR 1=1 --@example.com", no],
                ["HTML", "<script>@example.com", no],
            ];
        case "int": {
            const min = rule.min ?? 0;
            const values: [string, unknown, Expectation][] = [
                ...wrongTypes.filter(([label]) => label !== "a number"),
                ["a numeric string", "12", no],
                ["a word", "abc", no],
                ["'NaN'", "NaN", no],
                ["'Infinity'", "Infinity", no],
                ["a hex string", "0x10", no],
                ["a fraction", 1.5, no],
                ["below the minimum", min - 1, no],
                ["-1e308", -1e308, no],
                ["2^31", 2 ** 31, no],
                ["2^53 + 1", rawNumber("9007199254740993"), no],
                ["1e308", 1e308, no],
                ["1e400 (Infinity once parsed)", rawNumber("1e400"), notFinite],
                ["-1e400", rawNumber("-1e400"), notFinite],
            ];
            if (rule.max !== undefined && rule.max + 1 < 2 ** 31) {
                values.push(["one above the maximum", rule.max + 1, no]);
            }
            if (min >= 1) values.push(["-0", rawNumber("-0"), no]);
            return values;
        }
        case "enum":
            return [
                ...wrongTypes,
                ["not one of the values", "DROP", no],
                ["empty", "", no],
                ["in the other case", swapCase(rule.values![0]), no],
                ["with a space", ` ${rule.values![0]}`, no],
                ["two values", rule.values!.slice(0, 2).join(","), no],
                ["SQL injection", `${rule.values![0]}' OR 1=1 --`, no],
            ];
        case "uuid":
            return [
                ...wrongTypes,
                ["empty", "", no],
                ["not a uuid", "abc", no],
                ["a uuid without dashes", NOTHING.replace(/-/g, ""), no],
                ["a uuid with a character more", `${NOTHING}0`, no],
                ["a uuid in braces", `{${NOTHING}}`, no],
                ["SQL injection", "' OR 1=1 --", no],
                ["path traversal", "../../etc/passwd", no],
                ["5000 characters", "9".repeat(5000), no],
                ["a uuid with a NUL", `${NOTHING}\u0000`, no],
            ];
        case "object":
            return [
                ["a string", "str", no],
                ["a number", 1, no],
                ["a boolean", true, no],
                ["an array", [{ line1: "x" }], no],
                ["an empty array", [], no],
            ];
        case "array":
            return [
                ["an object", { 0: { quantity: 1 } }, no],
                ["a string", "str", no],
                ["a number", 1, no],
                ["null", null, no],
                ["empty", [], no],
                ["an array of null", [null], no],
                ["an array of numbers", [1], invalid(`${field}[0]`)],
                ["an array of strings", ["x"], invalid(`${field}[0]`)],
                ["an array of arrays", [[]], invalid(`${field}[0]`)],
            ];
    }
}

function swapCase(text: string): string {
    return text === text.toUpperCase() ? text.toLowerCase() : text.toUpperCase();
}

const text = (min: number, max: number, more: Partial<FieldRule> = {}): FieldRule => ({
    kind: "text",
    min,
    max,
    trim: true,
    stored: true,
    ...more,
});
const optionalText = (max: number): FieldRule => text(0, max, { nullable: true });
const secret = (min: number, max: number): FieldRule => ({ kind: "secret", min, max });
const int = (min: number, max: number): FieldRule => ({ kind: "int", min, max });

const ADDRESS_FIELDS: Record<string, FieldRule> = {
    address: { kind: "object", nullable: true },
    "address.line1": optionalText(200),
    "address.city": optionalText(100),
    "address.postalCode": optionalText(20),
    "address.country": optionalText(100),
};

const BODY_ROUTES: BodyRoute[] = [
    {
        route: "POST /auth/register",
        as: "anonymous",
        path: () => "/api/auth/register",
        // A new address each time, so that one registration let through can't hide the next.
        body: () => ({
            email: `corpus-${crypto.randomBytes(5).toString("hex")}@example.com`,
            password: "a fine long password",
            name: "Corpus",
            phone: "+1 555 0100",
            address: {
                line1: "1 Main St",
                city: "Springfield",
                postalCode: "12345",
                country: "US",
            },
        }),
        fields: {
            email: { kind: "email", min: 1, max: 254 },
            password: secret(8, 128),
            name: text(1, 100),
            phone: optionalText(32),
            ...ADDRESS_FIELDS,
        },
        required: ["email", "password", "name"],
    },
    {
        route: "POST /auth/login",
        as: "anonymous",
        path: () => "/api/auth/login",
        // A wrong password: a body that passes validation is a 401, never a new session.
        body: fx => ({ email: fx.userEmail, password: "not the password" }),
        fields: { email: secret(1, 254), password: secret(1, 128) },
        required: ["email", "password"],
    },
    ...["refresh", "logout"].map((action): BodyRoute => ({
        route: `POST /auth/${action}`,
        as: "anonymous",
        path: () => `/api/auth/${action}`,
        body: () => ({ refreshToken: "not-a-refresh-token" }),
        fields: { refreshToken: secret(1, 256) },
        required: ["refreshToken"],
    })),
    {
        route: "PATCH /users/me",
        as: "user",
        path: () => "/api/users/me",
        // Field cases add one field to an empty body, so nothing valid comes along.
        body: () => ({}),
        sample: () => ({ name: "Sample name" }),
        fields: { name: text(1, 100), phone: optionalText(32), ...ADDRESS_FIELDS },
        required: [],
    },
    {
        route: "POST /users/me/password",
        as: "user",
        path: () => "/api/users/me/password",
        // A wrong current password: a body that passes validation is a 422 on it.
        body: () => ({ currentPassword: "not the password", newPassword: "a new long password" }),
        fields: { currentPassword: secret(1, 128), newPassword: secret(8, 128) },
        required: ["currentPassword", "newPassword"],
    },
    {
        route: "POST /products",
        as: "admin",
        path: () => "/api/products",
        body: () => ({
            name: "Corpus product",
            description: "A product of the corpus",
            price: 999,
            stock: 5,
            category: "corpus",
        }),
        fields: {
            name: text(1, 200),
            description: { kind: "text", max: 5000, nullable: true, stored: true },
            price: int(0, 1_000_000_000),
            // null is "no stock given" (an accepted write below), not a wrong value.
            stock: { ...int(0, 1_000_000_000), nullable: true },
            category: text(1, 100, { nullable: true }),
        },
        required: ["name", "price"],
    },
    {
        route: "PATCH /products/:id",
        as: "admin",
        path: fx => `/api/products/${fx.productId}`,
        body: () => ({}),
        sample: () => ({ price: 1 }),
        fields: {
            name: text(1, 200),
            description: { kind: "text", max: 5000, nullable: true, stored: true },
            price: int(0, 1_000_000_000),
            category: text(1, 100, { nullable: true }),
        },
        required: [],
    },
    {
        route: "POST /products/:productId/inventory",
        as: "admin",
        path: fx => `/api/products/${fx.productId}/inventory`,
        body: () => ({ op: "add", quantity: 1 }),
        fields: {
            op: { kind: "enum", values: ["add", "subtract", "set"] },
            quantity: int(0, 1_000_000),
        },
        required: ["op", "quantity"],
    },
    {
        route: "POST /orders",
        as: "user",
        path: () => "/api/orders",
        body: fx => ({ items: [{ productId: fx.productId, quantity: 1 }] }),
        fields: {
            items: { kind: "array" },
            "items.0": { kind: "object" },
            "items.0.productId": { kind: "uuid" },
            "items.0.quantity": int(1, 1000),
        },
        required: ["items", "items.0.productId", "items.0.quantity"],
    },
    {
        route: "PATCH /orders/:id/status",
        as: "admin",
        path: fx => `/api/orders/${fx.orderId}/status`,
        body: () => ({ status: "SHIPPED" }),
        fields: {
            status: {
                kind: "enum",
                values: ["SHIPPED", "DELIVERED", "CANCELLED", "PENDING", "CONFIRMED", "REJECTED"],
            },
        },
        required: ["status"],
    },
];

const MALFORMED_JSON: [string, string][] = [
    ["an unclosed object", '{"name": "x"'],
    ["a trailing comma", '{"name": "x",}'],
    ["single quotes", "{'name': 'x'}"],
    ["unquoted keys", "{name: 1}"],
    ["a NaN literal", '{"price": NaN}'],
    ["undefined", '{"a": undefined}'],
    ["two documents", '{"a": 1}{"b": 2}'],
    ["garbage after the object", '{"a": 1} trailing'],
    ["a raw control character in a string", '{"a": "x\u0001y"}'],
    ["a lone backslash escape", '{"a": "\\x41"}'],
    ["only a brace", "}"],
];

const NOT_AN_OBJECT: [string, string, Expectation][] = [
    ["a JSON string", '"text"', BAD_BODY],
    ["a JSON number", "42", BAD_BODY],
    ["JSON null", "null", BAD_BODY],
    ["JSON true", "true", BAD_BODY],
    [
        "an empty JSON array",
        "[]",
        { reject: [400, 422], type: ["INVALID_REQUEST_BODY", "VALIDATION_ERROR"] },
    ],
];

/** A JSON request sent under another content type: [label, headers, body from the JSON]. */
const WRONG_CONTENT_TYPES: [string, Record<string, string>, (json: string) => string][] = [
    ["text/plain", { "Content-Type": "text/plain" }, json => json],
    [
        "form-urlencoded",
        { "Content-Type": "application/x-www-form-urlencoded" },
        json => new URLSearchParams(flatten(JSON.parse(json))).toString(),
    ],
    [
        "multipart/form-data",
        { "Content-Type": "multipart/form-data; boundary=XyZ" },
        json =>
            `--XyZ\r\nContent-Disposition: form-data; name="json"\r\n\r\n${json}\r\n--XyZ--\r\n`,
    ],
    ["application/xml", { "Content-Type": "application/xml" }, () => "<a>1</a>"],
    ["no content type", {}, json => json],
    ["JSON declared latin1", { "Content-Type": "application/json; charset=latin1" }, json => json],
];

function flatten(value: Record<string, unknown>): Record<string, string> {
    return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [
            k,
            typeof v === "object" ? JSON.stringify(v) : String(v),
        ]),
    );
}

function bodyCases(spec: BodyRoute): void {
    const target = `REST ${spec.route}`;
    const method = spec.route.split(" ")[0];
    const json =
        (body: (fx: Fixtures) => unknown) =>
        (fx: Fixtures): HttpCall => ({
            method,
            path: spec.path(fx),
            json: body(fx),
        });
    const raw =
        (
            text: (fx: Fixtures) => string,
            headers: Record<string, string> = { "Content-Type": "application/json" },
        ) =>
        (fx: Fixtures): HttpCall => ({ method, path: spec.path(fx), raw: text(fx), headers });

    for (const [label, text] of MALFORMED_JSON)
        add(
            target,
            `malformed JSON: ${label}`,
            spec.as,
            raw(() => text),
            BAD_BODY,
        );
    for (const [label, text, expect] of NOT_AN_OBJECT)
        add(
            target,
            `the body is ${label}`,
            spec.as,
            raw(() => text),
            expect,
        );
    const sample = (fx: Fixtures) => (spec.sample ?? spec.body)(fx);
    add(
        target,
        "the body is an array of the valid request",
        spec.as,
        raw(fx => JSON.stringify([sample(fx)])),
        {
            reject: [400, 422],
            type: ["INVALID_REQUEST_BODY", "VALIDATION_ERROR"],
        },
    );
    for (const [label, headers, encode] of WRONG_CONTENT_TYPES) {
        add(
            target,
            `the valid request as ${label}`,
            spec.as,
            fx => ({
                method,
                path: spec.path(fx),
                headers,
                raw: encode(JSON.stringify(sample(fx))),
            }),
            { reject: [400, 415], type: "INVALID_REQUEST_BODY" },
        );
    }
    add(
        target,
        `the valid request padded to ${BIG} characters`,
        spec.as,
        json(fx => ({ ...sample(fx), padding: repeat(BIG) })),
        TOO_LARGE,
    );
    add(
        target,
        "the valid request with 10,000 extra fields",
        spec.as,
        json(fx => ({
            ...Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`f${i}`, i])),
            ...sample(fx),
        })),
        TOO_LARGE,
    );
    for (const path of spec.required) {
        add(
            target,
            `${path} is missing`,
            spec.as,
            json(fx => withoutField(spec.body(fx), path)),
            invalid(dataField(path)),
        );
    }
    for (const [path, rule] of Object.entries(spec.fields)) {
        for (const [label, value, expect] of badValues(rule, dataField(path))) {
            add(
                target,
                `${path} is ${label}`,
                spec.as,
                json(fx => withField(spec.body(fx), path, value)),
                expect,
            );
        }
    }
    if (spec.as !== "anonymous") {
        // Who is asking is settled before what is asked: nothing about validation leaks.
        const broken = () => ({
            ...Object.fromEntries(
                Object.keys(spec.fields)
                    .filter(f => !f.includes("."))
                    .map(f => [f, { $gt: "" }]),
            ),
        });
        add(
            target,
            "an invalid body from an anonymous caller",
            "anonymous",
            json(broken),
            reject(401, "UNAUTHORIZED"),
        );
        if (spec.as === "admin") {
            add(
                target,
                "an invalid body from a user",
                "user",
                json(broken),
                reject(403, "FORBIDDEN"),
            );
        }
    }
}

for (const spec of BODY_ROUTES) bodyCases(spec);

let gzipBomb: Buffer | null = null;
/** 20 MB of spaces in about 20 KB. */
function zipBomb(): Buffer {
    gzipBomb ??= zlib.gzipSync(Buffer.alloc(20 * 1024 * 1024, " "));
    return gzipBomb;
}

// Compressed bodies may be taken (then the limit counts what they inflate to) or refused (415);
// a gzip header over a body that isn't gzip is a broken body, not a broken server.
for (const route of ["POST /auth/login", "POST /products", "POST /orders"]) {
    const spec = BODY_ROUTES.find(candidate => candidate.route === route)!;
    add(
        `REST ${route}`,
        "Content-Encoding gzip over a plain body",
        spec.as,
        fx => ({
            method: "POST",
            path: spec.path(fx),
            headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" },
            raw: JSON.stringify(spec.body(fx)),
        }),
        { reject: [400, 415], type: "INVALID_REQUEST_BODY" },
    );
    add(
        `REST ${route}`,
        "a gzip bomb (20 MB of spaces)",
        spec.as,
        fx => ({
            method: "POST",
            path: spec.path(fx),
            headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" },
            raw: zipBomb(),
        }),
        { reject: [413, 415], type: ["PAYLOAD_TOO_LARGE", "INVALID_REQUEST_BODY"] },
    );
}

// --- Route by route: inputs with their own answers ---

{
    const target = "REST POST /auth/register";
    const register = (body: Json) => (): HttpCall => ({
        method: "POST",
        path: "/api/auth/register",
        json: body,
    });
    const valid = { email: "corpus@example.com", password: "a fine long password", name: "Corpus" };
    add(
        target,
        "the e-mail of an existing user, in capitals",
        "anonymous",
        fx => ({
            method: "POST",
            path: "/api/auth/register",
            json: { ...valid, email: fx.userEmail.toUpperCase() },
        }),
        reject(409, "EMAIL_TAKEN"),
    );
    add(
        target,
        "role admin with a password too short",
        "anonymous",
        register({ ...valid, role: "admin", password: "short" }),
        invalid("password"),
    );
    for (const [label, value] of [...INJECTIONS, ...ODD_TEXT]) {
        add(
            target,
            `an e-mail that is ${label}`,
            "anonymous",
            register({ ...valid, email: value }),
            invalid("email"),
        );
    }
}
{
    const target = "REST POST /auth/login";
    const wrong = reject(401, "INVALID_CREDENTIALS");
    const login =
        (email: string, password = "not the password") =>
        (): HttpCall => ({
            method: "POST",
            path: "/api/auth/login",
            json: { email, password },
        });
    add(target, "an unknown e-mail", "anonymous", login("nobody@example.com"), wrong);
    add(
        target,
        "a wrong password with role admin",
        "anonymous",
        fx => ({
            method: "POST",
            path: "/api/auth/login",
            json: { email: fx.userEmail, password: "not the password", role: "admin" },
        }),
        wrong,
    );
    // No stored password holds a NUL or an unpaired surrogate: a wrong password, or a 422 on it.
    const unusable: Expectation = {
        reject: [401, 422],
        type: ["INVALID_CREDENTIALS", "VALIDATION_ERROR"],
    };
    const isUnstorable = (value: string) => UNSTORABLE.some(([, text]) => text === value);
    for (const [label, value] of [...INJECTIONS, ...ODD_TEXT, ...UNSTORABLE]) {
        add(
            target,
            `an e-mail that is ${label}`,
            "anonymous",
            login(value),
            isUnstorable(value) ? invalid("email") : wrong,
        );
        add(
            target,
            `a password that is ${label}`,
            "anonymous",
            fx => ({
                method: "POST",
                path: "/api/auth/login",
                json: { email: fx.userEmail, password: value },
            }),
            isUnstorable(value) ? unusable : wrong,
        );
    }
}
{
    const refresh = (token: string) => (): HttpCall => ({
        method: "POST",
        path: "/api/auth/refresh",
        json: { refreshToken: token },
    });
    const logout = (token: string) => (): HttpCall => ({
        method: "POST",
        path: "/api/auth/logout",
        json: { refreshToken: token },
    });
    for (const [label, value] of UNSTORABLE) {
        for (const [target, call] of [
            ["REST POST /auth/refresh", refresh],
            ["REST POST /auth/logout", logout],
        ] as const) {
            add(
                target,
                `a refresh token that is ${label}`,
                "anonymous",
                call(value),
                invalid("refreshToken"),
            );
        }
    }
    for (const [label, value] of [...INJECTIONS, ...ODD_TEXT, ["256 characters", repeat(256)]]) {
        add(
            "REST POST /auth/refresh",
            `a refresh token that is ${label}`,
            "anonymous",
            refresh(value),
            reject(401, "UNAUTHORIZED"),
        );
        add(
            "REST POST /auth/logout",
            `a refresh token that is ${label}`,
            "anonymous",
            logout(value),
            {
                accept: 204,
                why: "logout answers 204 for any token, known or not (docs/api.md), and revokes nothing here",
            },
        );
    }
}
{
    const target = "REST PATCH /users/me";
    const patch = (body: Json) => (): HttpCall => ({
        method: "PATCH",
        path: "/api/users/me",
        json: body,
    });
    add(target, "an empty body", "user", patch({}), {
        accept: 200,
        why: "nothing to change is a valid no-op: the profile comes back unchanged",
        verify: (user, fx) => expectFields(user, { id: fx.userId, role: "user" }),
    });
    add(
        target,
        "only fields that aren't the profile's (role, email, id)",
        "user",
        patch({ role: "admin", email: "x@evil.example", id: NOTHING }),
        {
            accept: 200,
            why: "unknown fields are dropped, leaving nothing to change",
            verify: (user, fx) =>
                expectFields(user, { id: fx.userId, role: "user", email: fx.userEmail }),
        },
    );
    add(
        target,
        "a valid name with a role admin, as anonymous",
        "anonymous",
        patch({ name: "x", role: "admin" }),
        reject(401, "UNAUTHORIZED"),
    );
}
{
    const target = "REST POST /users/me/password";
    add(
        target,
        "a wrong current password",
        "user",
        () => ({
            method: "POST",
            path: "/api/users/me/password",
            json: { currentPassword: "not the password", newPassword: "a new long password" },
        }),
        invalid("currentPassword"),
    );
    add(
        target,
        "a wrong current password for another user's id",
        "user",
        fx => ({
            method: "POST",
            path: "/api/users/me/password",
            json: {
                currentPassword: "not the password",
                newPassword: "a new long password",
                userId: fx.anotherUserId,
            },
        }),
        invalid("currentPassword"),
    );
}
{
    const target = "REST POST /products/:productId/inventory";
    const adjust =
        (body: Json, id: (fx: Fixtures) => string = fx => fx.lowStockProductId) =>
        (fx: Fixtures): HttpCall => ({
            method: "POST",
            path: `/api/products/${id(fx)}/inventory`,
            json: body,
        });
    add(
        target,
        "subtract more than the stock",
        "admin",
        adjust({ op: "subtract", quantity: 3 }),
        reject(409, "INSUFFICIENT_STOCK"),
    );
    add(
        target,
        "subtract more than the stock, with a stock field",
        "admin",
        adjust({ op: "subtract", quantity: 3, stock: 100 }),
        reject(409, "INSUFFICIENT_STOCK"),
    );
    add(
        target,
        "set above the largest quantity",
        "admin",
        adjust({ op: "set", quantity: 1_000_001 }),
        invalid("quantity"),
    );
    add(
        target,
        "a deleted product",
        "admin",
        adjust({ op: "add", quantity: 1 }, fx => fx.deletedProductId),
        reject(404, "NOT_FOUND"),
    );
    add(
        target,
        "a product of nothing, and a real one in the body",
        "admin",
        fx => ({
            method: "POST",
            path: `/api/products/${NOTHING}/inventory`,
            json: { op: "add", quantity: 1, productId: fx.productId },
        }),
        reject(404, "NOT_FOUND"),
    );
}
{
    const target = "REST PATCH /products/:id";
    add(
        target,
        "a price of nothing, with stock, for a deleted product",
        "admin",
        fx => ({
            method: "PATCH",
            path: `/api/products/${fx.deletedProductId}`,
            json: { price: 1, stock: 100 },
        }),
        reject(404, "NOT_FOUND"),
    );
    for (const field of ["name", "price"]) {
        add(
            target,
            `${field} null`,
            "admin",
            fx => ({
                method: "PATCH",
                path: `/api/products/${fx.productId}`,
                json: { [field]: null },
            }),
            invalid(field),
        );
    }
}
{
    const target = "REST POST /orders";
    const order =
        (items: (fx: Fixtures) => unknown, headers?: Record<string, string>) =>
        (fx: Fixtures): HttpCall => ({
            method: "POST",
            path: "/api/orders",
            json: { items: items(fx) },
            headers,
        });
    const short = reject(409, "INSUFFICIENT_STOCK");
    add(
        target,
        "more than the stock",
        "user",
        order(fx => [{ productId: fx.lowStockProductId, quantity: 3 }]),
        short,
    );
    add(
        target,
        "one item available and one short: nothing is reserved",
        "user",
        order(fx => [
            { productId: fx.productId, quantity: 1 },
            { productId: fx.lowStockProductId, quantity: 3 },
        ]),
        short,
    );
    add(
        target,
        "a short item with a price of 0 and another user's id",
        "user",
        fx => ({
            method: "POST",
            path: "/api/orders",
            json: {
                items: [{ productId: fx.lowStockProductId, quantity: 3, unitPrice: 0 }],
                userId: fx.anotherUserId,
            },
        }),
        short,
    );
    add(
        target,
        "the same product twice",
        "user",
        order(fx => [
            { productId: fx.productId, quantity: 1 },
            { productId: fx.productId, quantity: 2 },
        ]),
        invalid("items[1].productId"),
    );
    add(
        target,
        "the same product twice, in two spellings",
        "user",
        order(fx => [
            { productId: fx.productId, quantity: 1 },
            { productId: fx.productId.toUpperCase(), quantity: 1 },
        ]),
        invalid("items[1].productId"),
    );
    add(
        target,
        "a product of nothing",
        "user",
        order(() => [{ productId: NOTHING, quantity: 1 }]),
        invalid("items[0].productId"),
    );
    add(
        target,
        "a deleted product",
        "user",
        order(fx => [{ productId: fx.deletedProductId, quantity: 1 }]),
        invalid("items[0].productId"),
    );
    add(
        target,
        "51 items",
        "user",
        order(() =>
            Array.from({ length: 51 }, () => ({ productId: crypto.randomUUID(), quantity: 1 })),
        ),
        invalid("items"),
    );
    add(
        target,
        "a second item that is null",
        "user",
        order(fx => [{ productId: fx.productId, quantity: 1 }, null]),
        invalid("items"),
    );
    add(
        target,
        "an Idempotency-Key of 256 characters",
        "user",
        order(fx => [{ productId: fx.productId, quantity: 1 }], { "Idempotency-Key": repeat(256) }),
        invalid("idempotencyKey"),
    );
    add(
        target,
        "an empty Idempotency-Key",
        "user",
        order(fx => [{ productId: fx.productId, quantity: 1 }], { "Idempotency-Key": "" }),
        invalid("idempotencyKey"),
    );
    add(
        target,
        "a valid Idempotency-Key with a short item",
        "user",
        order(fx => [{ productId: fx.lowStockProductId, quantity: 3 }], {
            "Idempotency-Key": "corpus-key-1",
        }),
        short,
    );
}
{
    const target = "REST PATCH /orders/:id/status";
    const move =
        (status: string, id: (fx: Fixtures) => string = fx => fx.orderId) =>
        (fx: Fixtures): HttpCall => ({
            method: "PATCH",
            path: `/api/orders/${id(fx)}/status`,
            json: { status },
        });
    const illegal = reject(409, "INVALID_TRANSITION");
    for (const status of ["PENDING", "CONFIRMED", "REJECTED", "DELIVERED"]) {
        add(target, `CONFIRMED to ${status}`, "admin", move(status), illegal);
    }
    add(
        target,
        "CANCELLED to SHIPPED",
        "admin",
        move("SHIPPED", fx => fx.cancelledOrderId),
        illegal,
    );
    add(
        target,
        "CANCELLED to CANCELLED",
        "admin",
        move("CANCELLED", fx => fx.cancelledOrderId),
        illegal,
    );
    add(
        target,
        "a user shipping their own order",
        "user",
        move("SHIPPED"),
        reject(403, "FORBIDDEN"),
    );
}
{
    const target = "REST POST /orders/:id/cancel";
    const cancel =
        (id: (fx: Fixtures) => string, body?: Json) =>
        (fx: Fixtures): HttpCall => ({
            method: "POST",
            path: `/api/orders/${id(fx)}/cancel`,
            json: body,
        });
    add(
        target,
        "an order already cancelled",
        "user",
        cancel(fx => fx.cancelledOrderId),
        reject(409, "INVALID_TRANSITION"),
    );
    add(
        target,
        "another user's order",
        "user",
        cancel(fx => fx.anotherOrderId),
        reject(404, "NOT_FOUND"),
    );
    add(
        target,
        "another user's order, claiming to be its owner",
        "user",
        cancel(fx => fx.anotherOrderId, { userId: "" }),
        reject(404, "NOT_FOUND"),
    );
    add(
        target,
        "an order of nothing with a body of junk",
        "user",
        cancel(() => NOTHING, { status: "SHIPPED", $where: "1" }),
        reject(404, "NOT_FOUND"),
    );
}

// --- Path ids ---

const BAD_IDS: [string, string, Expectation][] = [
    ["not a uuid", "abc", invalid("id")],
    ["a number", "1", invalid("id")],
    ["a negative number", "-1", invalid("id")],
    ["zero", "0", invalid("id")],
    ["'null'", "null", invalid("id")],
    ["'undefined'", "undefined", invalid("id")],
    ["a uuid without dashes", NOTHING.replace(/-/g, ""), invalid("id")],
    ["a uuid in braces", encodeURIComponent(`{${NOTHING}}`), invalid("id")],
    ["a uuid with a character more", `${NOTHING}0`, invalid("id")],
    ["SQL injection", encodeURIComponent("' OR 1=1 --"), invalid("id")],
    ["path traversal", encodeURIComponent("../../etc/passwd"), invalid("id")],
    ["a NUL", "%00", invalid("id")],
    ["a NoSQL operator", encodeURIComponent('{"$gt":""}'), invalid("id")],
    ["a right-to-left override", encodeURIComponent("\u202E"), invalid("id")],
    ["an emoji", encodeURIComponent("🛒"), invalid("id")],
    ["5000 characters", "9".repeat(5000), invalid("id")],
    [
        "a broken percent-encoding",
        "%E0%A4%A",
        {
            reject: [400, 422],
            type: ["INVALID_REQUEST_BODY", "VALIDATION_ERROR", "UNABLE_DECODE_PARAM"],
        },
    ],
    ["a uuid of nothing", NOTHING, reject(404, "NOT_FOUND")],
    ["a uuid of nothing in capitals", NOTHING.toUpperCase(), reject(404, "NOT_FOUND")],
    [
        "the nil uuid",
        "00000000-0000-0000-0000-000000000000",
        { reject: [404, 422], type: ["NOT_FOUND", "VALIDATION_ERROR"] },
    ],
];

interface IdRoute {
    route: string;
    as: Caller;
    path(id: string): string;
    json?: unknown;
    /** The field a malformed id is reported on. */
    field: string;
}

const ID_ROUTES: IdRoute[] = [
    { route: "GET /products/:id", as: "anonymous", path: id => `/api/products/${id}`, field: "id" },
    {
        route: "PATCH /products/:id",
        as: "admin",
        path: id => `/api/products/${id}`,
        json: { price: 1 },
        field: "id",
    },
    { route: "DELETE /products/:id", as: "admin", path: id => `/api/products/${id}`, field: "id" },
    {
        route: "POST /products/:productId/inventory",
        as: "admin",
        path: id => `/api/products/${id}/inventory`,
        json: { op: "add", quantity: 1 },
        field: "productId",
    },
    { route: "GET /users/:id", as: "admin", path: id => `/api/users/${id}`, field: "id" },
    { route: "GET /orders/:id", as: "user", path: id => `/api/orders/${id}`, field: "id" },
    {
        route: "POST /orders/:id/cancel",
        as: "user",
        path: id => `/api/orders/${id}/cancel`,
        field: "id",
    },
    {
        route: "PATCH /orders/:id/status",
        as: "admin",
        path: id => `/api/orders/${id}/status`,
        json: { status: "SHIPPED" },
        field: "id",
    },
];

for (const spec of ID_ROUTES) {
    const method = spec.route.split(" ")[0];
    for (const [label, id, expect] of BAD_IDS) {
        const named = "field" in expect && expect.field ? { ...expect, field: spec.field } : expect;
        add(
            `REST ${spec.route}`,
            `an id that is ${label}`,
            spec.as,
            () => ({ method, path: spec.path(id), json: spec.json }),
            named,
        );
    }
}
for (const route of ["GET /products/:id", "PATCH /products/:id", "DELETE /products/:id"]) {
    const spec = ID_ROUTES.find(candidate => candidate.route === route)!;
    add(
        `REST ${route}`,
        "a deleted product",
        spec.as,
        fx => ({
            method: route.split(" ")[0],
            path: spec.path(fx.deletedProductId),
            json: spec.json,
        }),
        reject(404, "NOT_FOUND"),
    );
}
add(
    "REST GET /orders/:id",
    "another user's order",
    "user",
    fx => ({ method: "GET", path: `/api/orders/${fx.anotherOrderId}` }),
    reject(404, "NOT_FOUND"),
);
add(
    "REST GET /users/:id",
    "another user's profile",
    "user",
    fx => ({ method: "GET", path: `/api/users/${fx.anotherUserId}` }),
    reject(404, "NOT_FOUND"),
);
add(
    "REST GET /products/:id",
    "an id of 20,000 characters (over the URL limit)",
    "anonymous",
    () => ({
        method: "GET",
        path: `/api/products/${"9".repeat(20_000)}`,
    }),
    {
        reject: [414, 431],
        type: ["URI_TOO_LONG", "REQUEST_HEADER_FIELDS_TOO_LARGE"],
    },
);

// --- Query strings ---

const QUERY_CASES: [string, Caller, string, string, Expectation][] = [];
{
    const page = (route: string, as: Caller, base: string) => {
        for (const [label, query] of [
            ["pageSize 1000", "pageSize=1000"],
            ["pageSize 101", "pageSize=101"],
            ["pageSize 1e308", "pageSize=1e308"],
        ]) {
            QUERY_CASES.push([
                route,
                as,
                label,
                `${base}${query}`,
                {
                    accept: 200,
                    why: "a page size over 100 is capped at 100 (docs/api.md)",
                    verify: body => {
                        expectPage(body);
                        expectFields(body, { pageSize: 100 });
                    },
                },
            ]);
        }
        for (const [label, query] of [
            ["pageSize 0", "pageSize=0"],
            ["pageSize -1", "pageSize=-1"],
            ["pageSize 1.5", "pageSize=1.5"],
            ["pageSize abc", "pageSize=abc"],
            ["pageSize empty", "pageSize="],
            ["pageSize twice", "pageSize=10&pageSize=20"],
        ]) {
            QUERY_CASES.push([route, as, label, `${base}${query}`, invalid("pageSize")]);
        }
        for (const [label, query] of [
            ["page -1", "page=-1"],
            ["page 0", "page=0"],
            ["page abc", "page=abc"],
            ["page 1.5", "page=1.5"],
            ["page 2^53 + 1", "page=9007199254740993"],
            ["page 1e308", "page=1e308"],
            ["page as an array of two", "page[]=1&page[]=2"],
            ["page as an object", "page[$gt]=1"],
        ]) {
            QUERY_CASES.push([route, as, label, `${base}${query}`, invalid("page")]);
        }
    };
    page("GET /products", "anonymous", "/api/products?");
    page("GET /users", "admin", "/api/users?");
    page("GET /orders", "user", "/api/orders?");
    const products = (label: string, query: string, field: string) =>
        QUERY_CASES.push([
            "GET /products",
            "anonymous",
            label,
            `/api/products?${query}`,
            invalid(field),
        ]);
    for (const sort of [
        "DROP",
        "name;DROP TABLE products.products",
        "price desc",
        "-",
        "",
        "NAME",
        "id",
        "deleted_at",
    ]) {
        products(`sort ${JSON.stringify(sort)}`, `sort=${encodeURIComponent(sort)}`, "sort");
    }
    for (const field of ["minPrice", "maxPrice"]) {
        for (const value of [
            "abc",
            "-1",
            "1.5",
            "NaN",
            "Infinity",
            "1e308",
            "2147483648",
            "0x10x",
        ]) {
            products(`${field} ${value}`, `${field}=${value}`, field);
        }
    }
    for (const value of ["maybe", "2", "yes", "null", "TRUE!"])
        products(`inStock ${value}`, `inStock=${value}`, "inStock");
    products("search of 201 characters", `search=${repeat(201)}`, "search");
    products("search as an object", "search[$gt]=", "search");
    products("search as an array", "search[]=a&search[]=b", "search");
    products("category of 101 characters", `category=${repeat(101)}`, "category");
    products("category as an object", "category[$ne]=x", "category");
    const orders = (as: Caller, label: string, query: string, field: string) =>
        QUERY_CASES.push(["GET /orders", as, label, `/api/orders?${query}`, invalid(field)]);
    for (const status of ["FOO", "confirmed", "CONFIRMED' OR 1=1 --", ""]) {
        orders(
            "user",
            `status ${JSON.stringify(status)}`,
            `status=${encodeURIComponent(status)}`,
            "status",
        );
    }
    for (const userId of ["abc", "' OR 1=1 --", `${NOTHING}0`]) {
        orders(
            "admin",
            `userId ${JSON.stringify(userId)}`,
            `userId=${encodeURIComponent(userId)}`,
            "userId",
        );
    }
}
for (const [route, as, label, path, expect] of QUERY_CASES) {
    add(`REST ${route}`, `query ${label}`, as, () => ({ method: "GET", path }), expect);
}

const emptyPage = (body: Json) => expectFields(body, { total: 0, rows: [] });
/** Every product found has the text in its name or description, as typed: nothing more. */
const literally = (value: string) => (body: Json) => {
    expectPage(body);
    const needle = value.toLowerCase();
    for (const product of body.rows) {
        const found = `${product.name}\n${product.description ?? ""}`.toLowerCase();
        if (!found.includes(needle)) {
            throw new Error(`${JSON.stringify(value)} matched ${JSON.stringify(product)}`);
        }
    }
};
for (const [label, value] of [...INJECTIONS, ...ODD_TEXT, ["a backslash", "\\"]]) {
    add(
        "REST GET /products",
        `search for ${label}`,
        "anonymous",
        () => ({ method: "GET", path: `/api/products?search=${encodeURIComponent(value)}` }),
        {
            accept: 200,
            why: "search text is matched literally, wildcards and quotes included",
            verify: literally(value),
        },
    );
}
for (const [label, value] of INJECTIONS) {
    add(
        "REST GET /products",
        `category that is ${label}`,
        "anonymous",
        () => ({ method: "GET", path: `/api/products?category=${encodeURIComponent(value)}` }),
        {
            accept: 200,
            why: "a category is compared as text",
            verify: body => {
                expectPage(body);
                for (const product of body.rows) expectFields(product, { category: value });
            },
        },
    );
}
add(
    "REST GET /products",
    "search for a NUL",
    "anonymous",
    () => ({ method: "GET", path: "/api/products?search=%00" }),
    invalid("search"),
);
add(
    "REST GET /products",
    "minPrice above maxPrice",
    "anonymous",
    () => ({ method: "GET", path: "/api/products?minPrice=10&maxPrice=5" }),
    {
        accept: 200,
        why: "an empty range is a valid question with an empty answer",
        verify: emptyPage,
    },
);
add(
    "REST GET /products",
    "unknown parameters (role, userId, price)",
    "anonymous",
    () => ({
        method: "GET",
        path: `/api/products?role=admin&userId=${NOTHING}&price=0&deleted=true`,
    }),
    { accept: 200, why: "unknown query parameters are dropped", verify: body => expectPage(body) },
);
add(
    "REST GET /orders",
    "userId of another user, as a user",
    "user",
    fx => ({
        method: "GET",
        path: `/api/orders?userId=${fx.anotherUserId}`,
    }),
    {
        accept: 200,
        why: "the userId filter is an admin's: a user still sees only their own orders",
        verify: (body, fx) => {
            expectPage(body);
            for (const order of body.rows) expectFields(order, { userId: fx.userId });
        },
    },
);
add(
    "REST GET /orders",
    "userId of nothing, as an admin",
    "admin",
    () => ({ method: "GET", path: `/api/orders?userId=${NOTHING}` }),
    {
        accept: 200,
        why: "a valid filter that matches nothing",
        verify: emptyPage,
    },
);

// --- Tampered tokens ---

/** Where a forged token would do harm if accepted: each call is valid for an admin. */
const TOKEN_TARGETS: [string, (fx: Fixtures) => HttpCall][] = [
    ["REST GET /users/me", () => ({ method: "GET", path: "/api/users/me" })],
    ["REST GET /products", () => ({ method: "GET", path: "/api/products" })],
    [
        "REST POST /products",
        () => ({
            method: "POST",
            path: "/api/products",
            json: { name: "Forged", price: 1, stock: 1 },
        }),
    ],
    [
        "REST DELETE /products/:id",
        fx => ({ method: "DELETE", path: `/api/products/${fx.victimProductId}` }),
    ],
    [
        "REST PATCH /users/me",
        () => ({ method: "PATCH", path: "/api/users/me", json: { name: "Forged" } }),
    ],
    ["REST GET /users", () => ({ method: "GET", path: "/api/users" })],
    [
        "REST POST /orders",
        fx => ({
            method: "POST",
            path: "/api/orders",
            json: { items: [{ productId: fx.productId, quantity: 1 }] },
        }),
    ],
    ["GraphQL me", () => graphqlCall(`{ me { ${F.user} } }`)],
    [
        "GraphQL createProduct",
        () => graphqlCall('mutation { createProduct(input: { name: "Forged", price: 1 }) { id } }'),
    ],
    [
        "GraphQL deleteProduct",
        fx =>
            graphqlCall("mutation($id: ID!) { deleteProduct(id: $id) }", {
                id: fx.victimProductId,
            }),
    ],
];

for (const [target, call] of TOKEN_TARGETS) {
    for (const name of Object.keys(FORGERIES)) {
        const type = forgedTokenType(name);
        add(
            target,
            `a token with ${name}`,
            "anonymous",
            fx => {
                const request = call(fx);
                return {
                    ...request,
                    headers: { ...request.headers, Authorization: fx.forged[name] },
                };
            },
            target.startsWith("GraphQL") ? { graphql: type, status: 401 } : reject(401, type),
        );
    }
}

// --- GraphQL ---

function graphqlCall(query: string, variables?: Record<string, unknown>): HttpCall {
    return { method: "POST", path: "/graphql", json: { query, variables } };
}

function gql(
    field: string,
    label: string,
    as: Caller,
    query: string | ((fx: Fixtures) => string),
    variables: Record<string, unknown> | ((fx: Fixtures) => Record<string, unknown>) = {},
    type = "VALIDATION_ERROR",
    dataFieldName?: string,
): void {
    add(
        `GraphQL ${field}`,
        label,
        as,
        fx =>
            graphqlCall(
                typeof query === "function" ? query(fx) : query,
                typeof variables === "function" ? variables(fx) : variables,
            ),
        { graphql: type, field: dataFieldName },
    );
}

const VE = "VALIDATION_ERROR";
{
    gql("health", "an unknown argument", "anonymous", "{ health(x: 1) }");
    gql("health", "a selection on a string", "anonymous", "{ health { length } }");

    const register = "mutation($input: RegisterInput!) { register(input: $input) { id role } }";
    const person = {
        email: "corpus@example.com",
        password: "a fine long password",
        name: "Corpus",
    };
    // A new address each time, so that one registration let through can't hide the next.
    const fresh = (input: unknown) =>
        (input as Json)?.email === person.email
            ? {
                  ...(input as Json),
                  email: `corpus-${crypto.randomBytes(5).toString("hex")}@example.com`,
              }
            : input;
    const reg = (label: string, input: unknown, type = VE, field?: string) =>
        gql("register", label, "anonymous", register, () => ({ input: fresh(input) }), type, field);
    reg("input is a string", "str");
    reg("input is an array", [1]);
    reg("input is null", null);
    reg("email is missing", { password: person.password, name: person.name });
    reg("a role field", { ...person, role: "admin" });
    reg("an id field", { ...person, id: NOTHING });
    reg("email not an e-mail", { ...person, email: "x" }, VE, "email");
    reg("email is SQL injection", { ...person, email: "' OR 1=1 --" }, VE, "email");
    reg("password too short", { ...person, password: "short" }, VE, "password");
    reg("password of 129 characters", { ...person, password: repeat(129) }, VE, "password");
    reg("name empty", { ...person, name: "" }, VE, "name");
    reg("name of 101 characters", { ...person, name: repeat(101) }, VE, "name");
    reg("phone is a number", { ...person, phone: 5550100 });
    reg("address is a string", { ...person, address: "1 Main St" });
    reg(
        "address.line1 of 201 characters",
        { ...person, address: { line1: repeat(201) } },
        VE,
        "address.line1",
    );
    reg("address with a role", { ...person, address: { role: "admin" } });
    for (const [label, value] of UNSTORABLE)
        reg(`name with ${label}`, { ...person, name: value }, VE, "name");
    gql(
        "register",
        "the e-mail of an existing user",
        "anonymous",
        register,
        fx => ({ input: { ...person, email: fx.userEmail } }),
        "EMAIL_TAKEN",
    );
    gql(
        "register",
        "a literal with a role",
        "anonymous",
        'mutation { register(input: { email: "a@b.io", password: "12345678", name: "n", role: "admin" }) { id } }',
    );

    const login = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";
    gql("login", "email is an operator object", "anonymous", login, {
        input: { email: { $gt: "" }, password: "x" },
    });
    gql(
        "login",
        "password empty",
        "anonymous",
        login,
        fx => ({ input: { email: fx.userEmail, password: "" } }),
        VE,
        "password",
    );
    gql("login", "password is missing", "anonymous", login, fx => ({
        input: { email: fx.userEmail },
    }));
    gql("login", "a role field", "anonymous", login, fx => ({
        input: { email: fx.userEmail, password: "x", role: "admin" },
    }));
    gql(
        "login",
        "a wrong password",
        "anonymous",
        login,
        fx => ({ input: { email: fx.userEmail, password: "not the password" } }),
        "INVALID_CREDENTIALS",
    );
    for (const [label, value] of INJECTIONS.slice(0, 3)) {
        gql(
            "login",
            `an e-mail that is ${label}`,
            "anonymous",
            login,
            { input: { email: value, password: "x" } },
            "INVALID_CREDENTIALS",
        );
    }
    for (const [label, value] of UNSTORABLE) {
        gql(
            "login",
            `an e-mail that is ${label}`,
            "anonymous",
            login,
            { input: { email: value, password: "x" } },
            VE,
            "email",
        );
    }

    const refresh = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }";
    const logout = "mutation($t: String!) { logout(refreshToken: $t) }";
    for (const [field, query] of [
        ["refreshToken", refresh],
        ["logout", logout],
    ]) {
        gql(field, "an empty token", "anonymous", query, { t: "" }, VE, "refreshToken");
        gql(
            field,
            "a token of 257 characters",
            "anonymous",
            query,
            { t: repeat(257) },
            VE,
            "refreshToken",
        );
        gql(field, "a token that is a number", "anonymous", query, { t: 12345 });
        gql(field, "a null token", "anonymous", query, { t: null });
        gql(
            field,
            "no token",
            "anonymous",
            query
                .replace("$t: String!", "$t: String")
                .replace("refreshToken: $t", "refreshToken: null"),
        );
    }
    for (const [label, value] of [...INJECTIONS.slice(0, 3), ["garbage", "garbage"]]) {
        gql(
            "refreshToken",
            `a token that is ${label}`,
            "anonymous",
            refresh,
            { t: value },
            "UNAUTHORIZED",
        );
    }

    gql("me", "an argument", "user", '{ me(id: "x") { id } }');
    gql("me", "a field that isn't the user's (passwordHash)", "user", "{ me { id passwordHash } }");

    const profile =
        "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id role } }";
    const prof = (label: string, input: unknown, field?: string) =>
        gql("updateProfile", label, "user", profile, { input }, VE, field);
    prof("name empty", { name: "" }, "name");
    prof("name null", { name: null }, "name");
    prof("name of 101 characters", { name: repeat(101) }, "name");
    prof("phone of 33 characters", { phone: repeat(33) }, "phone");
    prof("address.line1 of 201 characters", { address: { line1: repeat(201) } }, "address.line1");
    prof("address is a string", { address: "x" });
    prof("a role field", { role: "admin" });
    prof("an email field", { email: "x@evil.example" });
    for (const [label, value] of UNSTORABLE) prof(`name with ${label}`, { name: value }, "name");
    for (const [label, value] of UNSTORABLE)
        prof(`address.city with ${label}`, { address: { city: value } }, "address.city");

    const password = "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";
    const pw = (label: string, input: unknown, field?: string) =>
        gql("changePassword", label, "user", password, { input }, VE, field);
    pw(
        "a wrong current password",
        { currentPassword: "not the password", newPassword: "a new long password" },
        "currentPassword",
    );
    pw("a new password too short", { currentPassword: "x", newPassword: "short" }, "newPassword");
    pw(
        "a new password of 129 characters",
        { currentPassword: "x", newPassword: repeat(129) },
        "newPassword",
    );
    pw("a userId field", {
        currentPassword: "x",
        newPassword: "a new long password",
        userId: NOTHING,
    });
    pw("no new password", { currentPassword: "x" });

    const pages: [string, string, string, string?][] = [
        ["pageSize 0", "pageSize: 0", VE, "pageSize"],
        ["page 0", "page: 0", VE, "page"],
        ["page -1", "page: -1", VE, "page"],
        ["pageSize 2^31", "pageSize: 2147483648", VE],
        ["page as a string", 'page: "2"', VE],
        ["page 1.5", "page: 1.5", VE],
    ];
    for (const [label, args, type, field] of pages) {
        gql("users", label, "admin", `{ users(${args}) { total } }`, {}, type, field);
        gql("products", label, "anonymous", `{ products(${args}) { total } }`, {}, type, field);
        gql("orders", label, "user", `{ orders(${args}) { total } }`, {}, type, field);
    }
    gql(
        "users",
        "a bad page as a user",
        "user",
        "{ users(pageSize: 0) { total } }",
        {},
        "FORBIDDEN",
    );

    const ids: [string, (fx: Fixtures) => unknown, string, string?][] = [
        ["an id that is not a uuid", () => "abc", VE, "id"],
        ["an id that is SQL injection", () => "' OR 1=1 --", VE, "id"],
        ["an id that is path traversal", () => "../../etc/passwd", VE, "id"],
        ["an id of 5000 characters", () => "9".repeat(5000), VE, "id"],
        ["an id that is a number", () => 123, VE, "id"],
        ["a null id", () => null, VE],
        ["an id of nothing", () => NOTHING, "NOT_FOUND"],
    ];
    const byId: [string, Caller, string][] = [
        ["user", "admin", `query($id: ID!) { user(id: $id) { id } }`],
        ["product", "anonymous", `query($id: ID!) { product(id: $id) { id } }`],
        ["deleteProduct", "admin", "mutation($id: ID!) { deleteProduct(id: $id) }"],
        [
            "updateProduct",
            "admin",
            "mutation($id: ID!) { updateProduct(id: $id, input: { price: 1 }) { id } }",
        ],
        ["order", "user", `query($id: ID!) { order(id: $id) { id } }`],
        ["cancelOrder", "user", "mutation($id: ID!) { cancelOrder(id: $id) { id } }"],
        [
            "updateOrderStatus",
            "admin",
            "mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { id } }",
        ],
        [
            "updateInventory",
            "admin",
            "mutation($id: ID!) { updateInventory(input: { productId: $id, op: ADD, quantity: 1 }) { id } }",
        ],
    ];
    for (const [field, as, query] of byId) {
        for (const [label, id, type, name] of ids) {
            const reported = field === "updateInventory" && name ? "productId" : name;
            gql(field, label, as, query, fx => ({ id: id(fx) }), type, reported);
        }
    }
    for (const field of ["product", "deleteProduct", "updateProduct", "updateInventory"]) {
        const [, as, query] = byId.find(([name]) => name === field)!;
        gql(
            field,
            "a deleted product",
            as,
            query,
            fx => ({ id: fx.deletedProductId }),
            "NOT_FOUND",
        );
    }
    gql(
        "order",
        "another user's order",
        "user",
        "query($id: ID!) { order(id: $id) { id } }",
        fx => ({ id: fx.anotherOrderId }),
        "NOT_FOUND",
    );
    gql(
        "user",
        "another user's profile",
        "user",
        "query($id: ID!) { user(id: $id) { id } }",
        fx => ({ id: fx.anotherUserId }),
        "NOT_FOUND",
    );
    gql(
        "cancelOrder",
        "another user's order",
        "user",
        "mutation($id: ID!) { cancelOrder(id: $id) { id } }",
        fx => ({ id: fx.anotherOrderId }),
        "NOT_FOUND",
    );
    gql(
        "cancelOrder",
        "an order already cancelled",
        "user",
        "mutation($id: ID!) { cancelOrder(id: $id) { id } }",
        fx => ({ id: fx.cancelledOrderId }),
        "INVALID_TRANSITION",
    );

    const listProducts = (label: string, args: string, field?: string) =>
        gql("products", label, "anonymous", `{ products(${args}) { total } }`, {}, VE, field);
    listProducts("sort DROP", 'sort: "DROP"', "sort");
    listProducts("sort with SQL", 'sort: "name; DROP TABLE products.products"', "sort");
    listProducts("minPrice -1", "minPrice: -1", "minPrice");
    listProducts("minPrice 1.5", "minPrice: 1.5");
    listProducts("maxPrice 2^31", "maxPrice: 2147483648");
    listProducts("maxPrice above the largest price", "maxPrice: 1000000001", "maxPrice");
    listProducts("search of 201 characters", `search: "${repeat(201)}"`, "search");
    listProducts("category of 101 characters", `category: "${repeat(101)}"`, "category");
    listProducts("inStock maybe", 'inStock: "maybe"');
    listProducts("inStock 1", "inStock: 1");

    const create = "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }";
    const product = { name: "Corpus product", price: 999 };
    const mk = (label: string, input: unknown, field?: string) =>
        gql("createProduct", label, "admin", create, { input }, VE, field);
    mk("price -1", { ...product, price: -1 }, "price");
    mk("price 1.5", { ...product, price: 1.5 });
    mk("price 2^31", { ...product, price: 2 ** 31 });
    mk("price a numeric string", { ...product, price: "12" });
    mk("price above the largest", { ...product, price: 1_000_000_001 }, "price");
    mk("price missing", { name: "x" });
    mk("name empty", { ...product, name: "" }, "name");
    mk("name of 201 characters", { ...product, name: repeat(201) }, "name");
    mk("stock -1", { ...product, stock: -1 }, "stock");
    mk("stock 1.5", { ...product, stock: 1.5 });
    mk("description of 5001 characters", { ...product, description: repeat(5001) }, "description");
    mk("category empty", { ...product, category: "" }, "category");
    mk("a role field", { ...product, role: "admin" });
    mk("an id field", { ...product, id: NOTHING });
    mk("a currency field", { ...product, currency: "EUR" });
    for (const [label, value] of UNSTORABLE)
        mk(`name with ${label}`, { ...product, name: value }, "name");
    gql(
        "createProduct",
        "a valid product as a user",
        "user",
        create,
        { input: product },
        "FORBIDDEN",
    );

    const update =
        "mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id } }";
    const upd = (label: string, input: unknown, field?: string) =>
        gql(
            "updateProduct",
            label,
            "admin",
            update,
            fx => ({ id: fx.productId, input }),
            VE,
            field,
        );
    upd("price -1", { price: -1 }, "price");
    upd("price null", { price: null }, "price");
    upd("name null", { name: null }, "name");
    upd("name empty", { name: "" }, "name");
    upd("a stock field", { stock: 5 });
    upd("input is a list", [{ price: 1 }]);
    for (const [label, value] of UNSTORABLE)
        upd(`description with ${label}`, { description: value }, "description");

    const inventory = "mutation($input: InventoryInput!) { updateInventory(input: $input) { id } }";
    const inv = (label: string, input: (fx: Fixtures) => unknown, type = VE, field?: string) =>
        gql(
            "updateInventory",
            label,
            "admin",
            inventory,
            fx => ({ input: input(fx) }),
            type,
            field,
        );
    inv("op as a lower-case string", fx => ({ productId: fx.productId, op: "add", quantity: 1 }));
    inv("op DROP", fx => ({ productId: fx.productId, op: "DROP", quantity: 1 }));
    inv(
        "quantity -1",
        fx => ({ productId: fx.productId, op: "ADD", quantity: -1 }),
        VE,
        "quantity",
    );
    inv(
        "quantity above the largest",
        fx => ({ productId: fx.productId, op: "SET", quantity: 1_000_001 }),
        VE,
        "quantity",
    );
    inv("quantity 1.5", fx => ({ productId: fx.productId, op: "ADD", quantity: 1.5 }));
    inv("a price field", fx => ({ productId: fx.productId, op: "ADD", quantity: 1, price: 0 }));
    inv(
        "subtract more than the stock",
        fx => ({ productId: fx.lowStockProductId, op: "SUBTRACT", quantity: 3 }),
        "INSUFFICIENT_STOCK",
    );
    gql(
        "updateInventory",
        "op as an inline string",
        "admin",
        fx =>
            `mutation { updateInventory(input: { productId: "${fx.productId}", op: "ADD", quantity: 1 }) { id } }`,
    );

    const place =
        "mutation($input: PlaceOrderInput!, $key: String) { placeOrder(input: $input, idempotencyKey: $key) { id } }";
    const order = (
        label: string,
        input: (fx: Fixtures) => unknown,
        type = VE,
        field?: string,
        key?: string,
    ) => gql("placeOrder", label, "user", place, fx => ({ input: input(fx), key }), type, field);
    const line = (fx: Fixtures, quantity = 1) => ({ productId: fx.productId, quantity });
    order("no items", () => ({ items: [] }), VE, "items");
    order("quantity 0", fx => ({ items: [line(fx, 0)] }), VE, "items[0].quantity");
    order("quantity 1001", fx => ({ items: [line(fx, 1001)] }), VE, "items[0].quantity");
    order("quantity -1", fx => ({ items: [line(fx, -1)] }), VE, "items[0].quantity");
    order("quantity 2^31", fx => ({ items: [line(fx, 2 ** 31)] }));
    order(
        "a productId that is not a uuid",
        () => ({ items: [{ productId: "x", quantity: 1 }] }),
        VE,
        "items[0].productId",
    );
    order(
        "a product of nothing",
        () => ({ items: [{ productId: NOTHING, quantity: 1 }] }),
        VE,
        "items[0].productId",
    );
    order(
        "a deleted product",
        fx => ({ items: [{ productId: fx.deletedProductId, quantity: 1 }] }),
        VE,
        "items[0].productId",
    );
    order(
        "51 items",
        () => ({
            items: Array.from({ length: 51 }, () => ({
                productId: crypto.randomUUID(),
                quantity: 1,
            })),
        }),
        VE,
        "items",
    );
    order(
        "the same product twice",
        fx => ({ items: [line(fx), line(fx)] }),
        VE,
        "items[1].productId",
    );
    order("a userId field", fx => ({ items: [line(fx)], userId: NOTHING }));
    order("a unitPrice on an item", fx => ({ items: [{ ...line(fx), unitPrice: 0 }] }));
    order(
        "more than the stock",
        fx => ({ items: [{ productId: fx.lowStockProductId, quantity: 3 }] }),
        "INSUFFICIENT_STOCK",
    );
    order(
        "one item available and one short",
        fx => ({ items: [line(fx), { productId: fx.lowStockProductId, quantity: 3 }] }),
        "INSUFFICIENT_STOCK",
    );
    order("an empty idempotency key", fx => ({ items: [line(fx)] }), VE, "idempotencyKey", "");
    order(
        "an idempotency key of 256 characters",
        fx => ({ items: [line(fx)] }),
        VE,
        "idempotencyKey",
        repeat(256),
    );

    const listOrders = (label: string, args: string, as: Caller = "user", field?: string) =>
        gql("orders", label, as, `{ orders(${args}) { total } }`, {}, VE, field);
    listOrders("status FOO", "status: FOO");
    listOrders("status as a string", 'status: "CONFIRMED"');
    listOrders("status in lower case", "status: confirmed");
    listOrders("userId not a uuid", 'userId: "abc"', "admin", "userId");
    listOrders("userId SQL injection", 'userId: "\' OR 1=1 --"', "admin", "userId");

    const status =
        "mutation($id: ID!, $status: OrderStatus!) { updateOrderStatus(id: $id, status: $status) { id } }";
    for (const to of ["PENDING", "CONFIRMED", "REJECTED", "DELIVERED"]) {
        gql(
            "updateOrderStatus",
            `CONFIRMED to ${to}`,
            "admin",
            status,
            fx => ({ id: fx.orderId, status: to }),
            "INVALID_TRANSITION",
        );
    }
    gql(
        "updateOrderStatus",
        "CANCELLED to SHIPPED",
        "admin",
        status,
        fx => ({ id: fx.cancelledOrderId, status: "SHIPPED" }),
        "INVALID_TRANSITION",
    );
    gql("updateOrderStatus", "status FOO", "admin", status, fx => ({
        id: fx.orderId,
        status: "FOO",
    }));
    gql("updateOrderStatus", "status in lower case", "admin", status, fx => ({
        id: fx.orderId,
        status: "shipped",
    }));
    gql(
        "updateOrderStatus",
        "a user shipping their own order",
        "user",
        status,
        fx => ({ id: fx.orderId, status: "SHIPPED" }),
        "FORBIDDEN",
    );
}

// --- GraphQL requests that aren't GraphQL ---

{
    const document = (label: string, call: (fx: Fixtures) => HttpCall, expect: Expectation) =>
        add("GraphQL (request)", label, "anonymous", call, expect);
    const body = (json: unknown) => (): HttpCall => ({ method: "POST", path: "/graphql", json });
    const bad = { graphql: "INVALID_REQUEST_BODY" };
    const rawBody = (text: string) => (): HttpCall => ({
        method: "POST",
        path: "/graphql",
        raw: text,
        headers: { "Content-Type": "application/json" },
    });
    document("a syntax error", body({ query: "{ products { total " }), bad);
    document("only spaces", body({ query: "   " }), bad);
    document("5000 opening braces", body({ query: "{".repeat(5000) }), bad);
    document("an empty query", body({ query: "" }), bad);
    document("no query", body({}), bad);
    document("a null query", body({ query: null }), bad);
    document("a query that is a number", body({ query: 123 }), bad);
    document("a query that is a list", body({ query: ["{ health }"] }), bad);
    document("variables that are a string", body({ query: "{ health }", variables: "x" }), bad);
    document("extensions that are a string", body({ query: "{ health }", extensions: "x" }), bad);
    document("an empty batch", body([]), bad);
    document("a batch of a number", body([1]), bad);
    document("a field that doesn't exist", body({ query: "{ nope }" }), { graphql: VE });
    document("a subscription", body({ query: "subscription { health }" }), { graphql: VE });
    document(
        "two operations and no name",
        body({ query: "query A { health } query B { health }" }),
        { graphql: VE },
    );
    document("an unknown operation name", body({ query: "{ health }", operationName: "Nope" }), {
        graphql: VE,
    });
    document("a query over the body limit", body({ query: `{ health }${" ".repeat(BIG)}` }), {
        graphql: "PAYLOAD_TOO_LARGE",
    });
    for (const [label, text] of MALFORMED_JSON)
        document(`malformed JSON: ${label}`, rawBody(text), bad);
    for (const [label, headers, encode] of WRONG_CONTENT_TYPES) {
        document(
            `a query as ${label}`,
            () => ({
                method: "POST",
                path: "/graphql",
                headers,
                raw: encode(JSON.stringify({ query: "{ health }" })),
            }),
            { graphql: "INVALID_REQUEST_BODY" },
        );
    }
    document(
        "a mutation over GET",
        () => ({
            method: "GET",
            path: `/graphql?query=${encodeURIComponent('mutation { logout(refreshToken: "x") }')}`,
        }),
        { reject: [400, 405], type: ["INVALID_REQUEST_BODY", "METHOD_NOT_ALLOWED"] },
    );
    // GET is the playground's (API.md): a query over GET may be refused as a method (405).
    document("GET without a query", () => ({ method: "GET", path: "/graphql?variables=%7B" }), {
        reject: [400, 405],
        type: ["INVALID_REQUEST_BODY", "METHOD_NOT_ALLOWED"],
    });
}

export const CASES: readonly BadInputCase[] = cases;

/** The GraphQL query so costly to validate that it must be refused, not answered (see test). */
export const COSTLY_GRAPHQL_QUERY = `{ products { rows { ${"id ".repeat(5000)}} } }`;

// --- Accepted writes ---

function expectFields(value: Json, expected: Record<string, unknown>): void {
    for (const [key, wanted] of Object.entries(expected)) {
        if (JSON.stringify(value?.[key]) !== JSON.stringify(wanted)) {
            throw new Error(
                `'${key}' must be ${JSON.stringify(wanted)}; got ${JSON.stringify(value)?.slice(0, 600)}`,
            );
        }
    }
}

function expectPage(value: Json): void {
    if (!Array.isArray(value?.rows) || typeof value.total !== "number") {
        throw new Error(`expected a page; got ${JSON.stringify(value)?.slice(0, 600)}`);
    }
}

const writes: AcceptedWrite[] = [];

function write(
    target: string,
    name: string,
    as: Caller,
    why: string,
    status: number,
    call: AcceptedWrite["call"],
    verify: AcceptedWrite["verify"],
) {
    writes.push({ name: `${target}: ${name}`, target, as, why, status, call, verify });
}

{
    const unique = () => crypto.randomBytes(5).toString("hex");
    write(
        "REST POST /auth/register",
        "role admin, an id and timestamps of its own",
        "anonymous",
        "unknown fields are dropped: the account is a plain user with its own id",
        201,
        () => ({
            method: "POST",
            path: "/api/auth/register",
            json: {
                email: `role-${unique()}@example.com`,
                password: "a fine long password",
                name: "Mallory",
                role: "admin",
                id: NOTHING,
                createdAt: "2000-01-01T00:00:00.000Z",
            },
        }),
        user => {
            expectFields(user, { role: "user", name: "Mallory" });
            if (user.id === NOTHING || user.createdAt.startsWith("2000"))
                throw new Error(`kept a field it must drop: ${JSON.stringify(user)}`);
        },
    );
    for (const [label, value] of [...ODD_TEXT, ...INJECTIONS]) {
        write(
            "REST POST /auth/register",
            `a name that is ${label}`,
            "anonymous",
            "any text is a name; it is stored and returned as sent",
            201,
            () => ({
                method: "POST",
                path: "/api/auth/register",
                json: {
                    email: `odd-${unique()}@example.com`,
                    password: "a fine long password",
                    name: value,
                },
            }),
            user => expectFields(user, { name: value.trim() }),
        );
        write(
            "REST POST /products",
            `a name that is ${label}`,
            "admin",
            "any text is a product name; it is stored and returned as sent",
            201,
            () => ({
                method: "POST",
                path: "/api/products",
                json: { name: value, price: 100, description: value, category: value },
            }),
            product =>
                expectFields(product, {
                    name: value.trim(),
                    description: value,
                    category: value.trim(),
                }),
        );
    }
    write(
        "GraphQL createProduct",
        "a name that is SQL injection",
        "admin",
        "any text is a product name",
        200,
        () =>
            graphqlCall(
                "mutation($input: CreateProductInput!) { createProduct(input: $input) { name } }",
                {
                    input: { name: "' OR 1=1 --", price: 1 },
                },
            ),
        body => expectFields(body.data.createProduct, { name: "' OR 1=1 --" }),
    );
    write(
        "REST PATCH /users/me",
        "role admin, another e-mail and id beside a new name",
        "user",
        "unknown fields are dropped: only the name changes",
        200,
        () => ({
            method: "PATCH",
            path: "/api/users/me",
            json: { name: "Still me", role: "admin", email: "evil@example.com", id: NOTHING },
        }),
        (user, fx) =>
            expectFields(user, {
                id: fx.userId,
                name: "Still me",
                role: "user",
                email: fx.userEmail,
            }),
    );
    write(
        "REST POST /products",
        "an id, a currency, timestamps and deletedAt of its own",
        "admin",
        "unknown fields are dropped: the shop decides ids, currency and times",
        201,
        () => ({
            method: "POST",
            path: "/api/products",
            json: {
                name: `Own fields ${unique()}`,
                price: 100,
                id: NOTHING,
                currency: "EUR",
                createdAt: "2000-01-01T00:00:00.000Z",
                deletedAt: "2000-01-01T00:00:00.000Z",
            },
        }),
        product => {
            expectFields(product, { currency: "USD", price: 100 });
            if (product.id === NOTHING || product.createdAt.startsWith("2000"))
                throw new Error(`kept a field it must drop: ${JSON.stringify(product)}`);
        },
    );
    write(
        "REST POST /products",
        "stock null",
        "admin",
        "stock is optional: null is no stock given, so 0",
        201,
        () => ({
            method: "POST",
            path: "/api/products",
            json: { name: `No stock ${unique()}`, price: 100, stock: null },
        }),
        product => expectFields(product, { stock: 0 }),
    );
    write(
        "REST POST /products",
        "price -0",
        "admin",
        "-0 is 0, a valid price",
        201,
        () => ({
            method: "POST",
            path: "/api/products",
            raw: encodeJson({ name: `Free ${unique()}`, price: rawNumber("-0") }),
            headers: { "Content-Type": "application/json" },
        }),
        product => expectFields(product, { price: 0 }),
    );
    write(
        "REST PATCH /products/:id",
        "a stock, a currency and an id in the body",
        "admin",
        "stock changes only through inventory; unknown fields are dropped",
        200,
        fx => ({
            method: "PATCH",
            path: `/api/products/${fx.lowStockProductId}`,
            json: { description: "restocked?", stock: 999_999, currency: "EUR", id: NOTHING },
        }),
        (product, fx) =>
            expectFields(product, {
                id: fx.lowStockProductId,
                stock: 2,
                currency: "USD",
                description: "restocked?",
            }),
    );
    write(
        "REST POST /products/:productId/inventory",
        "another productId, a price and a stock in the body",
        "admin",
        "the product is the path's; price and stock fields are dropped",
        200,
        fx => ({
            method: "POST",
            path: `/api/products/${fx.lowStockProductId}/inventory`,
            json: { op: "add", quantity: 0, productId: fx.productId, price: 0, stock: 999_999 },
        }),
        (product, fx) => expectFields(product, { id: fx.lowStockProductId, stock: 2, price: 1250 }),
    );
    write(
        "REST POST /orders",
        "another user's id, prices, a total and a status of its own",
        "user",
        "identity comes from the token and prices from the catalogue",
        201,
        fx => ({
            method: "POST",
            path: "/api/orders",
            json: {
                items: [
                    {
                        productId: fx.productId,
                        quantity: 2,
                        unitPrice: 1,
                        name: "Free",
                        lineTotal: 0,
                    },
                ],
                userId: fx.anotherUserId,
                total: 0,
                status: "DELIVERED",
                currency: "XXX",
            },
        }),
        (order, fx) => {
            expectFields(order, {
                userId: fx.userId,
                status: "CONFIRMED",
                total: 2500,
                currency: "USD",
            });
            expectFields(order.items[0], { unitPrice: 1250, quantity: 2, lineTotal: 2500 });
            if (order.items[0].name === "Free")
                throw new Error(`kept the client's name: ${JSON.stringify(order)}`);
        },
    );
    write(
        "REST PATCH /orders/:id/status",
        "a userId and a total beside the status",
        "admin",
        "only the status moves",
        200,
        fx => ({
            method: "PATCH",
            path: `/api/orders/${fx.orderId}/status`,
            json: { status: "SHIPPED", userId: fx.anotherUserId, total: 0 },
        }),
        (order, fx) =>
            expectFields(order, {
                id: fx.orderId,
                status: "SHIPPED",
                userId: fx.userId,
                total: 1250,
            }),
    );
}

export const ACCEPTED_WRITES: readonly AcceptedWrite[] = writes;

// --- Checking answers ---

export interface Answer {
    status: number;
    text: string;
    body: Json;
}

function describe(answer: Answer): string {
    return `${answer.status} ${answer.text.slice(0, 800)}`;
}

/** Throws, saying why, unless `answer` is what `expect` says it must be. */
export function checkAnswer(expect: Expectation, answer: Answer, fx: Fixtures): void {
    if (answer.status >= 500) throw new Error(`a server error for bad input: ${describe(answer)}`);
    if ("accept" in expect) {
        if (answer.status !== expect.accept)
            throw new Error(`expected ${expect.accept} (${expect.why}); got ${describe(answer)}`);
        expect.verify?.(answer.body, fx);
        return;
    }
    if ("reject" in expect) {
        const statuses = [expect.reject].flat();
        if (!statuses.includes(answer.status))
            throw new Error(`expected ${statuses.join(" or ")}; got ${describe(answer)}`);
        contractError(answer.body, answer.status, expect.type);
        if (expect.field) namesField(answer.body.data, expect.field, answer);
        return;
    }
    const errors = answer.body?.errors;
    if (Array.isArray(errors)) {
        const [first] = errors;
        const status = first?.extensions?.status;
        if (first?.extensions?.code !== expect.graphql || !(status >= 400 && status < 500)) {
            throw new Error(`expected a GraphQL ${expect.graphql} error; got ${describe(answer)}`);
        }
        if (expect.status !== undefined && status !== expect.status) {
            throw new Error(
                `expected status ${expect.status} in extensions; got ${describe(answer)}`,
            );
        }
        const data = answer.body.data;
        if (data && Object.values(data).some(value => value !== null)) {
            throw new Error(`a refused GraphQL call must not answer data; got ${describe(answer)}`);
        }
        if (expect.field) namesField(first.extensions.data, expect.field, answer);
        return;
    }
    if (!(answer.status >= 400 && answer.status < 500)) {
        throw new Error(`expected a GraphQL ${expect.graphql} error; got ${describe(answer)}`);
    }
    // Refused before GraphQL saw it (token, body): the REST contract error.
    if (expect.status !== undefined && answer.status !== expect.status) {
        throw new Error(`expected ${expect.status}; got ${describe(answer)}`);
    }
    contractError(answer.body, answer.status, expect.graphql);
}

function namesField(data: Json, field: string, answer: Answer): void {
    const named = (name: unknown) =>
        typeof name === "string" &&
        (name === field || name.startsWith(`${field}.`) || name.startsWith(`${field}[`));
    if (!Array.isArray(data) || !data.some(problem => named(problem?.field))) {
        throw new Error(`expected a 422 naming '${field}'; got ${describe(answer)}`);
    }
}
