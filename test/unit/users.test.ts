/**
 * The users service on one broker and a real PostgreSQL: accounts, sessions, profiles, roles.
 */
import crypto from "node:crypto";
import bcrypt from "bcryptjs";
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
import { createTestBroker } from "../support/broker";
import { createTestDatabase, type TestDatabase } from "../support/database";
import { waitFor } from "../support/wait";
import { readConfig } from "../../lib/config";
import { verifyAccessToken } from "../../lib/access-token";
import { keyIdOf } from "../../lib/jwt-keys";
import { passwordCost } from "../../services/users/passwords";
import type {
    ChannelEvent,
    AuthUser,
    Page,
    RequestMeta,
    TokenPair,
    User,
    UserProfileUpdatedEvent,
} from "../../types";
import { rsaKeyPair } from "../support/keys";

const ADMIN_EMAIL = "Boss@Agora.Test";
const ADMIN_PASSWORD = "the-boss-password";
const PASSWORD = "correct horse battery";

const keyPair = rsaKeyPair();
const publicKeys = { [keyIdOf(keyPair.publicKey)]: keyPair.publicKey };

let db: TestDatabase;
let pg: Client;
let broker: ServiceBroker;
const savedEnv = { ...process.env };
const profileEvents: UserProfileUpdatedEvent[] = [];

interface Session {
    user: User;
    tokens: TokenPair;
    /** What the gateway puts in `ctx.meta` for this session's access token. */
    meta: RequestMeta & { user: AuthUser };
}

let counter = 0;
function uniqueEmail(label: string): string {
    counter += 1;
    return `${label}-${counter}-${crypto.randomBytes(3).toString("hex")}@example.com`;
}

function call<T>(action: string, params: object = {}, meta: RequestMeta = {}): Promise<T> {
    return broker.call<T, object>(`users.${action}`, params, { meta });
}

function register(overrides: Record<string, unknown> = {}): Promise<User> {
    return call<User>("register", {
        email: uniqueEmail("user"),
        password: PASSWORD,
        name: "Ada Lovelace",
        ...overrides,
    });
}

function sessionOf(tokens: TokenPair): Session {
    const user = verifyAccessToken(tokens.accessToken, publicKeys, readConfig());
    return { user: tokens.user, tokens, meta: { user } };
}

async function login(email: string, password = PASSWORD): Promise<Session> {
    return sessionOf(await call<TokenPair>("login", { email, password }));
}

async function signUp(overrides: Record<string, unknown> = {}): Promise<Session> {
    const user = await register(overrides);
    return login(user.email, (overrides.password as string) ?? PASSWORD);
}

async function userCount(): Promise<number> {
    const result = await pg.query("SELECT count(*)::int AS n FROM users.users");
    return result.rows[0].n;
}

async function storedRow(id: string) {
    const result = await pg.query("SELECT * FROM users.users WHERE id = $1", [id]);
    return result.rows[0];
}

function expectNoSecrets(answer: unknown): void {
    const text = JSON.stringify(answer);
    expect(text).not.toMatch(/password/i);
    expect(text).not.toMatch(/\$2[aby]\$/);
}

/** Lets a locally emitted event reach its listener. */

const validation = { code: 422, type: "VALIDATION_ERROR" };
const unauthorized = { code: 401, type: "UNAUTHORIZED" };

beforeAll(async () => {
    db = await createTestDatabase();
    Object.assign(process.env, {
        DATABASE_URL: db.url,
        JWT_PRIVATE_KEY: keyPair.privateKey,
        JWT_PUBLIC_KEY: keyPair.publicKey,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    });
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    broker = createTestBroker({ services: ["users"] });
    broker.createService({
        name: "profile-listener",
        channels: {
            "user.profileUpdated": {
                group: "profile-listener",
                handler(event: ChannelEvent<UserProfileUpdatedEvent>) {
                    profileEvents.push(event.data);
                },
            },
        },
    });
    await broker.start();
});

afterAll(async () => {
    await broker?.stop();
    await pg?.end();
    await db?.drop();
    process.env = savedEnv;
});

