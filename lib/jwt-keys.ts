/**
 * Where the RS256 key pair comes from: PEM text or file paths in the environment, or, on embedded
 * defaults, a pair generated once under the data folder (with a loud warning, since every
 * process that shares that folder then trusts the same key).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { AgoraConfig } from "./config";

export interface JwtKeys {
    /** PEM private key; only the users service needs it. */
    privateKey: string | null;
    publicKey: string;
    /** `kid` header of the tokens this key signs: a fingerprint of the public key. */
    keyId: string;
    generated: boolean;
}

function readPem(pem: string | null, file: string | null): string | null {
    if (pem) return pem.replace(/\\n/g, "\n");
    if (file) return fs.readFileSync(file, "utf8");
    return null;
}

export function keyIdOf(publicKey: string): string {
    const der = crypto.createPublicKey(publicKey).export({ type: "spki", format: "der" });
    return crypto.createHash("sha256").update(der).digest("base64url").slice(0, 16);
}

/**
 * The private key under `<dataDir>/jwt`, made on first use. One file, published whole by link(),
 * and the public key derived from it, so nodes starting together all end up with the same pair.
 */
function generatedPair(dataDir: string): { privateKey: string; publicKey: string } {
    const dir = path.join(dataDir, "jwt");
    const privatePath = path.join(dir, "private.pem");
    if (!fs.existsSync(privatePath)) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const { privateKey } = crypto.generateKeyPairSync("rsa", {
            modulusLength: 2048,
            publicKeyEncoding: { type: "spki", format: "pem" },
            privateKeyEncoding: { type: "pkcs8", format: "pem" },
        });
        const temporary = `${privatePath}.${process.pid}.${Date.now()}.tmp`;
        fs.writeFileSync(temporary, privateKey, { mode: 0o600 });
        // link() fails if the name exists: the first process to finish wins, the others read its key.
        try {
            fs.linkSync(temporary, privatePath);
        } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        } finally {
            fs.rmSync(temporary, { force: true });
        }
    }
    const privateKey = fs.readFileSync(privatePath, "utf8");
    return { privateKey, publicKey: publicKeyOf(privateKey) };
}

function publicKeyOf(privateKey: string): string {
    return crypto.createPublicKey(privateKey).export({ type: "spki", format: "pem" }) as string;
}

export function loadJwtKeys(config: AgoraConfig): JwtKeys {
    const privateKey = readPem(config.jwt.privateKey, config.jwt.privateKeyFile);
    let publicKey = readPem(config.jwt.publicKey, config.jwt.publicKeyFile);
    if (!publicKey && privateKey) publicKey = publicKeyOf(privateKey);
    if (!publicKey) {
        const pair = generatedPair(config.dataDir);
        return { ...pair, keyId: keyIdOf(pair.publicKey), generated: true };
    }
    return { privateKey, publicKey, keyId: keyIdOf(publicKey), generated: false };
}
