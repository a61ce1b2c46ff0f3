/**
 * users: accounts, login, sessions and profiles. Owns the `users` schema. It alone holds the JWT
 * private key and mints access tokens; sessions are families of rotating refresh tokens. A
 * password hash never leaves this service: every answer goes through `toUser()`. Nothing here is
 * cached, since every answer depends on who asks and must be current.
 */
import crypto from "node:crypto";
import type { Context, LoggerInstance, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DataTypes, QueryTypes, type Sequelize, type Transaction } from "sequelize";
import { readPolicy } from "../../lib/call-policy";
import { DbMixin } from "../../mixins/db.mixin";
import { OutboxMixin } from "../../mixins/outbox.mixin";
import { readConfig, type AgoraConfig } from "../../lib/config";
import { loadJwtKeys, type JwtKeys } from "../../lib/jwt-keys";
import { signAccessToken } from "../../lib/access-token";
import { caller, isAdmin } from "../../lib/access";
import {
    EmailTakenError,
    FieldValidationError,
    InvalidCredentialsError,
    NotFoundError,
    UnauthorizedError,
} from "../../lib/errors";
import { pageParamRules, pageParams, toPage } from "../../lib/pagination";
import {
    Channel,
    type Address,
    type Page,
    type PageParams,
    type RequestMeta,
    type Role,
    type TokenPair,
    type User,
    type UserProfileUpdatedEvent,
} from "../../types";
import { migrations } from "./migrations";
import { PasswordHasher, passwordCost } from "./passwords";
import { hashRefreshToken, newRefreshToken, type RefreshTokenRow } from "./refresh-tokens";

interface UserRow {
    id: string;
    email: string;
    password_hash: string;
    name: string;
    role: Role;
    phone: string | null;
    address_line1: string | null;
    address_line2: string | null;
    address_city: string | null;
    address_postal_code: string | null;
    address_country: string | null;
    created_at: Date;
    updated_at: Date;
}

const ADDRESS_COLUMNS: Record<keyof Address, keyof UserRow> = {
    line1: "address_line1",
    line2: "address_line2",
    city: "address_city",
    postalCode: "address_postal_code",
    country: "address_country",
};

type AddressParams = Partial<Record<keyof Address, string | null>>;

interface RegisterParams {
    email: string;
    password: string;
    name: string;
    phone?: string | null;
    address?: AddressParams | null;
}

interface ProfileParams {
    name?: string | null;
    phone?: string | null;
    address?: AddressParams | null;
}

interface PasswordChangeParams {
    currentPassword: string;
    newPassword: string;
}

/** What a refresh came to; only `rotated` gets a new pair. */
type RotationOutcome =
    | { kind: "rotated"; user: User; familyId: string; refreshToken: string }
    | { kind: "unknown" | "expired" | "reused" };

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const optionalText = (max: number) => ({
    type: "string",
    optional: true,
    nullable: true,
    trim: true,
    max,
});

const addressRule = {
    type: "object",
    optional: true,
    nullable: true,
    strict: "remove",
    props: {
        line1: optionalText(200),
        line2: optionalText(200),
        city: optionalText(100),
        postalCode: optionalText(20),
        country: optionalText(100),
    },
};

const nameRule = { type: "string", trim: true, min: 1, max: 100 };
const newPasswordRule = { type: "string", min: 8, max: 128 };
const phoneRule = optionalText(32);

// --- Settings ---

const settings = {
    graphql: {
        type: `
            type Address {
                line1: String
                line2: String
                city: String
                postalCode: String
                country: String
            }
            type User {
                id: ID!
                email: String!
                name: String!
                role: String!
                phone: String
                address: Address!
                createdAt: String!
                updatedAt: String!
            }
            type UserPage {
                rows: [User!]!
                total: Int!
                page: Int!
                pageSize: Int!
                totalPages: Int!
            }
            type AuthPayload {
                accessToken: String!
                refreshToken: String!
                tokenType: String!
                expiresIn: Int!
                user: User!
            }
        `,
        input: `
            input AddressInput {
                line1: String
                line2: String
                city: String
                postalCode: String
                country: String
            }
            input RegisterInput {
                email: String!
                password: String!
                name: String!
                phone: String
                address: AddressInput
            }
            input LoginInput {
                email: String!
                password: String!
            }
            input UpdateProfileInput {
                name: String
                phone: String
                address: AddressInput
            }
            input ChangePasswordInput {
                currentPassword: String!
                newPassword: String!
            }
        `,
    },
};

