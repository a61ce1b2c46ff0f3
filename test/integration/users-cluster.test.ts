/**
 * The users service on its own node, called over NATS from another node: answers, metadata
 * (status codes, the caller) and its `user.profileUpdated` event all cross the wire.
 */
import crypto from "node:crypto";
import { waitFor } from "../support/wait";
import type { ServiceBroker } from "moleculer";
import { createTestBroker } from "../support/broker";
import {
    cleanNamespace,
    createTestDatabase,
    NATS_URL,
    REDIS_URL,
    testNamespace,
    type TestDatabase,
} from "../support/database";
import { readConfig } from "../../lib/config";
import { keyIdOf } from "../../lib/jwt-keys";
import { verifyAccessToken } from "../../lib/access-token";
import type {
    ChannelEvent,
    RequestMeta,
    TokenPair,
    User,
    UserProfileUpdatedEvent,
} from "../../types";

const keyPair = crypto.generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
});

let db: TestDatabase;
let usersNode: ServiceBroker;
let callerNode: ServiceBroker;
const savedEnv = { ...process.env };
const received: UserProfileUpdatedEvent[] = [];

const namespace = testNamespace();

beforeAll(async () => {
    db = await createTestDatabase();
    Object.assign(process.env, {
        DATABASE_URL: db.url,
        JWT_PRIVATE_KEY: keyPair.privateKey,
        JWT_PUBLIC_KEY: keyPair.publicKey,
    });
    const cluster = { namespace, transporter: NATS_URL, cacher: REDIS_URL };
    usersNode = createTestBroker({ ...cluster, nodeID: "users-node", services: ["users"] });
    callerNode = createTestBroker({ ...cluster, nodeID: "caller-node" });
    callerNode.createService({
        name: "profile-listener",
        channels: {
            "user.profileUpdated": {
                group: "profile-listener",
                handler(event: ChannelEvent<UserProfileUpdatedEvent>) {
                    received.push(event.data);
                },
            },
        },
    });
    await Promise.all([usersNode.start(), callerNode.start()]);
    await callerNode.waitForServices(["users"], 10_000);
});

afterAll(async () => {
    await callerNode?.stop();
    await usersNode?.stop();
    await db?.drop();
    process.env = savedEnv;
    await cleanNamespace(namespace);
});

describe("users over NATS", () => {
    it("registers, logs in and answers `me` for calls from another node", async () => {
        const email = `remote-${crypto.randomBytes(4).toString("hex")}@example.com`;
        const registerMeta: RequestMeta = {};
        const user = await callerNode.call<User, object>(
            "users.register",
            { email, password: "remote password", name: "Remote Ada", role: "admin" },
            { meta: registerMeta },
        );
        expect(user).toMatchObject({ email, name: "Remote Ada", role: "user" });
        expect(registerMeta.$statusCode).toBe(201);

        const tokens = await callerNode.call<TokenPair, object>("users.login", {
            email,
            password: "remote password",
        });
        expect(tokens.user).toEqual(user);
        const caller = verifyAccessToken(
            tokens.accessToken,
            { [keyIdOf(keyPair.publicKey)]: keyPair.publicKey },
            readConfig(),
        );

        const me = await callerNode.call<User, object>("users.me", {}, { meta: { user: caller } });
        expect(me).toEqual(user);
        expect(JSON.stringify(me)).not.toMatch(/password/i);
    });

    it("keeps its typed errors across the wire", async () => {
        await expect(callerNode.call("users.me")).rejects.toMatchObject({
            code: 401,
            type: "UNAUTHORIZED",
        });
        await expect(
            callerNode.call("users.login", { email: "nobody@example.com", password: "whatever1" }),
        ).rejects.toMatchObject({ code: 401, type: "INVALID_CREDENTIALS" });
        await expect(
            callerNode.call("users.register", { email: "bad", password: "x", name: "" }),
        ).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
    });

    it("delivers user.profileUpdated through JetStream to a consumer on another node", async () => {
        const email = `event-${crypto.randomBytes(4).toString("hex")}@example.com`;
        await callerNode.call("users.register", { email, password: "event password", name: "Ev" });
        const tokens = await callerNode.call<TokenPair, object>("users.login", {
            email,
            password: "event password",
        });
        const user = verifyAccessToken(
            tokens.accessToken,
            { [keyIdOf(keyPair.publicKey)]: keyPair.publicKey },
            readConfig(),
        );
        const updated = await callerNode.call<User, object>(
            "users.updateProfile",
            { phone: "+1 555 0199", address: { line1: "9 Event Road", city: "Natsville" } },
            { meta: { user } },
        );
        const event = await waitFor(() => received.find(e => e.userId === user.id));
        expect(event.shipping).toEqual({
            name: "Ev",
            phone: "+1 555 0199",
            address: updated.address,
        });
        // The event keeps microseconds; the API answers milliseconds.
        expect(Date.parse(event.updatedAt)).toBe(Date.parse(updated.updatedAt));
    });
});
