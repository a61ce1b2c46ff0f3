/**
 * Refresh tokens are opaque random strings. Only their SHA-256 is stored, so a leaked table can't
 * be replayed; 256 random bits need no salt or slow hash.
 */
import crypto from "node:crypto";

export interface RefreshTokenRow {
    id: string;
    user_id: string;
    family_id: string;
    token_hash: string;
    expires_at: Date;
    created_at: Date;
    rotated_at: Date | null;
    revoked_at: Date | null;
}

export function newRefreshToken(): string {
    return crypto.randomBytes(32).toString("base64url");
}

export function hashRefreshToken(token: string): string {
    return crypto.createHash("sha256").update(token).digest("hex");
}
