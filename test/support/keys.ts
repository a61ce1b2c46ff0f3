/** RS256 key pairs for tests that sign, forge or configure access tokens (PEM text). */
import crypto from "node:crypto";

export function rsaKeyPair(modulusLength = 2048): { privateKey: string; publicKey: string } {
    return crypto.generateKeyPairSync("rsa", {
        modulusLength,
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
}
