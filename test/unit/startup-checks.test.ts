/**
 * What a production node refuses to start with (lib/startup-checks.ts): every reason at once,
 * each naming the setting to fix. The refusal by a real process is in test/e2e/production.test.ts.
 */
import { readConfig } from "../../lib/config";
import { productionProblems } from "../../lib/startup-checks";
import { rsaKeyPair } from "../support/keys";

const pair = rsaKeyPair();

/** A production users + api node with nothing to complain about. */
const SOUND = {
    NODE_ENV: "production",
    SERVICES: "api,users",
    JWT_PRIVATE_KEY: pair.privateKey,
    JWT_PUBLIC_KEY: pair.publicKey,
    ADMIN_EMAIL: "ops@shop.example",
    ADMIN_PASSWORD: "a long and unguessable passphrase",
    DATABASE_URL: "postgres://agora:s3cret-for-real@db:5432/agora",
};

function problems(env: Record<string, string | undefined>): string[] {
    const merged = Object.fromEntries(
        Object.entries({ ...SOUND, ...env }).filter(([, value]) => value !== undefined),
    ) as Record<string, string>;
    return productionProblems(readConfig(merged));
}

describe("productionProblems", () => {
    it("finds nothing wrong with real keys, a strong admin password and real URLs", () => {
        expect(problems({})).toEqual([]);
    });

    it.each([
        [
            "no JWT key at all",
            { JWT_PRIVATE_KEY: undefined, JWT_PUBLIC_KEY: undefined },
            /No JWT keys in the environment/,
        ],
        [
            "a users node with only the public key",
            { JWT_PRIVATE_KEY: undefined },
            /signs access tokens: set JWT_PRIVATE_KEY/,
        ],
        [
            "the k8s placeholder as the private key",
            { JWT_PRIVATE_KEY: "change-me (PEM of the RS256 private key)" },
            /JWT_PRIVATE_KEY is not a PEM private key/,
        ],
        ["no admin password", { ADMIN_PASSWORD: undefined }, /ADMIN_PASSWORD is not set/],
        ["the .env.example admin password", { ADMIN_PASSWORD: "change-me-admin" }, /placeholder/],
        [
            "a short admin password",
            { ADMIN_PASSWORD: "hunter2hunt" },
            /ADMIN_PASSWORD is shorter than 12 characters/,
        ],
        [
            "the admin's email as password",
            { ADMIN_PASSWORD: "OPS@shop.example" },
            /ADMIN_PASSWORD is the admin's email/,
        ],
        [
            "the .env.example database password",
            { DATABASE_URL: "postgres://agora:change-me-agora@postgres:5432/agora" },
            /DATABASE_URL holds a change-me placeholder password/,
        ],
    ])("refuses %s", (_label, env, message) => {
        const found = problems(env);
        expect(found).toEqual([expect.stringMatching(message)]);
    });

    it("checks keys on gateway nodes, the admin only where users runs, and nothing else elsewhere", () => {
        const gateway = { SERVICES: "api", JWT_PRIVATE_KEY: undefined, ADMIN_PASSWORD: "short" };
        expect(problems(gateway)).toEqual([]);
        expect(problems({ ...gateway, JWT_PUBLIC_KEY: undefined })).toEqual([
            expect.stringMatching(/No JWT keys/),
        ]);
        expect(
            problems({
                SERVICES: "products,orders",
                JWT_PRIVATE_KEY: undefined,
                JWT_PUBLIC_KEY: undefined,
                ADMIN_PASSWORD: undefined,
            }),
        ).toEqual([]);
    });

    it("lists every problem at once", () => {
        expect(
            problems({
                JWT_PRIVATE_KEY: undefined,
                JWT_PUBLIC_KEY: undefined,
                ADMIN_PASSWORD: "change-me",
                CACHER: "redis://:change-me-redis@redis:6379",
            }),
        ).toEqual([
            expect.stringMatching(/No JWT keys/),
            expect.stringMatching(/ADMIN_PASSWORD is still a change-me placeholder/),
            expect.stringMatching(/ADMIN_PASSWORD is shorter than 12/),
            expect.stringMatching(/CACHER holds a change-me placeholder password/),
        ]);
    });
});
