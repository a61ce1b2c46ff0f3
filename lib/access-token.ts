/**
 * Access tokens: short-lived RS256 JWTs. Only the users service signs them (it alone holds the
 * private key); the gateway verifies them locally with the public keys, so no request needs a
 * network hop to learn who is calling. The `kid` header names the key, so a new key can be rolled
 * out beside the old one.
 */
import type crypto from "node:crypto";
import jwt from "jsonwebtoken";
import type { AgoraConfig } from "./config";
import type { JwtKeys } from "./jwt-keys";
import { TokenExpiredError, UnauthorizedError } from "./errors";
import type { AuthUser, Role } from "../types";

const ROLES: readonly Role[] = ["user", "admin"];

export interface SignedAccessToken {
    token: string;
    /** Seconds until the token expires. */
    expiresIn: number;
}

interface AccessClaims {
    sub: string;
    email: string;
    role: Role;
    sid: string;
    /** Required: jsonwebtoken only checks `exp` when a token has one. */
    exp: number;
}

export function signAccessToken(
    user: AuthUser & { sessionId: string },
    keys: JwtKeys,
    config: AgoraConfig,
): SignedAccessToken {
    if (!keys.privateKey) throw new Error("Access tokens can't be signed without the private key");
    const expiresIn = config.jwt.accessTtlSeconds;
    const claims: Omit<AccessClaims, "sub" | "exp"> = {
        email: user.email,
        role: user.role,
        sid: user.sessionId,
    };
    const token = jwt.sign(claims, keys.privateKey, {
        algorithm: "RS256",
        keyid: keys.keyId,
        subject: user.id,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
        expiresIn,
    });
    return { token, expiresIn };
}

/**
 * Who the token speaks for, or 401: `TOKEN_EXPIRED` for a well-signed token past its time (the
 * client should refresh), `UNAUTHORIZED` for anything else. Only RS256 is accepted, so neither
 * `alg: none`, another RSA or ECDSA algorithm, nor an HMAC signature made with the (public) key
 * as secret gets through; a token must name its issuer, audience and expiry, and they must match.
 */
export function verifyAccessToken(
    token: string,
    publicKeys: Record<string, string | crypto.KeyObject>,
    config: AgoraConfig,
): AuthUser {
    const invalid = () => new UnauthorizedError("Invalid access token");
    const decoded = jwt.decode(token, { complete: true });
    const kid = decoded?.header.kid;
    // Own keys only: a `kid` of "constructor" must not find Object.prototype's.
    if (typeof kid !== "string" || !Object.prototype.hasOwnProperty.call(publicKeys, kid)) {
        throw invalid();
    }
    let payload: unknown;
    try {
        payload = jwt.verify(token, publicKeys[kid], {
            algorithms: ["RS256"],
            issuer: config.jwt.issuer,
            audience: config.jwt.audience,
        });
    } catch (error) {
        if (error instanceof jwt.TokenExpiredError) throw new TokenExpiredError();
        throw invalid();
    }
    if (!isAccessClaims(payload)) throw invalid();
    return { id: payload.sub, email: payload.email, role: payload.role, sessionId: payload.sid };
}

function isAccessClaims(payload: unknown): payload is AccessClaims {
    if (typeof payload !== "object" || payload === null) return false;
    const claims = payload as Record<string, unknown>;
    return (
        typeof claims.sub === "string" &&
        typeof claims.email === "string" &&
        typeof claims.sid === "string" &&
        typeof claims.exp === "number" &&
        ROLES.includes(claims.role as Role)
    );
}
