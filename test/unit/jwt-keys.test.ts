/**
 * Where the RS256 keys come from and which ones verify: PEM text or files, a generated pair on
 * embedded defaults (never in production), two public keys at once for a rotation, and a clear
 * refusal of anything that is not an RSA key of at least 2048 bits.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { readConfig } from "../../lib/config";
import { keyIdOf, loadJwtKeys } from "../../lib/jwt-keys";
import { signAccessToken, verifyAccessToken } from "../../lib/access-token";
import type { AuthUser } from "../../types";
import { rsaKeyPair } from "../support/keys";

const oldPair = rsaKeyPair();
const newPair = rsaKeyPair();
const user: AuthUser & { sessionId: string } = {
    id: crypto.randomUUID(),
    email: "ada@example.com",
    role: "user",
    sessionId: crypto.randomUUID(),
};

let dir: string;
beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-jwt-keys-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
}

describe("loadJwtKeys", () => {
    it("reads PEM text, with \\n written as two characters, and derives nothing it is given", () => {
        const keys = loadJwtKeys(
            readConfig({
                JWT_PRIVATE_KEY: oldPair.privateKey.replace(/\n/g, "\\n"),
                JWT_PUBLIC_KEY: oldPair.publicKey,
            }),
        );
        expect(keys.privateKey).toBe(oldPair.privateKey);
        expect(keys.publicKey).toBe(oldPair.publicKey);
        expect(keys.keyId).toBe(keyIdOf(oldPair.publicKey));
        expect(keys.verificationKeys).toEqual({ [keys.keyId]: oldPair.publicKey });
        expect(keys.generated).toBe(false);
    });

    it("reads key files, and derives the public key of a private key given alone", () => {
        const fromFiles = loadJwtKeys(
            readConfig({
                JWT_PRIVATE_KEY_FILE: write("private.pem", oldPair.privateKey),
                JWT_PUBLIC_KEY_FILE: write("public.pem", oldPair.publicKey),
            }),
        );
        expect(fromFiles.privateKey).toBe(oldPair.privateKey);
        expect(fromFiles.publicKey).toBe(oldPair.publicKey);
        const privateOnly = loadJwtKeys(readConfig({ JWT_PRIVATE_KEY: oldPair.privateKey }));
        expect(privateOnly.publicKey).toBe(oldPair.publicKey);
        const publicOnly = loadJwtKeys(readConfig({ JWT_PUBLIC_KEY: oldPair.publicKey }));
        expect(publicOnly.privateKey).toBeNull();
        expect(publicOnly.keyId).toBe(keyIdOf(oldPair.publicKey));
    });

    it("rotates without a refused token: both public keys verify while the previous one is kept", () => {
        const config = readConfig({});
        const sign = (privateKey: string) =>
            signAccessToken(user, loadJwtKeys(readConfig({ JWT_PRIVATE_KEY: privateKey })), config)
                .token;
        const gateway = (env: Record<string, string>) =>
            loadJwtKeys(readConfig(env)).verificationKeys;
        const before = gateway({ JWT_PUBLIC_KEY: oldPair.publicKey });
        const during = gateway({
            JWT_PUBLIC_KEY: newPair.publicKey,
            JWT_PREVIOUS_PUBLIC_KEY_FILE: write("previous.pem", oldPair.publicKey),
        });
        const after = gateway({ JWT_PUBLIC_KEY: newPair.publicKey });
        const oldToken = sign(oldPair.privateKey);
        const newToken = sign(newPair.privateKey);

        expect(Object.keys(during)).toHaveLength(2);
        expect(verifyAccessToken(oldToken, before, config)).toEqual(user);
        expect(verifyAccessToken(oldToken, during, config)).toEqual(user);
        expect(verifyAccessToken(newToken, during, config)).toEqual(user);
        expect(verifyAccessToken(newToken, after, config)).toEqual(user);
        expect(() => verifyAccessToken(oldToken, after, config)).toThrow(
            expect.objectContaining({ code: 401, type: "UNAUTHORIZED" }),
        );
    });

    it("labels tokens with the signing key's kid even while JWT_PUBLIC_KEY names another key", () => {
        const keys = loadJwtKeys(
            readConfig({ JWT_PRIVATE_KEY: newPair.privateKey, JWT_PUBLIC_KEY: oldPair.publicKey }),
        );
        expect(keys.keyId).toBe(keyIdOf(newPair.publicKey));
        const { token } = signAccessToken(user, keys, readConfig({}));
        const header = JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString());
        expect(header.kid).toBe(keyIdOf(newPair.publicKey));
    });

    it.each([
        [
            "a placeholder instead of a PEM",
            () => ({ JWT_PRIVATE_KEY_FILE: write("k.pem", "change-me (PEM of the key)") }),
            /JWT_PRIVATE_KEY is not a PEM private key/,
        ],
        [
            "a public key where the private one belongs",
            () => ({ JWT_PRIVATE_KEY: oldPair.publicKey }),
            /JWT_PRIVATE_KEY is not a PEM private key/,
        ],
        [
            "a garbled public key",
            () => ({
                JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
            }),
            /JWT_PUBLIC_KEY is not a PEM public key/,
        ],
        [
            "a garbled previous key",
            () => ({
                JWT_PUBLIC_KEY: oldPair.publicKey,
                JWT_PREVIOUS_PUBLIC_KEY: "garbage",
            }),
            /JWT_PREVIOUS_PUBLIC_KEY is not a PEM public key/,
        ],
        [
            "a missing key file",
            () => ({ JWT_PUBLIC_KEY_FILE: path.join(dir, "nowhere.pem") }),
            /JWT_PUBLIC_KEY_FILE: can't read .*nowhere\.pem/,
        ],
        [
            "a 1024-bit RSA key",
            () => ({ JWT_PRIVATE_KEY: rsaKeyPair(1024).privateKey }),
            /1024-bit RSA key; at least 2048 bits/,
        ],
        [
            "an EC key",
            () => ({
                JWT_PUBLIC_KEY: crypto
                    .generateKeyPairSync("ec", { namedCurve: "P-256" })
                    .publicKey.export({ type: "spki", format: "pem" }) as string,
            }),
            /JWT_PUBLIC_KEY must be an RSA key \(RS256\), not ec/,
        ],
    ])("refuses %s, naming the setting", (_label, env, message) => {
        expect(() => loadJwtKeys(readConfig(env()))).toThrow(message);
    });

    it("generates one pair under the data folder when none is configured, and reuses it", () => {
        const first = loadJwtKeys(readConfig({ DATA_DIR: dir }));
        const second = loadJwtKeys(readConfig({ DATA_DIR: dir }));
        expect(first.generated).toBe(true);
        expect(fs.existsSync(path.join(dir, "jwt", "private.pem"))).toBe(true);
        expect(second.privateKey).toBe(first.privateKey);
        expect(second.keyId).toBe(first.keyId);
    });

    it("refuses to generate a pair in production, and writes nothing", () => {
        expect(() => loadJwtKeys(readConfig({ DATA_DIR: dir, NODE_ENV: "production" }))).toThrow(
            /No JWT keys in the environment/,
        );
        expect(fs.readdirSync(dir)).toEqual([]);
    });
});