describe("register", () => {
    it("creates a plain user with a lowercased email and answers 201", async () => {
        const meta: RequestMeta = {};
        const user = await call<User>(
            "register",
            {
                email: "  Grace.Hopper@Example.COM ",
                password: PASSWORD,
                name: "  Grace Hopper ",
                phone: "+1 555 0100",
                address: { line1: "1 Navy Way", city: "Arlington", country: "US" },
            },
            meta,
        );
        expect(meta.$statusCode).toBe(201);
        expect(user).toEqual({
            id: expect.stringMatching(/^[0-9a-f-]{36}$/),
            email: "grace.hopper@example.com",
            name: "Grace Hopper",
            role: "user",
            phone: "+1 555 0100",
            address: {
                line1: "1 Navy Way",
                line2: null,
                city: "Arlington",
                postalCode: null,
                country: "US",
            },
            createdAt: expect.any(String),
            updatedAt: expect.any(String),
        });
        expect(new Date(user.createdAt).toISOString()).toBe(user.createdAt);
        expectNoSecrets(user);
    });

    it("stores a bcrypt hash of cost 10, never the password itself", async () => {
        const user = await register();
        const row = await storedRow(user.id);
        expect(row.password_hash).toMatch(/^\$2[aby]\$10\$/);
        expect(row.password_hash).not.toContain(PASSWORD);
        expect(await bcrypt.compare(PASSWORD, row.password_hash)).toBe(true);
    });

    it("ignores a role in the body: register never makes an admin", async () => {
        const user = await register({ role: "admin" });
        expect(user.role).toBe("user");
        expect((await storedRow(user.id)).role).toBe("user");
    });

    it("answers 409 EMAIL_TAKEN for an address already registered in another case", async () => {
        const email = uniqueEmail("taken");
        await register({ email });
        const before = await userCount();
        await expect(register({ email: email.toUpperCase() })).rejects.toMatchObject({
            code: 409,
            type: "EMAIL_TAKEN",
        });
        expect(await userCount()).toBe(before);
    });

    it("lets only one of two simultaneous registrations of one address through", async () => {
        const email = uniqueEmail("race");
        const results = await Promise.allSettled([
            register({ email }),
            register({ email: email.toUpperCase() }),
        ]);
        expect(results.filter(r => r.status === "fulfilled")).toHaveLength(1);
        const rejected = results.find(r => r.status === "rejected") as PromiseRejectedResult;
        expect(rejected.reason).toMatchObject({ code: 409, type: "EMAIL_TAKEN" });
    });

    it.each([
        ["a missing email", { email: undefined }],
        ["a missing password", { password: undefined }],
        ["a missing name", { name: undefined }],
        ["an email that is not text", { email: 42 }],
        ["a malformed email", { email: "not-an-email" }],
        ["an email over 254 characters", { email: `${"a".repeat(250)}@example.com` }],
        ["a password under 8 characters", { password: "short12" }],
        ["a password over 128 characters", { password: "p".repeat(129) }],
        ["a password that is not text", { password: 12345678 }],
        ["a blank name", { name: "    " }],
        ["a name over 100 characters", { name: "n".repeat(101) }],
        ["a phone over 32 characters", { phone: "1".repeat(33) }],
        ["an address that is not an object", { address: "1 Main St" }],
        ["an address field over its limit", { address: { city: "c".repeat(101) } }],
        ["an address field that is not text", { address: { postalCode: 12345 } }],
    ])("refuses %s with 422 and stores nothing", async (_label, overrides) => {
        const before = await userCount();
        const params: Record<string, unknown> = {
            email: uniqueEmail("bad"),
            password: PASSWORD,
            name: "Bad Input",
            ...overrides,
        };
        for (const key of Object.keys(params)) if (params[key] === undefined) delete params[key];
        await expect(call("register", params)).rejects.toMatchObject(validation);
        expect(await userCount()).toBe(before);
    });
});

