/**
 * Where the RS256 keys come from: PEM text or file paths in the environment, or, on embedded
 * defaults, a pair generated once under the data folder (with a loud warning, since every
 * process that shares that folder then trusts the same key; production refuses it).
 *
 * Verification takes up to two public keys, told apart by `kid`, so that keys rotate without a
 * single 401: `JWT_PUBLIC_KEY` and, while a rotation lasts, `JWT_PREVIOUS_PUBLIC_KEY`.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { AgoraConfig } from "./config";

export interface JwtKeys {
    /** PEM private key; only the users service needs it. */
    privateKey: string | null;
    /** The public key of this node's pair: `JWT_PUBLIC_KEY`, or derived from the private key. */
    publicKey: string;
    /** `kid` header of the tokens this node signs: a fingerprint of the private key's public half. */
    keyId: string;
    /** Every key an access token may be verified with, by `kid`. */
    verificationKeys: Record<string, string>;
    generated: boolean;
}

/** RS256 below 2048 bits is breakable, and jsonwebtoken refuses to sign with it anyway. */
export const MIN_RSA_BITS = 2048;

function readPem(pem: string | null, file: string | null, name: string): string | null {
    if (pem) return pem.replace(/\\n/g, "\n");
    if (!file) return null;
    try {
        return fs.readFileSync(file, "utf8");
    } catch (error) {
        throw new Error(`${name}_FILE: can't read ${file} (${(error as Error).message})`);
    }
}

/** The key as Node reads it, or a message naming the setting that holds something else. */
function rsaKey(pem: string, kind: "private" | "public", name: string): crypto.KeyObject {
    let key: crypto.KeyObject;
    try {
        key = kind === "private" ? crypto.createPrivateKey(pem) : crypto.createPublicKey(pem);
    } catch {
        throw new Error(`${name} is not a PEM ${kind} key`);
    }
    if (key.asymmetricKeyType !== "rsa") {
        throw new Error(`${name} must be an RSA key (RS256), not ${key.asymmetricKeyType}`);
    }
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
        throw new Error(
            `${name} is a ${bits}-bit RSA key; at least ${MIN_RSA_BITS} bits are needed`,
        );
    }
    return key;
}

/** The SPKI PEM of a public key, or of a private key's public half. */
function publicPem(key: crypto.KeyObject): string {
    const publicKey = key.type === "public" ? key : crypto.createPublicKey(key);
    return publicKey.export({ type: "spki", format: "pem" }) as string;
}

export function keyIdOf(publicKey: string): string {
    const der = crypto.createPublicKey(publicKey).export({ type: "spki", format: "der" });
    return crypto.createHash("sha256").update(der).digest("base64url").slice(0, 16);
}

/**
 * The private key under `<dataDir>/jwt`, made on first use. One file, published whole by link(),
 * and the public key derived from it, so nodes starting together all end up with the same pair.
 */
function generatedPrivateKey(dataDir: string): string {
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
    return fs.readFileSync(privatePath, "utf8");
}

/** True when the environment names at least one key (so nothing would be generated). */
export function jwtKeysConfigured(config: AgoraConfig): boolean {
    const { privateKey, privateKeyFile, publicKey, publicKeyFile } = config.jwt;
    return Boolean(privateKey || privateKeyFile || publicKey || publicKeyFile);
}

/**
 * The node's keys, checked: each must be an RSA key of at least 2048 bits, or the node stops with
 * a message naming the setting. Generating a pair is refused in production.
 */
export function loadJwtKeys(config: AgoraConfig): JwtKeys {
    const { jwt } = config;
    const generated = !jwtKeysConfigured(config);
    if (generated && config.production) {
        throw new Error(
            "No JWT keys in the environment: set JWT_PRIVATE_KEY(_FILE) and JWT_PUBLIC_KEY(_FILE) " +
                "(a generated key pair is refused in production)",
        );
    }
    const privatePem = generated
        ? generatedPrivateKey(config.dataDir)
        : readPem(jwt.privateKey, jwt.privateKeyFile, "JWT_PRIVATE_KEY");
    const privateKey = privatePem ? rsaKey(privatePem, "private", "JWT_PRIVATE_KEY") : null;
    const publicEnv = readPem(jwt.publicKey, jwt.publicKeyFile, "JWT_PUBLIC_KEY");
    const publicKey = publicEnv
        ? publicPem(rsaKey(publicEnv, "public", "JWT_PUBLIC_KEY"))
        : publicPem(privateKey!);
    const previousEnv = readPem(
        jwt.previousPublicKey,
        jwt.previousPublicKeyFile,
        "JWT_PREVIOUS_PUBLIC_KEY",
    );
    const previous = previousEnv
        ? publicPem(rsaKey(previousEnv, "public", "JWT_PREVIOUS_PUBLIC_KEY"))
        : null;
    const verificationKeys: Record<string, string> = { [keyIdOf(publicKey)]: publicKey };
    if (previous) verificationKeys[keyIdOf(previous)] = previous;
    return {
        privateKey: privatePem,
        publicKey,
        // A users node signing with a new key while JWT_PUBLIC_KEY still names the old one (a
        // rotation under way) must still label its tokens with the key that signed them.
        keyId: keyIdOf(privateKey ? publicPem(privateKey) : publicKey),
        verificationKeys,
        generated,
    };
}
