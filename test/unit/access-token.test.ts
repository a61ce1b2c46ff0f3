/**
 * Access tokens: what the users service signs is what the gateway accepts, and nothing else is.
 */
import crypto from "node:crypto";
import jwt from "jsonwebtoken";
import { readConfig } from "../../lib/config";
import { keyIdOf, type JwtKeys } from "../../lib/jwt-keys";
import { signAccessToken, verifyAccessToken } from "../../lib/access-token";
import type { AuthUser } from "../../types";
import { rsaKeyPair } from "../support/keys";

function rsaKeys(): JwtKeys {
    const pair = rsaKeyPair();
    const keyId = keyIdOf(pair.publicKey);
    return { ...pair, keyId, verificationKeys: { [keyId]: pair.publicKey }, generated: false };
}

const config = readConfig({});
const keys = rsaKeys();
const otherKeys = rsaKeys();
const publicKeys = { [keys.keyId]: keys.publicKey };
const user: AuthUser & { sessionId: string } = {
    id: crypto.randomUUID(),
    email: "ada@example.com",
    role: "admin",
    sessionId: crypto.randomUUID(),
};

/** A token with our claims and `kid`, signed however a test needs. */
function forge(
    secret: jwt.Secret,
    options: jwt.SignOptions,
    claims: object = { email: user.email, role: user.role, sid: user.sessionId },
): string {
    return jwt.sign(claims, secret, {
        keyid: keys.keyId,
        subject: user.id,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
        expiresIn: 60,
        ...options,
    });
}

const invalid = { code: 401, type: "UNAUTHORIZED", message: "Invalid access token" };