describe("login", () => {
    it("answers a Bearer token pair for the user, whatever the case of the email", async () => {
        const user = await register();
        const tokens = await call<TokenPair>("login", {
            email: user.email.toUpperCase(),
            password: PASSWORD,
        });
        expect(tokens).toMatchObject({ tokenType: "Bearer", expiresIn: 900, user });
        expect(tokens.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
        const claims = verifyAccessToken(tokens.accessToken, publicKeys, readConfig());
        expect(claims).toEqual({
            id: user.id,
            email: user.email,
            role: "user",
            sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        });
        expectNoSecrets({ ...tokens, accessToken: undefined, refreshToken: undefined });
    });

    it("stores only the SHA-256 of the refresh token", async () => {
        const { tokens } = await signUp();
        const hash = crypto.createHash("sha256").update(tokens.refreshToken).digest("hex");
        const result = await pg.query(
            "SELECT count(*)::int AS n FROM users.refresh_tokens WHERE token_hash = $1",
            [hash],
        );
        expect(result.rows[0].n).toBe(1);
        const raw = await pg.query(
            "SELECT count(*)::int AS n FROM users.refresh_tokens WHERE token_hash = $1",
            [tokens.refreshToken],
        );
        expect(raw.rows[0].n).toBe(0);
    });

    it("gives an unknown email and a wrong password the same 401, after the same work", async () => {
        // Wall time is noise on a shared machine; the work is what must match: one bcrypt
        // comparison each, against a hash of the same cost, so neither path answers sooner.
        const user = await register();
        const compare = jest.spyOn(bcrypt, "compare");
        const refusal = {
            code: 401,
            type: "INVALID_CREDENTIALS",
            message: "Invalid email or password",
        };
        try {
            await expect(
                call("login", { email: user.email, password: "wrong password" }),
            ).rejects.toMatchObject(refusal);
            const wrongPassword = compare.mock.calls.map(([, hash]) => hash as string);
            compare.mockClear();
            await expect(
                call("login", { email: uniqueEmail("nobody"), password: "wrong password" }),
            ).rejects.toMatchObject(refusal);
            const unknownEmail = compare.mock.calls.map(([, hash]) => hash as string);

            expect(wrongPassword).toEqual([(await storedRow(user.id)).password_hash]);
            expect(unknownEmail).toHaveLength(1);
            expect(unknownEmail[0]).not.toBe(wrongPassword[0]);
            expect(bcrypt.getRounds(unknownEmail[0])).toBe(bcrypt.getRounds(wrongPassword[0]));
        } finally {
            compare.mockRestore();
        }
    });

    it.each([
        ["a missing email", { password: PASSWORD }],
        ["a missing password", { email: "someone@example.com" }],
        ["a password that is not text", { email: "someone@example.com", password: 123 }],
        ["an email over 254 characters", { email: "e".repeat(255), password: PASSWORD }],
    ])("refuses %s with 422", async (_label, params) => {
        await expect(call("login", params)).rejects.toMatchObject(validation);
    });
});

describe("refresh", () => {
    it("rotates the token: a new pair in the same session, and the old token stops working", async () => {
        const { tokens, meta } = await signUp();
        const next = await call<TokenPair>("refresh", { refreshToken: tokens.refreshToken });
        expect(next.refreshToken).not.toBe(tokens.refreshToken);
        expect(next.user).toEqual(tokens.user);
        const claims = verifyAccessToken(next.accessToken, publicKeys, readConfig());
        expect(claims.sessionId).toBe(meta.user.sessionId);
        expectNoSecrets(next.user);

        const again = await call<TokenPair>("refresh", { refreshToken: next.refreshToken });
        expect(again.refreshToken).not.toBe(next.refreshToken);
    });

    it("treats a second use of a rotated token as theft and ends that whole session", async () => {
        const { tokens } = await signUp();
        const next = await call<TokenPair>("refresh", { refreshToken: tokens.refreshToken });
        await expect(call("refresh", { refreshToken: tokens.refreshToken })).rejects.toMatchObject(
            unauthorized,
        );
        await expect(call("refresh", { refreshToken: next.refreshToken })).rejects.toMatchObject(
            unauthorized,
        );
    });

    it("leaves the user's other sessions alone when one session is revoked for re-use", async () => {
        const first = await signUp();
        const second = await login(first.user.email);
        await call("refresh", { refreshToken: first.tokens.refreshToken });
        await expect(
            call("refresh", { refreshToken: first.tokens.refreshToken }),
        ).rejects.toMatchObject(unauthorized);
        await expect(
            call("refresh", { refreshToken: second.tokens.refreshToken }),
        ).resolves.toMatchObject({ user: { id: first.user.id } });
    });

    it("lets only one of two simultaneous refreshes with one token succeed", async () => {
        const { tokens } = await signUp();
        const results = await Promise.allSettled([
            call<TokenPair>("refresh", { refreshToken: tokens.refreshToken }),
            call<TokenPair>("refresh", { refreshToken: tokens.refreshToken }),
        ]);
        const won = results.filter(r => r.status === "fulfilled");
        const lost = results.filter(r => r.status === "rejected") as PromiseRejectedResult[];
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0].reason).toMatchObject(unauthorized);
        const live = await pg.query(
            `SELECT count(*)::int AS n FROM users.refresh_tokens
             WHERE user_id = $1 AND rotated_at IS NULL AND revoked_at IS NULL`,
            [tokens.user.id],
        );
        expect(live.rows[0].n).toBe(0);
    });

    it("refuses an expired refresh token with 401", async () => {
        const { tokens } = await signUp();
        await pg.query(
            "UPDATE users.refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1",
            [tokens.user.id],
        );
        await expect(call("refresh", { refreshToken: tokens.refreshToken })).rejects.toMatchObject({
            ...unauthorized,
            message: "The refresh token has expired",
        });
    });

    it("refuses an unknown token with 401 and a missing one with 422", async () => {
        await expect(call("refresh", { refreshToken: "made-up" })).rejects.toMatchObject(
            unauthorized,
        );
        await expect(call("refresh", {})).rejects.toMatchObject(validation);
        await expect(call("refresh", { refreshToken: 42 })).rejects.toMatchObject(validation);
    });
});