interface UsersThis {
    settings: typeof settings;
    logger: LoggerInstance;
    config: AgoraConfig;
    keys: JwtKeys;
    passwords: PasswordHasher;
    sql(): Sequelize;
    toUser(row: UserRow): User;
    findUser(id: string, transaction?: Transaction): Promise<UserRow | null>;
    findUserByEmail(email: string): Promise<UserRow | null>;
    createUser(params: RegisterParams): Promise<User>;
    listUsers(params: PageParams): Promise<Page<User>>;
    openSession(user: User): Promise<TokenPair>;
    storeRefreshToken(userId: string, familyId: string, transaction?: Transaction): Promise<string>;
    tokenPair(user: User, familyId: string, refreshToken: string): TokenPair;
    rotateRefreshToken(token: string): Promise<TokenPair>;
    revokeFamily(familyId: string, transaction?: Transaction): Promise<void>;
    endSession(refreshToken: string): Promise<void>;
    updateProfile(
        userId: string,
        params: ProfileParams,
    ): Promise<{ user: User; shipping: UserProfileUpdatedEvent | null }>;
    pushShipping(ctx: UsersContext, shipping: UserProfileUpdatedEvent): Promise<void>;
    changePassword(
        userId: string,
        params: PasswordChangeParams,
        keepSession: string | null,
    ): Promise<void>;
    seedAdmin(): Promise<void>;
}

type UsersContext<P = unknown> = Context<P, RequestMeta>;