describe("signAccessToken and verifyAccessToken", () => {
    it("round-trips the user: id, email, role and session", () => {
        const signed = signAccessToken(user, keys, config);
        expect(signed.expiresIn).toBe(15 * 60);
        expect(verifyAccessToken(signed.token, publicKeys, config)).toEqual(user);
    });

    it("signs RS256 with the key's kid, the configured issuer and audience, for 15 minutes", () => {
        const { token } = signAccessToken(user, keys, config);
        const decoded = jwt.decode(token, { complete: true })!;
        expect(decoded.header).toMatchObject({ alg: "RS256", kid: keys.keyId });
        const payload = decoded.payload as jwt.JwtPayload;
        expect(payload).toMatchObject({
            sub: user.id,
            email: user.email,
            role: user.role,
            sid: user.sessionId,
            iss: "agora",
            aud: "agora-api",
        });
        expect(payload.exp! - payload.iat!).toBe(900);
    });

    it("refuses to sign without a private key", () => {
        expect(() => signAccessToken(user, { ...keys, privateKey: null }, config)).toThrow(
            /private key/,
        );
    });

    it("answers 401 TOKEN_EXPIRED for a well-signed token past its expiry", () => {
        const expired = forge(keys.privateKey!, {
            algorithm: "RS256",
            expiresIn: -10,
        });
        expect(() => verifyAccessToken(expired, publicKeys, config)).toThrow(
            expect.objectContaining({ code: 401, type: "TOKEN_EXPIRED" }),
        );
    });

    it("refuses a token signed with another private key under our kid", () => {
        const token = forge(otherKeys.privateKey!, { algorithm: "RS256" });
        expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("refuses an expired token signed with another key as invalid, not expired", () => {
        const token = forge(otherKeys.privateKey!, { algorithm: "RS256", expiresIn: -10 });
        expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("refuses an unsigned token (alg none)", () => {
        const token = forge("", { algorithm: "none" });
        expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
        const stripped = signAccessToken(user, keys, config).token.split(".");
        const header = Buffer.from(
            JSON.stringify({ alg: "none", typ: "JWT", kid: keys.keyId }),
        ).toString("base64url");
        expect(() => verifyAccessToken(`${header}.${stripped[1]}.`, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("refuses HS256 signed with the public key as the HMAC secret", () => {
        // jsonwebtoken itself won't sign HMAC with a PEM, so build the token by hand.
        const header = Buffer.from(
            JSON.stringify({ alg: "HS256", typ: "JWT", kid: keys.keyId }),
        ).toString("base64url");
        const now = Math.floor(Date.now() / 1000);
        const payload = Buffer.from(
            JSON.stringify({
                sub: user.id,
                email: user.email,
                role: "admin",
                sid: user.sessionId,
                iss: config.jwt.issuer,
                aud: config.jwt.audience,
                iat: now,
                exp: now + 60,
            }),
        ).toString("base64url");
        const signature = crypto
            .createHmac("sha256", keys.publicKey)
            .update(`${header}.${payload}`)
            .digest("base64url");
        expect(() =>
            verifyAccessToken(`${header}.${payload}.${signature}`, publicKeys, config),
        ).toThrow(expect.objectContaining(invalid));
    });

    it.each(["RS384", "RS512", "PS256"] as const)(
        "refuses %s, even signed with our own private key",
        algorithm => {
            const token = forge(keys.privateKey!, { algorithm });
            expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
                expect.objectContaining(invalid),
            );
        },
    );

    it("refuses ES256 signed with an EC key under our kid", () => {
        const ec = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
        const token = forge(ec.privateKey, { algorithm: "ES256" });
        expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("refuses a well-signed token without an expiry, an issuer or an audience", () => {
        const claims = { sub: user.id, email: user.email, role: user.role, sid: user.sessionId };
        const complete = { iss: config.jwt.issuer, aud: config.jwt.audience };
        const exp = Math.floor(Date.now() / 1000) + 60;
        const sign = (payload: object) =>
            jwt.sign(payload, keys.privateKey!, { algorithm: "RS256", keyid: keys.keyId });
        for (const token of [
            sign({ ...claims, ...complete }),
            sign({ ...claims, aud: config.jwt.audience, exp }),
            sign({ ...claims, iss: config.jwt.issuer, exp }),
        ]) {
            expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
                expect.objectContaining(invalid),
            );
        }
        expect(
            verifyAccessToken(sign({ ...claims, ...complete, exp }), publicKeys, config),
        ).toEqual(user);
    });

    it("refuses a token that is not valid yet", () => {
        const token = forge(keys.privateKey!, { algorithm: "RS256", notBefore: 60 });
        expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("refuses a token for another issuer or audience", () => {
        const otherIssuer = forge(keys.privateKey!, { algorithm: "RS256", issuer: "someone" });
        const otherAudience = forge(keys.privateKey!, { algorithm: "RS256", audience: "other" });
        for (const token of [otherIssuer, otherAudience]) {
            expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
                expect.objectContaining(invalid),
            );
        }
        const strict = readConfig({ JWT_ISSUER: "elsewhere" });
        const { token } = signAccessToken(user, keys, config);
        expect(() => verifyAccessToken(token, publicKeys, strict)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("refuses an unknown kid, a missing kid and a kid naming an Object property", () => {
        for (const keyid of ["unknown-key", "constructor", "__proto__"]) {
            const token = forge(keys.privateKey!, { algorithm: "RS256", keyid });
            expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
                expect.objectContaining(invalid),
            );
        }
        const noKid = jwt.sign(
            { email: user.email, role: user.role, sid: user.sessionId },
            keys.privateKey!,
            {
                algorithm: "RS256",
                subject: user.id,
                issuer: config.jwt.issuer,
                audience: config.jwt.audience,
                expiresIn: 60,
            },
        );
        expect(() => verifyAccessToken(noKid, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("accepts a token of any key it is given, picked by kid", () => {
        const { token } = signAccessToken(user, otherKeys, config);
        const both = { ...publicKeys, [otherKeys.keyId]: otherKeys.publicKey };
        expect(verifyAccessToken(token, both, config)).toEqual(user);
    });

    it("refuses a well-signed token whose claims are not ours", () => {
        const badRole = forge(
            keys.privateKey!,
            { algorithm: "RS256" },
            {
                email: user.email,
                role: "root",
                sid: user.sessionId,
            },
        );
        const noSession = forge(
            keys.privateKey!,
            { algorithm: "RS256" },
            {
                email: user.email,
                role: "user",
            },
        );
        for (const token of [badRole, noSession]) {
            expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
                expect.objectContaining(invalid),
            );
        }
    });

    it.each([
        ["an empty string", ""],
        ["garbage", "not a token"],
        ["three garbage parts", "aaa.bbb.ccc"],
        ["a truncated token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0"],
    ])("refuses %s", (_label, token) => {
        expect(() => verifyAccessToken(token, publicKeys, config)).toThrow(
            expect.objectContaining(invalid),
        );
    });

    it("refuses a token whose payload was changed after signing", () => {
        const [header, , signature] = signAccessToken(
            { ...user, role: "user" },
            keys,
            config,
        ).token.split(".");
        const now = Math.floor(Date.now() / 1000);
        const payload = Buffer.from(
            JSON.stringify({
                sub: user.id,
                email: user.email,
                role: "admin",
                sid: user.sessionId,
                iss: config.jwt.issuer,
                aud: config.jwt.audience,
                iat: now,
                exp: now + 900,
            }),
        ).toString("base64url");
        expect(() =>
            verifyAccessToken(`${header}.${payload}.${signature}`, publicKeys, config),
        ).toThrow(expect.objectContaining(invalid));
    });
});