describe("logout", () => {
    it("answers 204 with true and the refresh token stops working", async () => {
        const { tokens } = await signUp();
        const meta: RequestMeta = {};
        await expect(call("logout", { refreshToken: tokens.refreshToken }, meta)).resolves.toBe(
            true,
        );
        expect(meta.$statusCode).toBe(204);
        await expect(call("refresh", { refreshToken: tokens.refreshToken })).rejects.toMatchObject(
            unauthorized,
        );
    });

    it("ends the session even when given an older, rotated token of it", async () => {
        const { tokens } = await signUp();
        const next = await call<TokenPair>("refresh", { refreshToken: tokens.refreshToken });
        await call("logout", { refreshToken: tokens.refreshToken });
        await expect(call("refresh", { refreshToken: next.refreshToken })).rejects.toMatchObject(
            unauthorized,
        );
    });

    it("keeps the user's other sessions", async () => {
        const first = await signUp();
        const second = await login(first.user.email);
        await call("logout", { refreshToken: first.tokens.refreshToken });
        await expect(
            call("refresh", { refreshToken: second.tokens.refreshToken }),
        ).resolves.toMatchObject({ tokenType: "Bearer" });
    });

    it("answers an unknown token the same way, without saying so", async () => {
        const meta: RequestMeta = {};
        await expect(call("logout", { refreshToken: "never-issued" }, meta)).resolves.toBe(true);
        expect(meta.$statusCode).toBe(204);
        await expect(call("logout", {})).rejects.toMatchObject(validation);
    });
});

describe("me", () => {
    it("answers the caller's own user", async () => {
        const { user, meta } = await signUp();
        const me = await call<User>("me", {}, meta);
        expect(me).toEqual(user);
        expectNoSecrets(me);
    });

    it("refuses an anonymous caller with 401", async () => {
        await expect(call("me")).rejects.toMatchObject(unauthorized);
    });
});

