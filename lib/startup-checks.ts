/**
 * What a production node refuses to start with: secrets that are missing, generated, placeholders
 * or weak. bin/agora.ts runs these before the node starts anything and exits with the whole list,
 * so one start tells an operator everything that must change. Outside production the same gaps
 * only warn (generated keys, the printed default admin), so `npm start` works on a laptop.
 */
import { DEFAULT_ADMIN_PASSWORD, type AgoraConfig } from "./config";
import { jwtKeysConfigured, loadJwtKeys } from "./jwt-keys";

/** An admin password shorter than this is refused in production. */
export const MIN_ADMIN_PASSWORD_LENGTH = 12;

/** `change-me…` is what .env.example and k8s/secret.yaml hold until someone replaces it. */
const PLACEHOLDER = /^change-?me/i;

function jwtProblems(config: AgoraConfig): string[] {
    const signs = config.services.includes("users");
    if (!jwtKeysConfigured(config)) {
        return [
            "No JWT keys in the environment: set JWT_PRIVATE_KEY(_FILE) and JWT_PUBLIC_KEY(_FILE) " +
                "(a generated key pair is refused in production)",
        ];
    }
    if (signs && !config.jwt.privateKey && !config.jwt.privateKeyFile) {
        return [
            "The users service signs access tokens: set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE",
        ];
    }
    try {
        loadJwtKeys(config);
        return [];
    } catch (error) {
        return [(error as Error).message];
    }
}

function adminProblems(config: AgoraConfig): string[] {
    const password = config.adminPassword;
    if (password === DEFAULT_ADMIN_PASSWORD) {
        return ["ADMIN_PASSWORD is not set: the default admin password is printed in the README"];
    }
    const problems: string[] = [];
    if (PLACEHOLDER.test(password))
        problems.push("ADMIN_PASSWORD is still a change-me placeholder");
    if (password.length < MIN_ADMIN_PASSWORD_LENGTH) {
        problems.push(`ADMIN_PASSWORD is shorter than ${MIN_ADMIN_PASSWORD_LENGTH} characters`);
    }
    if (password.toLowerCase() === config.adminEmail.trim().toLowerCase()) {
        problems.push("ADMIN_PASSWORD is the admin's email address");
    }
    return problems;
}

/** Connection URLs whose password is still a placeholder. */
function urlProblems(config: AgoraConfig): string[] {
    const urls: [string, string | null][] = [
        ["DATABASE_URL", config.databaseUrl],
        ["CACHER", config.cacher],
        ["TRANSPORTER", config.transporter],
    ];
    return urls.flatMap(([name, value]) => {
        if (!value) return [];
        let password = "";
        try {
            password = decodeURIComponent(new URL(value).password);
        } catch {
            return [`${name} is not a URL`];
        }
        return PLACEHOLDER.test(password) ? [`${name} holds a change-me placeholder password`] : [];
    });
}

/** Every reason this node must not start in production; empty when it may. */
export function productionProblems(config: AgoraConfig): string[] {
    const verifiesOrSigns = config.services.some(name => name === "api" || name === "users");
    return [
        ...(verifiesOrSigns ? jwtProblems(config) : []),
        ...(config.services.includes("users") ? adminProblems(config) : []),
        ...urlProblems(config),
    ];
}