const UsersService: ServiceSchema<ServiceSettingSchema, UsersThis> = {
    name: "users",
    mixins: [
        DbMixin({
            schema: "users",
            migrations,
            model: {
                name: "users",
                define: {
                    id: { type: DataTypes.UUID, primaryKey: true },
                    email: DataTypes.TEXT,
                    passwordHash: DataTypes.TEXT,
                    name: DataTypes.TEXT,
                    role: DataTypes.TEXT,
                    phone: DataTypes.TEXT,
                    addressLine1: DataTypes.TEXT,
                    addressLine2: DataTypes.TEXT,
                    addressCity: DataTypes.TEXT,
                    addressPostalCode: DataTypes.TEXT,
                    addressCountry: DataTypes.TEXT,
                },
            },
        }),
        OutboxMixin({ schema: "users", publishes: [Channel.UserProfileUpdated] }),
    ],
    settings,

    // --- Actions ---
    actions: {
        /** A new account; always a plain user (admins come from configuration only). */
        register: {
            params: {
                $$strict: "remove",
                email: { type: "email", mode: "precise", normalize: true, max: 254 },
                password: newPasswordRule,
                name: nameRule,
                phone: phoneRule,
                address: addressRule,
            },
            graphql: { mutation: "register(input: RegisterInput!): User" },
            async handler(this: UsersThis, ctx: UsersContext<RegisterParams>) {
                const user = await this.createUser(ctx.params);
                ctx.meta.$statusCode = 201;
                return user;
            },
        },

        /** A new session: unknown email and wrong password get the same answer in the same time. */
        login: {
            params: {
                $$strict: "remove",
                email: { type: "string", trim: true, min: 1, max: 254 },
                password: { type: "string", min: 1, max: 128 },
            },
            graphql: { mutation: "login(input: LoginInput!): AuthPayload" },
            async handler(this: UsersThis, ctx: UsersContext<{ email: string; password: string }>) {
                const row = await this.findUserByEmail(ctx.params.email);
                const matched = await this.passwords.matches(
                    ctx.params.password,
                    row?.password_hash ?? null,
                );
                if (!row || !matched) throw new InvalidCredentialsError();
                return this.openSession(this.toUser(row));
            },
        },

        /** Trades a refresh token for a new pair; a second use of one ends its whole session. */
        refresh: {
            params: {
                $$strict: "remove",
                refreshToken: { type: "string", min: 1, max: 256 },
            },
            graphql: { mutation: "refreshToken(refreshToken: String!): AuthPayload" },
            handler(this: UsersThis, ctx: UsersContext<{ refreshToken: string }>) {
                return this.rotateRefreshToken(ctx.params.refreshToken);
            },
        },

        /** Ends the session of a refresh token; an unknown token gets the same answer. */
        logout: {
            params: {
                $$strict: "remove",
                refreshToken: { type: "string", min: 1, max: 256 },
            },
            graphql: { mutation: "logout(refreshToken: String!): Boolean" },
            async handler(this: UsersThis, ctx: UsersContext<{ refreshToken: string }>) {
                await this.endSession(ctx.params.refreshToken);
                ctx.meta.$statusCode = 204;
                return true;
            },
        },

        me: {
            ...readPolicy,
            auth: "user",
            graphql: { query: "me: User" },
            async handler(this: UsersThis, ctx: UsersContext) {
                const row = await this.findUser(caller(ctx).id);
                if (!row) throw new NotFoundError("User");
                return this.toUser(row);
            },
        },

        /** Name, phone and address; an address merges field by field, null clears a field. */
        updateProfile: {
            auth: "user",
            params: {
                $$strict: "remove",
                name: { ...nameRule, optional: true },
                phone: phoneRule,
                address: addressRule,
            },
            graphql: { mutation: "updateProfile(input: UpdateProfileInput!): User" },
            async handler(this: UsersThis, ctx: UsersContext<ProfileParams>) {
                const { user, shipping } = await this.updateProfile(caller(ctx).id, ctx.params);
                if (shipping) await this.pushShipping(ctx, shipping);
                return user;
            },
        },

        /** Every other session of the user ends; the one that asked stays signed in. */
        changePassword: {
            auth: "user",
            params: {
                $$strict: "remove",
                currentPassword: { type: "string", min: 1, max: 128 },
                newPassword: newPasswordRule,
            },
            graphql: { mutation: "changePassword(input: ChangePasswordInput!): Boolean" },
            async handler(this: UsersThis, ctx: UsersContext<PasswordChangeParams>) {
                const { id, sessionId } = caller(ctx);
                const current = sessionId && UUID_PATTERN.test(sessionId) ? sessionId : null;
                await this.changePassword(id, ctx.params, current);
                ctx.meta.$statusCode = 204;
                return true;
            },
        },

        /** Newest first. */
        list: {
            ...readPolicy,
            auth: "admin",
            params: { $$strict: "remove", ...pageParamRules },
            graphql: { query: "users(page: Int, pageSize: Int): UserPage" },
            handler(this: UsersThis, ctx: UsersContext<PageParams>) {
                return this.listUsers(ctx.params);
            },
        },

        /** Admins see anyone; a user sees only themself, and 404 for anyone else. */
        get: {
            ...readPolicy,
            auth: "user",
            params: { $$strict: "remove", id: { type: "uuid" } },
            graphql: { query: "user(id: ID!): User" },
            async handler(this: UsersThis, ctx: UsersContext<{ id: string }>) {
                const id = ctx.params.id.toLowerCase();
                const row = isAdmin(ctx) || caller(ctx).id === id ? await this.findUser(id) : null;
                if (!row) throw new NotFoundError("User", id);
                return this.toUser(row);
            },
        },

        /** Internal (GraphQL DataLoader, other services): users by id, in order, null if unknown. */
        resolve: {
            ...readPolicy,
            visibility: "public",
            params: {
                $$strict: "remove",
                id: { type: "array", max: 100, items: { type: "string", max: 100 } },
            },
            async handler(this: UsersThis, ctx: UsersContext<{ id: string[] }>) {
                const ids = ctx.params.id.filter(id => UUID_PATTERN.test(id));
                const rows = ids.length
                    ? await this.sql().query<UserRow>(
                          `SELECT * FROM users.users WHERE id IN (:ids)`,
                          { replacements: { ids }, type: QueryTypes.SELECT },
                      )
                    : [];
                const byId = new Map(rows.map(row => [row.id, this.toUser(row)]));
                return ctx.params.id.map(id => byId.get(id.toLowerCase()) ?? null);
            },
        },
    },

    // --- Methods ---
    methods: {
        /** The only way a user leaves this service: without its password hash. */
        toUser(row: UserRow): User {
            return {
                id: row.id,
                email: row.email,
                name: row.name,
                role: row.role,
                phone: row.phone,
                address: {
                    line1: row.address_line1,
                    line2: row.address_line2,
                    city: row.address_city,
                    postalCode: row.address_postal_code,
                    country: row.address_country,
                },
                createdAt: new Date(row.created_at).toISOString(),
                updatedAt: new Date(row.updated_at).toISOString(),
            };
        },

        async findUser(this: UsersThis, id: string, transaction?: Transaction) {
            // Ids of callers and tokens are ours, but a non-UUID must be "not found", not a DB error.
            if (!UUID_PATTERN.test(id)) return null;
            const [row] = await this.sql().query<UserRow>(
                `SELECT * FROM users.users WHERE id = :id`,
                { replacements: { id }, type: QueryTypes.SELECT, transaction },
            );
            return row ?? null;
        },

        async findUserByEmail(this: UsersThis, email: string) {
            const [row] = await this.sql().query<UserRow>(
                `SELECT * FROM users.users WHERE lower(email) = lower(:email)`,
                { replacements: { email }, type: QueryTypes.SELECT },
            );
            return row ?? null;
        },

        async createUser(this: UsersThis, params: RegisterParams): Promise<User> {
            const replacements: Record<string, unknown> = {
                id: crypto.randomUUID(),
                email: params.email,
                passwordHash: await this.passwords.hash(params.password),
                name: params.name,
                phone: params.phone || null,
            };
            for (const [field, column] of Object.entries(ADDRESS_COLUMNS)) {
                replacements[column] = params.address?.[field as keyof Address] || null;
            }
            // The unique index decides between two registrations racing for one address.
            const [row] = await this.sql().query<UserRow>(
                `INSERT INTO users.users (id, email, password_hash, name, role, phone,
                     address_line1, address_line2, address_city, address_postal_code, address_country)
                 VALUES (:id, :email, :passwordHash, :name, 'user', :phone, :address_line1,
                     :address_line2, :address_city, :address_postal_code, :address_country)
                 ON CONFLICT ((lower(email))) DO NOTHING
                 RETURNING *`,
                { replacements, type: QueryTypes.SELECT },
            );
            if (!row) throw new EmailTakenError();
            return this.toUser(row);
        },

        async listUsers(this: UsersThis, params: PageParams): Promise<Page<User>> {
            const { page, pageSize, offset } = pageParams(params);
            const [rows, [count]] = await Promise.all([
                this.sql().query<UserRow>(
                    `SELECT * FROM users.users ORDER BY created_at DESC, id DESC
                     LIMIT :limit OFFSET :offset`,
                    { replacements: { limit: pageSize, offset }, type: QueryTypes.SELECT },
                ),
                this.sql().query<{ total: string }>(`SELECT count(*) AS total FROM users.users`, {
                    type: QueryTypes.SELECT,
                }),
            ]);
            return toPage(
                rows.map(row => this.toUser(row)),
                Number(count.total),
                page,
                pageSize,
            );
        },

        /** A login: a new refresh-token family, whose id is the session id of its access tokens. */
        async openSession(this: UsersThis, user: User): Promise<TokenPair> {
            const familyId = crypto.randomUUID();
            const refreshToken = await this.storeRefreshToken(user.id, familyId);
            return this.tokenPair(user, familyId, refreshToken);
        },

        async storeRefreshToken(
            this: UsersThis,
            userId: string,
            familyId: string,
            transaction?: Transaction,
        ): Promise<string> {
            const token = newRefreshToken();
            await this.sql().query(
                `INSERT INTO users.refresh_tokens (id, user_id, family_id, token_hash, expires_at)
                 VALUES (:id, :userId, :familyId, :tokenHash, now() + make_interval(secs => :ttl))`,
                {
                    replacements: {
                        id: crypto.randomUUID(),
                        userId,
                        familyId,
                        tokenHash: hashRefreshToken(token),
                        ttl: this.config.jwt.refreshTtlSeconds,
                    },
                    transaction,
                },
            );
            return token;
        },

        tokenPair(this: UsersThis, user: User, familyId: string, refreshToken: string): TokenPair {
            const access = signAccessToken(
                { id: user.id, email: user.email, role: user.role, sessionId: familyId },
                this.keys,
                this.config,
            );
            return {
                accessToken: access.token,
                refreshToken,
                tokenType: "Bearer",
                expiresIn: access.expiresIn,
                user,
            };
        },

        async rotateRefreshToken(this: UsersThis, token: string): Promise<TokenPair> {
            const outcome = await this.sql().transaction(
                async (transaction): Promise<RotationOutcome> => {
                    // The row lock makes a second refresh with the same token wait, then see it rotated.
                    const [row] = await this.sql().query<RefreshTokenRow & { expired: boolean }>(
                        `SELECT *, expires_at <= now() AS expired FROM users.refresh_tokens
                         WHERE token_hash = :tokenHash FOR UPDATE`,
                        {
                            replacements: { tokenHash: hashRefreshToken(token) },
                            type: QueryTypes.SELECT,
                            transaction,
                        },
                    );
                    if (!row) return { kind: "unknown" };
                    if (row.rotated_at || row.revoked_at) {
                        // A used token presented again may be stolen: end the session for everyone.
                        await this.revokeFamily(row.family_id, transaction);
                        return { kind: "reused" };
                    }
                    if (row.expired) return { kind: "expired" };
                    const userRow = await this.findUser(row.user_id, transaction);
                    if (!userRow) return { kind: "unknown" };
                    await this.sql().query(
                        `UPDATE users.refresh_tokens SET rotated_at = now() WHERE id = :id`,
                        { replacements: { id: row.id }, transaction },
                    );
                    const refreshToken = await this.storeRefreshToken(
                        row.user_id,
                        row.family_id,
                        transaction,
                    );
                    return {
                        kind: "rotated",
                        user: this.toUser(userRow),
                        familyId: row.family_id,
                        refreshToken,
                    };
                },
            );
            if (outcome.kind === "rotated") {
                return this.tokenPair(outcome.user, outcome.familyId, outcome.refreshToken);
            }
            if (outcome.kind === "reused") {
                this.logger.warn("A rotated refresh token was used again; its session is revoked.");
            }
            throw new UnauthorizedError(
                outcome.kind === "expired"
                    ? "The refresh token has expired"
                    : "Invalid refresh token",
            );
        },

        async revokeFamily(this: UsersThis, familyId: string, transaction?: Transaction) {
            await this.sql().query(
                `UPDATE users.refresh_tokens SET revoked_at = now()
                 WHERE family_id = :familyId AND revoked_at IS NULL`,
                { replacements: { familyId }, transaction },
            );
        },

        async endSession(this: UsersThis, refreshToken: string) {
            await this.sql().query(
                `UPDATE users.refresh_tokens SET revoked_at = now()
                 WHERE revoked_at IS NULL AND family_id =
                     (SELECT family_id FROM users.refresh_tokens WHERE token_hash = :tokenHash)`,
                { replacements: { tokenHash: hashRefreshToken(refreshToken) } },
            );
        },

        async updateProfile(this: UsersThis, userId: string, params: ProfileParams) {
            // fastest-validator lets null through any optional field; a name can't be cleared.
            if (params.name === null) {
                throw new FieldValidationError([
                    { field: "name", message: "The 'name' field can't be null.", type: "required" },
                ]);
            }
            const changes: Record<string, string | null> = {};
            if (params.name !== undefined) changes.name = params.name;
            if (params.phone !== undefined) changes.phone = params.phone || null;
            if (params.address === null) {
                for (const column of Object.values(ADDRESS_COLUMNS)) changes[column] = null;
            }
            for (const [field, column] of Object.entries(ADDRESS_COLUMNS)) {
                const value = params.address?.[field as keyof Address];
                if (value !== undefined) changes[column] = value || null;
            }
            const columns = Object.keys(changes);
            if (!columns.length) {
                const row = await this.findUser(userId);
                if (!row) throw new NotFoundError("User");
                return { user: this.toUser(row), shipping: null };
            }
            const [row] = await this.sql().query<UserRow>(
                `UPDATE users.users
                 SET ${columns.map(column => `${column} = :${column}`).join(", ")}, updated_at = now()
                 WHERE id = :id
                 RETURNING *, to_char(updated_at AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at_us`,
                { replacements: { ...changes, id: userId }, type: QueryTypes.SELECT },
            );
            if (!row) throw new NotFoundError("User");
            const user = this.toUser(row);
            const shipping = {
                userId: user.id,
                shipping: { name: user.name, phone: user.phone, address: user.address },
                // As precise as the event's (migrations.ts): consumers order updates by it.
                updatedAt: (row as UserRow & { updated_at_us: string }).updated_at_us,
            };
            return { user, shipping };
        },

        /**
         * The new shipping details go to the user's unshipped orders before the change is
         * answered, so the next read of an order shows them. The `user.profileUpdated` event of the
         * outbox (migrations.ts) carries the same change durably: it is what delivers it when
         * orders can't be reached now, and it changes nothing once this call has.
         */
        async pushShipping(this: UsersThis, ctx: UsersContext, shipping: UserProfileUpdatedEvent) {
            await ctx
                .call("orders.updateShipping", shipping, { timeout: 1000, retries: 0 })
                .catch((error: Error) =>
                    this.logger.warn(
                        `Orders of user ${shipping.userId} take the new shipping details from the event: ${error.message}`,
                    ),
                );
        },

        async changePassword(
            this: UsersThis,
            userId: string,
            params: PasswordChangeParams,
            keepSession: string | null,
        ) {
            const row = await this.findUser(userId);
            if (!row) throw new NotFoundError("User");
            if (!(await this.passwords.matches(params.currentPassword, row.password_hash))) {
                throw new FieldValidationError([
                    {
                        field: "currentPassword",
                        message: "The current password is wrong",
                        type: "currentPassword",
                    },
                ]);
            }
            const passwordHash = await this.passwords.hash(params.newPassword);
            await this.sql().transaction(async transaction => {
                await this.sql().query(
                    `UPDATE users.users SET password_hash = :passwordHash, updated_at = now()
                     WHERE id = :userId`,
                    { replacements: { passwordHash, userId }, transaction },
                );
                await this.sql().query(
                    `UPDATE users.refresh_tokens SET revoked_at = now()
                     WHERE user_id = :userId AND revoked_at IS NULL
                       AND family_id IS DISTINCT FROM :keepSession`,
                    { replacements: { userId, keepSession }, transaction },
                );
            });
        },

        /** The first admin, from configuration. Two nodes starting together insert it once. */
        async seedAdmin(this: UsersThis) {
            const email = this.config.adminEmail.trim().toLowerCase();
            if (!(await this.findUserByEmail(email))) {
                const [inserted] = await this.sql().query<{ id: string }>(
                    `INSERT INTO users.users (id, email, password_hash, name, role)
                     VALUES (:id, :email, :passwordHash, 'Administrator', 'admin')
                     ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`,
                    {
                        replacements: {
                            id: crypto.randomUUID(),
                            email,
                            passwordHash: await this.passwords.hash(this.config.adminPassword),
                        },
                        type: QueryTypes.SELECT,
                    },
                );
                if (inserted) this.logger.info(`Created the admin account ${email}.`);
            }
            // An existing account with the configured address is promoted; its password stays.
            await this.sql().query(
                `UPDATE users.users SET role = 'admin', updated_at = now()
                 WHERE lower(email) = :email AND role <> 'admin'`,
                { replacements: { email } },
            );
            if (this.config.adminFromDefaults) {
                this.logger.warn(
                    `The admin account ${email} uses the default password: set ADMIN_EMAIL and ADMIN_PASSWORD.`,
                );
            }
        },
    },

    // --- Lifecycle ---
    created(this: UsersThis) {
        this.config = readConfig();
        this.keys = loadJwtKeys(this.config);
    },

    async started(this: UsersThis) {
        if (!this.keys.privateKey) {
            throw new Error(
                "The users service signs access tokens and needs the RS256 private key: " +
                    "set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE.",
            );
        }
        if (this.keys.generated) {
            this.logger.warn(
                `Signing access tokens with a key pair generated under ${this.config.dataDir}: ` +
                    "set JWT_PRIVATE_KEY and JWT_PUBLIC_KEY outside development.",
            );
        }
        const cost = passwordCost(process.env.BCRYPT_ROUNDS, this.config.production);
        this.passwords = await PasswordHasher.create(cost);
        await this.seedAdmin();
    },
};

export default UsersService;