describe("updateProfile", () => {
    it("changes name, phone and address field by field and announces the new shipping details", async () => {
        const { user, meta } = await signUp({
            address: { line1: "1 Old Street", city: "Oldtown", country: "GB" },
        });
        profileEvents.length = 0;
        const updated = await call<User>(
            "updateProfile",
            { name: " Ada King ", phone: "+44 20 0000", address: { line1: "2 New Street" } },
            meta,
        );
        expect(updated).toMatchObject({
            id: user.id,
            email: user.email,
            name: "Ada King",
            phone: "+44 20 0000",
            address: {
                line1: "2 New Street",
                line2: null,
                city: "Oldtown",
                postalCode: null,
                country: "GB",
            },
        });
        expect(updated.updatedAt >= user.updatedAt).toBe(true);
        expectNoSecrets(updated);
        const event = await waitFor(() => profileEvents.find(e => e.userId === user.id));
        expect(event.shipping).toEqual({
            name: "Ada King",
            phone: "+44 20 0000",
            address: updated.address,
        });
        expect(Date.parse(event.updatedAt)).toBe(Date.parse(updated.updatedAt));
        await expect(call("me", {}, meta)).resolves.toEqual(updated);
    });

    it("clears the phone and the whole address with null", async () => {
        const { meta } = await signUp({ phone: "123", address: { city: "Paris" } });
        const updated = await call<User>("updateProfile", { phone: null, address: null }, meta);
        expect(updated.phone).toBeNull();
        expect(updated.address).toEqual({
            line1: null,
            line2: null,
            city: null,
            postalCode: null,
            country: null,
        });
    });

    it("changes nothing and announces nothing for an empty body", async () => {
        const { user, meta } = await signUp();
        profileEvents.length = 0;
        const same = await call<User>("updateProfile", {}, meta);
        expect(same).toEqual(user);
        const queued = await pg.query(
            "SELECT count(*)::int AS n FROM users.outbox WHERE payload->>'userId' = $1",
            [user.id],
        );
        expect(queued.rows[0].n).toBe(0);
    });

    it("drops email, role and password from the body", async () => {
        const { user, meta } = await signUp();
        const updated = await call<User>(
            "updateProfile",
            { email: "evil@example.com", role: "admin", password: "new-password-1", name: "Ada" },
            meta,
        );
        expect(updated).toMatchObject({ email: user.email, role: "user", name: "Ada" });
        await expect(login(user.email, PASSWORD)).resolves.toBeDefined();
    });

    it.each([
        ["a blank name", { name: "   " }],
        ["a name that is not text", { name: 7 }],
        ["a null name", { name: null }],
        ["a phone over 32 characters", { phone: "9".repeat(33) }],
        ["an address that is not an object", { address: ["Main St"] }],
        ["an address field over its limit", { address: { line1: "l".repeat(201) } }],
    ])("refuses %s with 422 and changes nothing", async (_label, params) => {
        const { user, meta } = await signUp();
        await expect(call("updateProfile", params, meta)).rejects.toMatchObject(validation);
        await expect(call("me", {}, meta)).resolves.toEqual(user);
    });

    it("refuses an anonymous caller with 401", async () => {
        await expect(call("updateProfile", { name: "Nobody" })).rejects.toMatchObject(unauthorized);
    });
});

