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

function generatedPair(dataDir: string): { privateKey: string; publicKey: string } {
    const dir = path.join(dataDir, "jwt");
    const privatePath = path.join(dir, "private.pem");
    const publicPath = path.join(dir, "public.pem");
    if (!fs.existsSync(privatePath) || !fs.existsSync(publicPath)) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const pair = crypto.generateKeyPairSync("rsa", {
            modulusLength: 2048,
            publicKeyEncoding: { type: "spki", format: "pem" },
            privateKeyEncoding: { type: "pkcs8", format: "pem" },
        });
        // Write to a temporary name, then rename: concurrent nodes never read half a key.
        const suffix = `.${process.pid}.tmp`;
        fs.writeFileSync(privatePath + suffix, pair.privateKey, { mode: 0o600 });
        fs.writeFileSync(publicPath + suffix, pair.publicKey);
        if (!fs.existsSync(privatePath)) {
            fs.renameSync(privatePath + suffix, privatePath);
            fs.renameSync(publicPath + suffix, publicPath);
        } else {
            fs.rmSync(privatePath + suffix);
            fs.rmSync(publicPath + suffix);
        }
    }
    return {
        privateKey: fs.readFileSync(privatePath, "utf8"),
        publicKey: fs.readFileSync(publicPath, "utf8"),
    };
}

export function loadJwtKeys(config: AgoraConfig): JwtKeys {
    const privateKey = readPem(config.jwt.privateKey, config.jwt.privateKeyFile);
    let publicKey = readPem(config.jwt.publicKey, config.jwt.publicKeyFile);
    let generated = false;
    if (!publicKey && privateKey) {
        publicKey = crypto
            .createPublicKey(privateKey)
            .export({ type: "spki", format: "pem" }) as string;
    }
    if (!publicKey) {
        const pair = generatedPair(config.dataDir);
        generated = true;
        return { ...pair, keyId: keyIdOf(pair.publicKey), generated };
    }
    return { privateKey, publicKey, keyId: keyIdOf(publicKey), generated };
}