describe("changePassword", () => {
    it("changes the password and ends every other session, but not the current one", async () => {
        const current = await signUp();
        const other = await login(current.user.email);
        const meta = { ...current.meta };
        await expect(
            call(
                "changePassword",
                { currentPassword: PASSWORD, newPassword: "a brand new password" },
                meta,
            ),
        ).resolves.toBe(true);
        expect(meta.$statusCode).toBe(204);

        await expect(
            call("refresh", { refreshToken: other.tokens.refreshToken }),
        ).rejects.toMatchObject(unauthorized);
        await expect(
            call("refresh", { refreshToken: current.tokens.refreshToken }),
        ).resolves.toMatchObject({ user: { id: current.user.id } });
        await expect(login(current.user.email, PASSWORD)).rejects.toMatchObject({
            type: "INVALID_CREDENTIALS",
        });
        await expect(login(current.user.email, "a brand new password")).resolves.toBeDefined();
    });

    it("refuses a wrong current password with 422 on currentPassword and changes nothing", async () => {
        const { user, meta } = await signUp();
        const before = (await storedRow(user.id)).password_hash;
        await expect(
            call(
                "changePassword",
                { currentPassword: "not my password", newPassword: "another password" },
                meta,
            ),
        ).rejects.toMatchObject({
            ...validation,
            data: [expect.objectContaining({ field: "currentPassword" })],
        });
        expect((await storedRow(user.id)).password_hash).toBe(before);
    });

    it.each([
        ["a new password under 8 characters", { currentPassword: PASSWORD, newPassword: "short" }],
        ["a missing current password", { newPassword: "long enough password" }],
        [
            "a new password over 128 characters",
            { currentPassword: PASSWORD, newPassword: "x".repeat(129) },
        ],
    ])("refuses %s with 422", async (_label, params) => {
        const { user, meta } = await signUp();
        const before = (await storedRow(user.id)).password_hash;
        await expect(call("changePassword", params, meta)).rejects.toMatchObject(validation);
        expect((await storedRow(user.id)).password_hash).toBe(before);
    });

    it("refuses an anonymous caller with 401", async () => {
        await expect(
            call("changePassword", { currentPassword: PASSWORD, newPassword: "whatever123" }),
        ).rejects.toMatchObject(unauthorized);
    });
});

describe("list", () => {
    it("gives an admin a page of users, newest first", async () => {
        const admin = await login(ADMIN_EMAIL, ADMIN_PASSWORD);
        const a = await register();
        const b = await register();
        const page = await call<Page<User>>("list", { page: "1", pageSize: "2" }, admin.meta);
        expect(page).toMatchObject({ page: 1, pageSize: 2, total: await userCount() });
        expect(page.totalPages).toBe(Math.ceil(page.total / 2));
        expect(page.rows.map(u => u.id)).toEqual([b.id, a.id]);
        expectNoSecrets(page);
    });

    it("refuses a plain user with 403 and an anonymous caller with 401", async () => {
        const { meta } = await signUp();
        await expect(call("list", {}, meta)).rejects.toMatchObject({
            code: 403,
            type: "FORBIDDEN",
        });
        await expect(call("list")).rejects.toMatchObject(unauthorized);
    });

    it("caps the page size at 100, and refuses a page size or page below 1 with 422", async () => {
        const admin = await login(ADMIN_EMAIL, ADMIN_PASSWORD);
        await expect(call("list", { pageSize: 101 }, admin.meta)).resolves.toMatchObject({
            pageSize: 100,
        });
        await expect(call("list", { pageSize: 0 }, admin.meta)).rejects.toMatchObject(validation);
        await expect(call("list", { page: 0 }, admin.meta)).rejects.toMatchObject(validation);
        await expect(call("list", { page: "x" }, admin.meta)).rejects.toMatchObject(validation);
    });
});

describe("get", () => {
    it("shows an admin any user and a user themself", async () => {
        const admin = await login(ADMIN_EMAIL, ADMIN_PASSWORD);
        const { user, meta } = await signUp();
        await expect(call("get", { id: user.id }, admin.meta)).resolves.toEqual(user);
        const self = await call<User>("get", { id: user.id }, meta);
        expect(self).toEqual(user);
        await expect(call("get", { id: user.id.toUpperCase() }, meta)).resolves.toEqual(user);
        expectNoSecrets(self);
    });

    it("answers 404 to a user asking for someone else, as if they did not exist", async () => {
        const { meta } = await signUp();
        const other = await register();
        await expect(call("get", { id: other.id }, meta)).rejects.toMatchObject({
            code: 404,
            type: "NOT_FOUND",
        });
    });

    it("answers 404 for an unknown id and 422 for one that is not a UUID", async () => {
        const admin = await login(ADMIN_EMAIL, ADMIN_PASSWORD);
        await expect(call("get", { id: crypto.randomUUID() }, admin.meta)).rejects.toMatchObject({
            code: 404,
        });
        await expect(call("get", { id: "1 OR 1=1" }, admin.meta)).rejects.toMatchObject(validation);
    });

    it("refuses an anonymous caller with 401", async () => {
        await expect(call("get", { id: crypto.randomUUID() })).rejects.toMatchObject(unauthorized);
    });
});

describe("resolve", () => {
    it("answers users in the order asked, with null for unknown ids", async () => {
        const a = await register();
        const b = await register();
        const resolved = await call<(User | null)[]>("resolve", {
            id: [b.id, crypto.randomUUID(), a.id, "not-a-uuid", b.id],
        });
        expect(resolved).toEqual([b, null, a, null, b]);
        expectNoSecrets(resolved);
        await expect(call("resolve", { id: [] })).resolves.toEqual([]);
    });

    it("refuses more than 100 ids with 422", async () => {
        const ids = Array.from({ length: 101 }, () => crypto.randomUUID());
        await expect(call("resolve", { id: ids })).rejects.toMatchObject(validation);
    });
});

describe("admin seed", () => {
    it("creates the configured admin at start", async () => {
        const admin = await login(ADMIN_EMAIL, ADMIN_PASSWORD);
        expect(admin.user).toMatchObject({ email: ADMIN_EMAIL.toLowerCase(), role: "admin" });
        expect(admin.meta.user.role).toBe("admin");
    });

    it("is idempotent when the service starts again", async () => {
        const restarted = createTestBroker({ services: ["users"] });
        await restarted.start();
        await restarted.stop();
        const result = await pg.query(
            "SELECT count(*)::int AS n FROM users.users WHERE lower(email) = $1",
            [ADMIN_EMAIL.toLowerCase()],
        );
        expect(result.rows[0].n).toBe(1);
        await expect(login(ADMIN_EMAIL, ADMIN_PASSWORD)).resolves.toBeDefined();
    });

    it("promotes an existing account with the admin email without touching its password", async () => {
        const existing = await register();
        process.env.ADMIN_EMAIL = existing.email;
        process.env.ADMIN_PASSWORD = "some other password";
        try {
            const restarted = createTestBroker({ services: ["users"] });
            await restarted.start();
            await restarted.stop();
        } finally {
            process.env.ADMIN_EMAIL = ADMIN_EMAIL;
            process.env.ADMIN_PASSWORD = ADMIN_PASSWORD;
        }
        const session = await login(existing.email, PASSWORD);
        expect(session.user.role).toBe("admin");
    });

    it("creates one admin when two nodes start at once", async () => {
        const email = uniqueEmail("twin-admin");
        process.env.ADMIN_EMAIL = email;
        const nodes = [
            createTestBroker({ services: ["users"] }),
            createTestBroker({ services: ["users"] }),
        ];
        try {
            await Promise.all(nodes.map(node => node.start()));
        } finally {
            await Promise.all(nodes.map(node => node.stop()));
            process.env.ADMIN_EMAIL = ADMIN_EMAIL;
        }
        const result = await pg.query("SELECT role FROM users.users WHERE lower(email) = $1", [
            email,
        ]);
        expect(result.rows).toEqual([{ role: "admin" }]);
    });
});

describe("start-up", () => {
    it("refuses to start without the JWT private key", async () => {
        delete process.env.JWT_PRIVATE_KEY;
        const node = createTestBroker({ services: ["users"] });
        try {
            await expect(node.start()).rejects.toThrow(/private key/);
        } finally {
            process.env.JWT_PRIVATE_KEY = keyPair.privateKey;
            await node.stop();
        }
    });

    it("reads the bcrypt cost from BCRYPT_ROUNDS: 10 by default, never below 10 in production", () => {
        expect(passwordCost(undefined, true)).toBe(10);
        expect(passwordCost("12", true)).toBe(12);
        expect(passwordCost("4", false)).toBe(4);
        expect(() => passwordCost("9", true)).toThrow(/BCRYPT_ROUNDS/);
        expect(() => passwordCost("ten", false)).toThrow(/BCRYPT_ROUNDS/);
        expect(() => passwordCost("40", false)).toThrow(/BCRYPT_ROUNDS/);
    });
});
