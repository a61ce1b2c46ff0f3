/**
 * The deployment files checked against the code they deploy. There is no Docker engine here, so
 * the Dockerfile, docker-compose.yml, deploy/ (Prometheus, Grafana, PostgreSQL) and k8s/ are
 * parsed: every variable a node kind needs is set for it, ports, probes and metrics paths are the
 * code's, every node kind is scraped and built from the one Dockerfile, and every metric the
 * Grafana dashboard queries is in the /metrics output of a real node after real traffic.
 */
import { execFile, spawnSync } from "node:child_process";
import fs from "node:fs";
import type { Server } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { Errors, type Middleware, type ServiceBroker } from "moleculer";
import YAML from "yaml";
import { ALL_SERVICES, readConfig, type ServiceName } from "../../lib/config";
import { startHealthServer } from "../../lib/health";
import { NODE_FLAGS } from "../../lib/node-flags";
import { createBrokerOptions } from "../../moleculer.config";
import { passwordCost } from "../../services/users/passwords";
import { createTestBroker, gatewayUrl } from "../support/broker";
import { createTestDatabase, type TestDatabase } from "../support/database";
import { http, type HttpResult } from "../support/http";
import { freePort } from "../support/processes";

const ROOT = path.resolve(__dirname, "../..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const KINDS: readonly ServiceName[] = ALL_SERVICES;
const WITH_DATABASE: ServiceName[] = ["users", "products", "orders"];
const WITHOUT_GATEWAY = KINDS.filter(kind => kind !== "api");

/** The code's own defaults: what the probes and the scrape configuration must agree with. */
const DEFAULTS = readConfig({});
const METRICS_PATH = (() => {
    const metrics = createBrokerOptions(DEFAULTS).metrics as {
        reporter: { type: string; options: { path: string } }[];
    };
    return metrics.reporter.find(reporter => reporter.type === "Prometheus")!.options.path;
})();
const LIVE_PATH = "/health/live";
const READY_PATH = "/health/ready";

// --- What each variable the code reads needs in a cluster ---

interface Rule {
    /** The node kinds that get it, exactly: set for these, absent from the others. */
    kinds: readonly ServiceName[];
    /** Its value must be this one (ports: the code's default, so probes and scraping agree). */
    value?: string;
    /** An empty value, which the code reads as its default, is fine. */
    mayBeEmpty?: boolean;
    /** Every kind that gets it must get the same value. */
    same?: boolean;
}

/**
 * Every variable the code reads, and how a cluster provides it. The test below extracts the
 * variables from the source, so a new one fails until it is listed here and set where it's needed.
 */
const VARIABLES: Record<string, Rule> = {
    SERVICES: { kinds: KINDS },
    NODE_ENV: { kinds: KINDS, value: "production" },
    TRANSPORTER: { kinds: KINDS, same: true },
    CACHER: { kinds: KINDS, same: true },
    NAMESPACE: { kinds: KINDS, mayBeEmpty: true, same: true },
    LOGLEVEL: { kinds: KINDS, mayBeEmpty: true, same: true },
    REQUEST_TIMEOUT: { kinds: KINDS, mayBeEmpty: true, same: true },
    // NATS queue groups or Moleculer's balancer: one way of routing for the whole cluster.
    DISABLE_BALANCER: { kinds: KINDS, mayBeEmpty: true, same: true },
    METRICS_PORT: { kinds: KINDS, value: String(DEFAULTS.metricsPort) },
    PORT: { kinds: ["api"], value: String(DEFAULTS.port) },
    HEALTH_PORT: { kinds: WITHOUT_GATEWAY, value: String(DEFAULTS.healthPort) },
    DATABASE_URL: { kinds: WITH_DATABASE, same: true },
    // Products show it on every product, orders store it on every order.
    CURRENCY: { kinds: KINDS, mayBeEmpty: true, same: true },
    ADMIN_EMAIL: { kinds: ["users"] },
    ADMIN_PASSWORD: { kinds: ["users"] },
    // The keys are mounted files: the private one only where tokens are signed.
    JWT_PRIVATE_KEY_FILE: { kinds: ["users"] },
    JWT_PUBLIC_KEY_FILE: { kinds: KINDS, same: true },
    JWT_PRIVATE_KEY: { kinds: [] },
    JWT_PUBLIC_KEY: { kinds: [] },
    // Only while keys rotate (docs/operations.md): the operator adds it to the gateways.
    JWT_PREVIOUS_PUBLIC_KEY: { kinds: [] },
    JWT_PREVIOUS_PUBLIC_KEY_FILE: { kinds: [] },
    // The gateway's: browsers' origins, the proxies in front of it, and its rate limits (the
    // counters are shared through CACHER's Redis, so every gateway must count alike).
    CORS_ORIGINS: { kinds: ["api"], mayBeEmpty: true },
    TRUSTED_PROXIES: { kinds: ["api"], mayBeEmpty: true },
    RATE_LIMIT_WINDOW_SECONDS: { kinds: ["api"], mayBeEmpty: true },
    RATE_LIMIT_PER_IP: { kinds: ["api"], mayBeEmpty: true },
    RATE_LIMIT_PER_USER: { kinds: ["api"], mayBeEmpty: true },
    RATE_LIMIT_AUTH_WINDOW_SECONDS: { kinds: ["api"], mayBeEmpty: true },
    RATE_LIMIT_AUTH_PER_IP: { kinds: ["api"], mayBeEmpty: true },
    RATE_LIMIT_AUTH_PER_EMAIL: { kinds: ["api"], mayBeEmpty: true },
    // Users sign with them and the gateway checks them: one value for all.
    JWT_ISSUER: { kinds: KINDS, mayBeEmpty: true, same: true },
    JWT_AUDIENCE: { kinds: KINDS, mayBeEmpty: true, same: true },
    JWT_ACCESS_TTL: { kinds: ["users"], mayBeEmpty: true },
    JWT_REFRESH_TTL: { kinds: ["users"], mayBeEmpty: true },
    BCRYPT_ROUNDS: { kinds: ["users"], mayBeEmpty: true },
    SETTLE_INTERVAL_MS: { kinds: ["orders"], mayBeEmpty: true },
    IDEMPOTENCY_TTL_SECONDS: { kinds: ["orders"], mayBeEmpty: true },
    // Every service with a database relays its outbox.
    OUTBOX_RELAY_INTERVAL_MS: { kinds: WITH_DATABASE, mayBeEmpty: true },
    // One tracing setup for the whole cluster, so that a trace is whole (compose: its Zipkin).
    ZIPKIN_URL: { kinds: KINDS, mayBeEmpty: true, same: true },
    TRACING: { kinds: KINDS, mayBeEmpty: true, same: true },
    // Unset, so that every replica gets its own `hostname-pid`.
    NODE_ID: { kinds: [] },
    // One process per container: the gateway scales by replicas (docs/operations.md). The index
    // is set by the API_WORKERS primary for each worker, never by hand.
    API_WORKERS: { kinds: [] },
    AGORA_WORKER_INDEX: { kinds: [] },
    // Embedded defaults only: a node with DATABASE_URL and JWT keys never uses them.
    DATA_DIR: { kinds: [] },
    EMBEDDED_DB_PORT: { kinds: [] },
};

function sourceFiles(dir: string): string[] {
    return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap(entry => {
        const relative = path.join(dir, entry.name);
        if (entry.isDirectory()) return sourceFiles(relative);
        return entry.name.endsWith(".ts") ? [relative] : [];
    });
}

/** Every `env.X`, `process.env.X` and `env["X"]` in the code a node runs. */
function variablesReadByCode(): string[] {
    const files = [
        ...["bin", "lib", "mixins", "services", "types"].flatMap(sourceFiles),
        "moleculer.config.ts",
    ];
    const names = new Set<string>();
    for (const file of files) {
        const text = read(file);
        for (const match of text.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) names.add(match[1]);
        for (const match of text.matchAll(/\benv\[\s*["'`]([A-Z][A-Z0-9_]*)["'`]\s*\]/g)) {
            names.add(match[1]);
        }
    }
    return [...names].sort();
}

// --- docker-compose.yml ---

interface ComposeService {
    image?: string;
    build?: { context: string; dockerfile?: string; target?: string } | string;
    command?: string[] | string;
    container_name?: string;
    environment?: Record<string, string | number | null> | string[];
    ports?: (string | { target: number; published?: string | number })[];
    secrets?: (string | { source: string; target?: string })[];
    volumes?: (string | { type: string; source: string; target: string })[];
    depends_on?: string[] | Record<string, { condition: string }>;
    healthcheck?: { test: string[] | string };
    deploy?: { replicas?: number };
}

interface Compose {
    services: Record<string, ComposeService>;
    secrets?: Record<string, { file?: string }>;
}

const compose = YAML.parse(read("docker-compose.yml"), { merge: true }) as Compose;

function composeEnvironment(service: ComposeService): Record<string, string> {
    const environment = service.environment ?? {};
    if (Array.isArray(environment)) {
        return Object.fromEntries(
            environment.map(entry => {
                const [name, ...value] = entry.split("=");
                return [name, value.join("=")];
            }),
        );
    }
    return Object.fromEntries(
        Object.entries(environment).map(([name, value]) => [name, String(value ?? "")]),
    );
}

/**
 * A compose value as the node will see it when the optional variables are unset: `${X:-d}` is `d`,
 * a bare `${X}` is empty, and a required `${X:?message}` holds something (compose refuses to start
 * otherwise).
 */
function interpolate(value: string): string {
    return value.replace(/\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g, (_, name, operator, rest) => {
        if (operator === ":?" || operator === "?") return `<${name}>`;
        if (operator === ":-" || operator === "-") return rest;
        return "";
    });
}

/** Names compose interpolates in its values (comments aside), with whether each is required. */
function composeVariables(): Map<string, boolean> {
    const found = new Map<string, boolean>();
    const visit = (value: unknown): void => {
        if (typeof value === "string") {
            for (const match of value.matchAll(/\$\{([A-Z0-9_]+)(:?[-?])?/g)) {
                const required = (match[2] ?? "").endsWith("?");
                found.set(match[1], (found.get(match[1]) ?? false) || required);
            }
        } else if (value && typeof value === "object") {
            Object.values(value).forEach(visit);
        }
    };
    visit(compose);
    return found;
}

function composeHealthUrl(service: ComposeService): URL {
    const test = service.healthcheck?.test;
    const script = Array.isArray(test) ? test.join(" ") : (test ?? "");
    const url = /https?:\/\/[^'"\s)]+/.exec(script);
    expect(url).not.toBeNull();
    return new URL(url![0]);
}

// --- k8s/ ---

/** A parsed manifest: its shape is checked by the assertions that read it. */
interface K8sObject {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    [key: string]: any;
}

const K8S_FILES = fs
    .readdirSync(path.join(ROOT, "k8s"))
    .filter(file => /\.ya?ml$/.test(file) && file !== "kustomization.yaml")
    .sort();
const kustomization = YAML.parse(read("k8s/kustomization.yaml"));
const k8sObjects: K8sObject[] = K8S_FILES.flatMap(file =>
    YAML.parseAllDocuments(read(path.join("k8s", file)))
        .map(document => document.toJS() as K8sObject | null)
        .filter((object): object is K8sObject => object !== null),
);

function k8sObject(kind: string, name: string): K8sObject {
    const found = k8sObjects.find(object => object.kind === kind && object.metadata.name === name);
    if (!found) throw new Error(`k8s/ has no ${kind} ${name}`);
    return found;
}

function k8sObjectsOfKind(kind: string): K8sObject[] {
    return k8sObjects.filter(object => object.kind === kind);
}

function podContainer(deployment: K8sObject) {
    const containers = deployment.spec.template.spec.containers;
    expect(containers).toHaveLength(1);
    return containers[0];
}

/** What a container's environment holds: literal text, or where a secret value comes from. */
function k8sEnvironment(deployment: K8sObject): Map<string, string> {
    const container = podContainer(deployment);
    const environment = new Map<string, string>();
    for (const source of container.envFrom ?? []) {
        if (source.configMapRef) {
            const data = k8sObject("ConfigMap", source.configMapRef.name).data ?? {};
            for (const [name, value] of Object.entries(data)) environment.set(name, String(value));
        }
        if (source.secretRef) {
            const secret = k8sObject("Secret", source.secretRef.name);
            for (const name of Object.keys(secret.stringData ?? secret.data ?? {})) {
                environment.set(name, `<secret ${source.secretRef.name}/${name}>`);
            }
        }
    }
    for (const entry of container.env ?? []) {
        const reference = entry.valueFrom?.secretKeyRef ?? entry.valueFrom?.configMapKeyRef;
        if (reference) {
            const kind = entry.valueFrom.secretKeyRef ? "Secret" : "ConfigMap";
            const source = k8sObject(kind, reference.name);
            const data = source.stringData ?? source.data ?? {};
            expect(Object.keys(data)).toContain(reference.key);
            environment.set(
                entry.name,
                kind === "Secret"
                    ? `<secret ${reference.name}/${reference.key}>`
                    : data[reference.key],
            );
        } else if (entry.valueFrom) {
            environment.set(entry.name, `<${Object.keys(entry.valueFrom)[0]}>`);
        } else {
            // `$(NAME)` expands only names declared before it in the same list.
            for (const match of String(entry.value ?? "").matchAll(/\$\(([A-Z0-9_]+)\)/g)) {
                expect(environment.has(match[1])).toBe(true);
            }
            environment.set(entry.name, String(entry.value ?? ""));
        }
    }
    return environment;
}

/** A probe's or Service's port: a number or the name of one of the container's ports. */
function containerPort(
    container: { ports?: { name?: string; containerPort: number }[] },
    port: string | number,
): number {
    if (typeof port === "number") return port;
    const named = (container.ports ?? []).find(candidate => candidate.name === port);
    if (!named) throw new Error(`the container has no port named ${port}`);
    return named.containerPort;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
    return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

// --- Dockerfile and .dockerignore ---

interface Stage {
    image: string;
    name: string | null;
    instructions: { keyword: string; args: string }[];
}

function dockerfileStages(): Stage[] {
    const lines = read("Dockerfile")
        .replace(/\\\n/g, " ")
        .split("\n")
        .map(line => line.trim())
        .filter(line => line && !line.startsWith("#"));
    const stages: Stage[] = [];
    for (const line of lines) {
        const [, keyword, args] = /^(\S+)\s+(.*)$/.exec(line)!;
        if (keyword.toUpperCase() === "FROM") {
            const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
            stages.push({ image, name: name ?? null, instructions: [] });
        } else if (stages.length) {
            stages.at(-1)!.instructions.push({ keyword: keyword.toUpperCase(), args });
        }
    }
    return stages;
}

/** Whether `.dockerignore` keeps `file` out of the build context (its patterns, in order). */
function dockerIgnored(file: string): boolean {
    const patterns = read(".dockerignore")
        .split("\n")
        .map(line => line.trim())
        .filter(line => line && !line.startsWith("#"));
    let ignored = false;
    const parents = file.split("/").map((_, index, parts) => parts.slice(0, index + 1).join("/"));
    for (const raw of patterns) {
        const negated = raw.startsWith("!");
        const pattern = (negated ? raw.slice(1) : raw).replace(/^\/|\/$/g, "");
        const regex = new RegExp(
            "^" +
                pattern
                    .split("**")
                    .map(part =>
                        part
                            .replace(/[.+^${}()|[\]\\]/g, "\\$&")
                            .replace(/\*/g, "[^/]*")
                            .replace(/\?/g, "[^/]"),
                    )
                    .join(".*") +
                "$",
        );
        if (parents.some(candidate => regex.test(candidate))) ignored = !negated;
    }
    return ignored;
}

// --- PromQL of the Grafana dashboard ---

interface Selector {
    metric: string;
    labels: string[];
}

interface ParsedPromQL {
    selectors: Selector[];
    /** Labels of `by (…)`, `without (…)`, `on (…)` and `ignoring (…)`. */
    grouping: string[];
    /** Labels that `label_replace` makes, and the labels it reads them from. */
    created: string[];
    read: string[];
}

const PROMQL_KEYWORDS = new Set([
    ...["by", "without", "on", "ignoring", "group_left", "group_right"],
    ...["and", "or", "unless", "bool", "offset"],
]);

/** The metric selectors of an expression and the labels it uses beside them. */
function parsePromQL(expression: string): ParsedPromQL {
    const parsed: ParsedPromQL = { selectors: [], grouping: [], created: [], read: [] };
    // label_replace(v, "dst", "replacement", "src", "regex")
    for (const [, created, read] of expression.matchAll(
        /label_replace\([^"]*(?:"[^"]*"[^"]*)*?"(\w+)"\s*,\s*"[^"]*"\s*,\s*"(\w+)"\s*,\s*"[^"]*"\s*\)/g,
    )) {
        parsed.created.push(created);
        parsed.read.push(read);
    }
    // Matchers first (their values are strings), then every other string, ranges and groupings.
    const matchers: string[][] = [];
    let rest = expression.replace(/\{([^}]*)\}/g, (_, body: string) => {
        const labels = [...body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)];
        matchers.push(labels.map(match => match[1]));
        return `{${matchers.length - 1}}`;
    });
    rest = rest
        .replace(/"(?:[^"\\]|\\.)*"/g, '""')
        .replace(/\[[^\]]*\]/g, " ")
        .replace(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g, (_, list: string) => {
            parsed.grouping.push(
                ...list
                    .split(",")
                    .map(label => label.trim())
                    .filter(Boolean),
            );
            return " ";
        });
    for (const [, name, index, call] of rest.matchAll(
        /(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(\d+)\})?(\s*\()?/g,
    )) {
        if (call || PROMQL_KEYWORDS.has(name)) continue;
        parsed.selectors.push({ metric: name, labels: index ? matchers[Number(index)] : [] });
    }
    return parsed;
}

/** Sample names of Prometheus text, with every label name seen on each. */
function exportedSeries(text: string): Map<string, Set<string>> {
    const series = new Map<string, Set<string>>();
    for (const line of text.split("\n")) {
        if (!line || line.startsWith("#")) continue;
        const [, name, labels] = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line)!;
        const names = series.get(name) ?? new Set<string>();
        for (const label of (labels ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
            names.add(label[1]);
        }
        series.set(name, names);
    }
    return series;
}

interface Dashboard {
    panels: {
        type: string;
        title: string;
        datasource?: { uid: string };
        targets?: { expr: string; legendFormat?: string; datasource?: { uid: string } }[];
    }[];
}

const dashboard = JSON.parse(read("deploy/grafana/dashboards/agora.json")) as Dashboard;
const dashboardTargets = dashboard.panels.flatMap(panel =>
    (panel.targets ?? []).map(target => ({ panel: panel.title, ...target })),
);
const prometheusConfig = YAML.parse(read("deploy/prometheus/prometheus.yml"));
const agoraScrapeJob = prometheusConfig.scrape_configs.find(
    (job: { dns_sd_configs?: unknown }) => job.dns_sd_configs,
);
/** Labels that Prometheus adds to what it scrapes (the relabelling of prometheus.yml included). */
const PROMETHEUS_LABELS = new Set([
    "job",
    "instance",
    ...(agoraScrapeJob?.relabel_configs ?? []).map(
        (rule: { target_label: string }) => rule.target_label,
    ),
]);
/** Series Prometheus makes itself rather than scraping them. */
const PROMETHEUS_SERIES = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);

// ================================================================================================

describe("the variables the code reads", () => {
    const readByCode = variablesReadByCode();

    it("are each listed above with how a cluster provides them", () => {
        expect(readByCode.length).toBeGreaterThan(10);
        expect(Object.keys(VARIABLES).sort()).toEqual(readByCode);
    });

    it('read an empty value as their default, so that `${X:-}` and `X: ""` mean the default', () => {
        const empty = Object.fromEntries(readByCode.map(name => [name, ""]));
        expect(readConfig(empty)).toEqual(readConfig({}));
        expect(passwordCost("", true)).toBe(passwordCost(undefined, true));
    });

    it("are all documented in .env.example", () => {
        const example = read(".env.example");
        const missing = readByCode.filter(name => !new RegExp(`\\b${name}\\b`).test(example));
        expect(missing).toEqual([]);
    });

    it("are all in the README's configuration table", () => {
        const table = read("README.md")
            .split("\n")
            .filter(line => line.startsWith("|"))
            .join("\n");
        expect(readByCode.filter(name => !table.includes(`\`${name}\``))).toEqual([]);
    });
});

describe("docker-compose.yml", () => {
    it("has one service per node kind, each built from the Dockerfile into the same image", () => {
        const stageNames = dockerfileStages().map(stage => stage.name);
        const images = new Set<string>();
        for (const kind of KINDS) {
            const service = compose.services[kind];
            expect(service).toBeDefined();
            const build =
                typeof service.build === "string" ? { context: service.build } : service.build!;
            expect(path.resolve(ROOT, build.context)).toBe(ROOT);
            const dockerfile = build.dockerfile ?? "Dockerfile";
            expect(fs.existsSync(path.join(ROOT, dockerfile))).toBe(true);
            expect(stageNames).toContain(build.target);
            images.add(service.image ?? "");
            expect(composeEnvironment(service).SERVICES).toBe(kind);
        }
        expect(images.size).toBe(1);
        expect([...images][0]).not.toBe("");
    });

    it("scales every node kind: no container names, no replicas, only the gateway publishes a port", () => {
        for (const kind of KINDS) {
            const service = compose.services[kind];
            expect(service.container_name).toBeUndefined();
            expect(service.deploy?.replicas).toBeUndefined();
            if (kind !== "api") expect(service.ports).toBeUndefined();
        }
        const published = (compose.services.api.ports ?? []).map(port =>
            typeof port === "string" ? Number(port.split(":").pop()) : port.target,
        );
        expect(published).toEqual([DEFAULTS.port]);
    });

    it.each(KINDS)(
        "sets every variable the %s nodes need, and nothing the code doesn't read",
        kind => {
            const environment = composeEnvironment(compose.services[kind]);
            for (const [name, rule] of Object.entries(VARIABLES)) {
                const wanted = rule.kinds.includes(kind);
                expect({ name, set: name in environment }).toEqual({ name, set: wanted });
                if (!wanted) continue;
                const value = interpolate(environment[name]);
                if (rule.value !== undefined)
                    expect({ name, value }).toEqual({ name, value: rule.value });
                if (!rule.mayBeEmpty)
                    expect({ name, empty: value === "" }).toEqual({ name, empty: false });
            }
            for (const name of Object.keys(environment))
                expect(Object.keys(VARIABLES)).toContain(name);
        },
    );

    it("gives shared variables one value on every node kind", () => {
        for (const [name, rule] of Object.entries(VARIABLES).filter(([, rule]) => rule.same)) {
            const values = new Set(
                rule.kinds.map(kind => composeEnvironment(compose.services[kind])[name]),
            );
            expect({ name, values: values.size }).toEqual({ name, values: 1 });
        }
    });

    it("points the nodes at its NATS with JetStream, its Redis and its PostgreSQL", () => {
        const environment = composeEnvironment(compose.services.orders);
        const transporter = new URL(environment.TRANSPORTER);
        expect(transporter.protocol).toBe("nats:");
        const nats = compose.services[transporter.hostname];
        const natsCommand = ([] as string[]).concat(nats.command ?? []).join(" ");
        expect(natsCommand).toMatch(/(^|\s)(--jetstream|-js)(\s|$)/);
        expect(transporter.port).toBe("4222");

        const cacher = new URL(environment.CACHER);
        expect(cacher.protocol).toBe("redis:");
        expect(compose.services[cacher.hostname].image).toMatch(/^redis:/);
        expect(cacher.port).toBe("6379");

        const database = new URL(interpolate(environment.DATABASE_URL));
        expect(database.protocol).toBe("postgres:");
        const postgres = compose.services[database.hostname];
        expect(postgres.image).toMatch(/^postgres:/);
        expect(database.port).toBe("5432");
        expect(database.pathname).toBe("/agora");
        expect(database.username).toBe("agora");
        // init.sql makes the role from AGORA_DB_PASSWORD: the same variable as in the URL.
        expect(environment.DATABASE_URL).toContain("${AGORA_DB_PASSWORD");
        expect(Object.keys(composeEnvironment(postgres))).toContain("AGORA_DB_PASSWORD");
    });

    it("sends every node's spans to its Zipkin", () => {
        const url = new URL(composeEnvironment(compose.services.api).ZIPKIN_URL);
        expect(compose.services[url.hostname].image).toMatch(/^openzipkin\/zipkin:/);
        expect(url.port).toBe("9411");
        // As the node reads it, with the optional variables unset.
        const environment = Object.fromEntries(
            Object.entries(composeEnvironment(compose.services.api)).map(([name, value]) => [
                name,
                interpolate(value),
            ]),
        );
        expect(readConfig(environment).tracing).toBe("zipkin");
    });

    it("runs deploy/postgres/init.sql when PostgreSQL first starts", () => {
        const mounts = (compose.services.postgres.volumes ?? []).map(String);
        expect(mounts).toContainEqual(
            expect.stringMatching(
                /^\.\/deploy\/postgres\/init\.sql:\/docker-entrypoint-initdb\.d\//,
            ),
        );
        expect(read("deploy/postgres/init.sql")).toMatch(/\\getenv \w+ AGORA_DB_PASSWORD/);
    });

    it("checks each node's readiness on the port and path the code serves it", () => {
        for (const kind of KINDS) {
            const url = composeHealthUrl(compose.services[kind]);
            const environment = composeEnvironment(compose.services[kind]);
            expect(url.hostname).toBe("127.0.0.1");
            expect(url.pathname).toBe(READY_PATH);
            expect(url.port).toBe(kind === "api" ? environment.PORT : environment.HEALTH_PORT);
        }
    });

    it("starts nodes only after what they depend on is healthy", () => {
        for (const kind of KINDS) {
            const dependsOn = compose.services[kind].depends_on;
            expect(dependsOn).toBeDefined();
            expect(Array.isArray(dependsOn)).toBe(false);
            const dependencies = Object.entries(dependsOn as Record<string, { condition: string }>);
            const names = dependencies.map(([name]) => name);
            expect(names).toEqual(expect.arrayContaining(["nats", "redis"]));
            if (WITH_DATABASE.includes(kind)) expect(names).toContain("postgres");
            for (const [name, { condition }] of dependencies) {
                expect({ name, condition }).toEqual({ name, condition: "service_healthy" });
                expect(compose.services[name].healthcheck).toBeDefined();
            }
        }
    });

    it("mounts the JWT keys as secrets at the paths the nodes are given", () => {
        for (const kind of KINDS) {
            const service = compose.services[kind];
            const environment = composeEnvironment(service);
            const secrets = (service.secrets ?? []).map(secret =>
                typeof secret === "string" ? secret : secret.source,
            );
            for (const name of ["JWT_PUBLIC_KEY_FILE", "JWT_PRIVATE_KEY_FILE"]) {
                if (!environment[name]) continue;
                const [, secret] = /^\/run\/secrets\/(.+)$/.exec(environment[name])!;
                expect(secrets).toContain(secret);
                expect(compose.secrets?.[secret]?.file).toBeDefined();
            }
            // The private key stays on users nodes.
            if (kind !== "users") expect(secrets).not.toContain("jwt_private_key");
        }
        // The key files are made per machine and never committed or sent to a build.
        for (const secret of Object.values(compose.secrets ?? {})) {
            const file = path.normalize(secret.file!);
            expect(file.startsWith(path.join("deploy", "secrets"))).toBe(true);
            expect(dockerIgnored(file)).toBe(true);
        }
        expect(read("deploy/secrets/.gitignore").split("\n")).toContain("*");
    });

    it("mounts only files that are in the repository", () => {
        for (const [name, service] of Object.entries(compose.services)) {
            for (const volume of service.volumes ?? []) {
                const source = typeof volume === "string" ? volume.split(":")[0] : volume.source;
                if (!source.startsWith(".")) continue;
                expect({ name, source, exists: fs.existsSync(path.join(ROOT, source)) }).toEqual({
                    name,
                    source,
                    exists: true,
                });
            }
        }
    });

    it("has every interpolated variable in .env.example, the required ones set", () => {
        const example = read(".env.example");
        for (const [name, required] of composeVariables()) {
            const set = new RegExp(`^${name}=.+$`, "m").test(example);
            const mentioned = new RegExp(`^#\\s*${name}=`, "m").test(example);
            expect({ name, documented: set || mentioned }).toEqual({ name, documented: true });
            if (required) expect({ name, set }).toEqual({ name, set: true });
        }
    });

    it("keeps placeholders, never real secrets, in .env.example", () => {
        const example = read(".env.example");
        expect(example).not.toMatch(/-----BEGIN/);
        for (const [, name, value] of example.matchAll(/^([A-Z0-9_]*PASSWORD[A-Z0-9_]*)=(.*)$/gm)) {
            expect({ name, placeholder: value.startsWith("change-me") }).toEqual({
                name,
                placeholder: true,
            });
        }
    });
});

describe("Prometheus and Grafana (deploy/)", () => {
    it("scrapes every node kind of the compose file through DNS discovery, on the metrics port", () => {
        expect(agoraScrapeJob).toBeDefined();
        expect(agoraScrapeJob.metrics_path ?? "/metrics").toBe(METRICS_PATH);
        const discovered = agoraScrapeJob.dns_sd_configs.flatMap(
            (sd: { names: string[]; type: string; port: number }) => {
                expect(sd.type).toBe("A");
                expect(sd.port).toBe(DEFAULTS.metricsPort);
                return sd.names;
            },
        );
        expect([...discovered].sort()).toEqual([...KINDS].sort());
        for (const kind of KINDS) {
            expect(composeEnvironment(compose.services[kind]).METRICS_PORT).toBe(
                String(DEFAULTS.metricsPort),
            );
        }
    });

    it("runs Prometheus and Grafana with this configuration, provisioned", () => {
        const prometheusMounts = (compose.services.prometheus.volumes ?? []).map(String);
        expect(prometheusMounts).toContain(
            "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        );

        const datasources = YAML.parse(
            read("deploy/grafana/provisioning/datasources/prometheus.yml"),
        );
        const datasource = datasources.datasources[0];
        const url = new URL(datasource.url);
        expect(compose.services[url.hostname].image).toMatch(/^prom\/prometheus:/);
        expect(url.port).toBe("9090");

        const providers = YAML.parse(read("deploy/grafana/provisioning/dashboards/agora.yml"));
        const grafanaMounts = (compose.services.grafana.volumes ?? []).map(String);
        expect(grafanaMounts).toContain(
            `./deploy/grafana/dashboards:${providers.providers[0].options.path}:ro`,
        );
        expect(grafanaMounts).toContainEqual(
            expect.stringMatching(
                /^\.\/deploy\/grafana\/provisioning:\/etc\/grafana\/provisioning/,
            ),
        );
        for (const panel of dashboard.panels.filter(panel => panel.type !== "row")) {
            expect({ panel: panel.title, uid: panel.datasource?.uid }).toEqual({
                panel: panel.title,
                uid: datasource.uid,
            });
        }
    });

    it("has a dashboard with the panels an operator needs", () => {
        const titles = dashboard.panels.map(panel => panel.title).join("\n");
        for (const wanted of [
            /requests\/s/i,
            /p50/i,
            /p99/i,
            /errors/i,
            /circuit breaker/i,
            /cache hit ratio/i,
            /orders placed/i,
            /orders by status/i,
            /outbox/i,
            /nodes online/i,
        ]) {
            expect(titles).toMatch(wanted);
        }
        expect(dashboardTargets.length).toBeGreaterThan(10);
    });
});

describe("k8s/", () => {
    it("lists every manifest in kustomization.yaml", () => {
        expect([...kustomization.resources].sort()).toEqual(K8S_FILES);
        expect(kustomization.namespace).toBe(k8sObjectsOfKind("Namespace")[0]?.metadata.name);
    });

    it("has a Deployment per node kind running the Dockerfile's image with its SERVICES", () => {
        const images = new Set(kustomization.images.map((image: { name: string }) => image.name));
        for (const kind of KINDS) {
            const container = podContainer(k8sObject("Deployment", kind));
            expect(images.has(container.image)).toBe(true);
            expect(k8sEnvironment(k8sObject("Deployment", kind)).get("SERVICES")).toBe(kind);
        }
    });

    it.each(KINDS)(
        "gives the %s Deployment every variable it needs, and nothing the code doesn't read",
        kind => {
            const deployment = k8sObject("Deployment", kind);
            const environment = k8sEnvironment(deployment);
            const expandedInto = new Set(
                [...environment.values()].flatMap(value =>
                    [...value.matchAll(/\$\(([A-Z0-9_]+)\)/g)].map(m => m[1]),
                ),
            );
            for (const [name, rule] of Object.entries(VARIABLES)) {
                const wanted = rule.kinds.includes(kind);
                expect({ name, set: environment.has(name) }).toEqual({ name, set: wanted });
                if (!wanted) continue;
                const value = environment.get(name)!;
                if (rule.value !== undefined)
                    expect({ name, value }).toEqual({ name, value: rule.value });
                if (!rule.mayBeEmpty)
                    expect({ name, empty: value === "" }).toEqual({ name, empty: false });
            }
            for (const name of environment.keys()) {
                expect({ name, known: name in VARIABLES || expandedInto.has(name) }).toEqual({
                    name,
                    known: true,
                });
            }
            if (WITH_DATABASE.includes(kind)) {
                const database = new URL(
                    environment.get("DATABASE_URL")!.replace(/\$\([A-Z0-9_]+\)/g, "x"),
                );
                expect(
                    k8sObject("Service", database.hostname).spec.ports.map(
                        (p: { port: number }) => p.port,
                    ),
                ).toContain(Number(database.port));
                expect(database.pathname).toBe("/agora");
            }
        },
    );

    it("gives shared variables one value on every node kind", () => {
        for (const [name, rule] of Object.entries(VARIABLES).filter(([, rule]) => rule.same)) {
            const values = new Set(
                rule.kinds.map(kind => k8sEnvironment(k8sObject("Deployment", kind)).get(name)),
            );
            expect({ name, values: values.size }).toEqual({ name, values: 1 });
        }
    });

    it("mounts the JWT keys where the nodes look for them, the private one on users pods only", () => {
        for (const kind of KINDS) {
            const deployment = k8sObject("Deployment", kind);
            const environment = k8sEnvironment(deployment);
            const container = podContainer(deployment);
            const volumes = deployment.spec.template.spec.volumes ?? [];
            const files = new Set<string>();
            for (const mount of container.volumeMounts ?? []) {
                const volume = volumes.find(
                    (candidate: { name: string }) => candidate.name === mount.name,
                );
                if (!volume?.secret) continue;
                const secret = k8sObject("Secret", volume.secret.secretName);
                const keys: string[] = volume.secret.items
                    ? volume.secret.items.map((item: { key: string; path: string }) => {
                          expect(Object.keys(secret.stringData)).toContain(item.key);
                          return item.path;
                      })
                    : Object.keys(secret.stringData);
                for (const key of keys) files.add(path.posix.join(mount.mountPath, key));
            }
            expect(files.has(environment.get("JWT_PUBLIC_KEY_FILE")!)).toBe(true);
            if (kind === "users")
                expect(files.has(environment.get("JWT_PRIVATE_KEY_FILE")!)).toBe(true);
            else expect([...files].some(file => /private/.test(file))).toBe(false);
        }
    });

    it("probes each node's health port and paths, and announces its metrics to Prometheus", () => {
        for (const kind of KINDS) {
            const deployment = k8sObject("Deployment", kind);
            const environment = k8sEnvironment(deployment);
            const container = podContainer(deployment);
            const healthPort = Number(environment.get(kind === "api" ? "PORT" : "HEALTH_PORT"));
            const { livenessProbe, readinessProbe } = container;
            expect(livenessProbe.httpGet.path).toBe(LIVE_PATH);
            expect(readinessProbe.httpGet.path).toBe(READY_PATH);
            expect(containerPort(container, livenessProbe.httpGet.port)).toBe(healthPort);
            expect(containerPort(container, readinessProbe.httpGet.port)).toBe(healthPort);

            const annotations = deployment.spec.template.metadata.annotations;
            expect(annotations["prometheus.io/scrape"]).toBe("true");
            expect(annotations["prometheus.io/path"]).toBe(METRICS_PATH);
            expect(annotations["prometheus.io/port"]).toBe(environment.get("METRICS_PORT"));
            expect(
                container.ports.map((port: { containerPort: number }) => port.containerPort),
            ).toEqual(
                expect.arrayContaining([healthPort, Number(environment.get("METRICS_PORT"))]),
            );
            expect(container.resources.requests).toEqual(
                expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
            );
            expect(container.resources.limits.memory).toEqual(expect.any(String));
        }
    });

    it("has an HPA and a PodDisruptionBudget per node kind that target its pods", () => {
        for (const kind of KINDS) {
            const deployment = k8sObject("Deployment", kind);
            const podLabels = deployment.spec.template.metadata.labels;
            expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);

            const hpa = k8sObject("HorizontalPodAutoscaler", kind);
            expect(hpa.apiVersion).toBe("autoscaling/v2");
            expect(hpa.spec.scaleTargetRef).toEqual({
                apiVersion: "apps/v1",
                kind: "Deployment",
                name: kind,
            });
            expect(hpa.spec.minReplicas).toBe(deployment.spec.replicas);
            expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);

            const pdb = k8sObject("PodDisruptionBudget", kind);
            expect(pdb.apiVersion).toBe("policy/v1");
            expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
            // Nothing else: a PDB that selects other kinds' pods counts them as this kind's.
            for (const other of KINDS.filter(candidate => candidate !== kind)) {
                const otherLabels = k8sObject("Deployment", other).spec.template.metadata.labels;
                expect(matches(pdb.spec.selector.matchLabels, otherLabels)).toBe(false);
            }
            // A drain must be able to evict one pod.
            expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
        }
    });

    it("exposes the gateway, and only the gateway, through a Service and an Ingress", () => {
        const service = k8sObject("Service", "api");
        for (const kind of KINDS) {
            const labels = k8sObject("Deployment", kind).spec.template.metadata.labels;
            expect({ kind, selected: matches(service.spec.selector, labels) }).toEqual({
                kind,
                selected: kind === "api",
            });
        }
        const container = podContainer(k8sObject("Deployment", "api"));
        const [port] = service.spec.ports;
        expect(containerPort(container, port.targetPort)).toBe(DEFAULTS.port);

        const ingress = k8sObject("Ingress", "api");
        const paths = ingress.spec.rules.flatMap(
            (rule: {
                http: {
                    paths: {
                        path: string;
                        backend: {
                            service: { name: string; port: { name?: string; number?: number } };
                        };
                    }[];
                };
            }) => rule.http.paths,
        );
        expect(paths.map((entry: { path: string }) => entry.path).sort()).toEqual([
            "/api",
            "/graphql",
        ]);
        for (const entry of paths) {
            expect(entry.backend.service.name).toBe("api");
            const backendPort = entry.backend.service.port;
            expect(
                service.spec.ports.some(
                    (candidate: { name: string; port: number }) =>
                        candidate.name === backendPort.name ||
                        candidate.port === backendPort.number,
                ),
            ).toBe(true);
        }
    });

    it("runs NATS with JetStream, Redis and PostgreSQL as StatefulSets behind the Services the nodes use", () => {
        const config = k8sObject("ConfigMap", "agora-config").data;
        const transporter = new URL(config.TRANSPORTER);
        const cacher = new URL(config.CACHER);
        for (const [name, port] of [
            [transporter.hostname, Number(transporter.port)],
            [cacher.hostname, Number(cacher.port)],
            ["postgres", 5432],
        ] as const) {
            const statefulSet = k8sObject("StatefulSet", name);
            const service = k8sObject("Service", statefulSet.spec.serviceName);
            expect(service.metadata.name).toBe(name);
            expect(matches(service.spec.selector, statefulSet.spec.template.metadata.labels)).toBe(
                true,
            );
            expect(service.spec.ports.map((p: { port: number }) => p.port)).toContain(port);
            expect(statefulSet.spec.replicas).toBe(1);
        }
        const nats = podContainer(k8sObject("StatefulSet", transporter.hostname));
        expect([...(nats.command ?? []), ...(nats.args ?? [])].join(" ")).toMatch(
            /(^|\s)(--jetstream|-js)(\s|$)/,
        );
    });

    it("initialises PostgreSQL with the same init.sql as compose, its password from the Secret", () => {
        expect(k8sObject("ConfigMap", "postgres-init").data["init.sql"]).toBe(
            read("deploy/postgres/init.sql"),
        );
        const postgres = k8sObject("StatefulSet", "postgres");
        const container = podContainer(postgres);
        const names = container.env.map((entry: { name: string }) => entry.name);
        expect(names).toEqual(expect.arrayContaining(["POSTGRES_PASSWORD", "AGORA_DB_PASSWORD"]));
        const initMount = container.volumeMounts.find(
            (mount: { mountPath: string }) => mount.mountPath === "/docker-entrypoint-initdb.d",
        );
        const initVolume = postgres.spec.template.spec.volumes.find(
            (volume: { name: string }) => volume.name === initMount.name,
        );
        expect(initVolume.configMap.name).toBe("postgres-init");
    });

    it("keeps only placeholders in the Secret template", () => {
        const secrets = k8sObjectsOfKind("Secret");
        expect(secrets.length).toBeGreaterThan(0);
        for (const secret of secrets) {
            expect(secret.data).toBeUndefined();
            for (const [key, value] of Object.entries(
                secret.stringData as Record<string, string>,
            )) {
                expect(value).not.toMatch(/-----BEGIN/);
                if (/PASSWORD|pem/i.test(key)) {
                    expect({ key, placeholder: value.startsWith("change-me") }).toEqual({
                        key,
                        placeholder: true,
                    });
                }
            }
        }
    });

    const kubectl =
        spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0;
    (kubectl ? it : it.skip)(
        "renders with `kubectl kustomize` (skipped where kubectl isn't installed)",
        () => {
            const rendered = spawnSync("kubectl", ["kustomize", path.join(ROOT, "k8s")], {
                encoding: "utf8",
            });
            expect(rendered.stderr).toBe("");
            expect(rendered.status).toBe(0);
            const objects = YAML.parseAllDocuments(rendered.stdout).map(
                document => document.toJS() as K8sObject,
            );
            expect(objects).toHaveLength(k8sObjects.length);
            const [image] = kustomization.images;
            for (const object of objects) {
                if (object.kind !== "Namespace")
                    expect(object.metadata.namespace).toBe(kustomization.namespace);
            }
            for (const kind of KINDS) {
                const deployment = objects.find(
                    object => object.kind === "Deployment" && object.metadata.name === kind,
                )!;
                expect(podContainer(deployment).image).toBe(
                    `${image.newName ?? image.name}:${image.newTag}`,
                );
            }
        },
    );
});

describe("the Node flags of every node (lib/node-flags.ts)", () => {
    it("are the ones npm start runs the node with", () => {
        const start = JSON.parse(read("package.json")).scripts.start as string;
        expect(start).toContain(`node ${NODE_FLAGS.join(" ")} dist/bin/agora.js`);
    });
});

describe("Dockerfile", () => {
    const stages = dockerfileStages();
    const runtime = stages.at(-1)!;
    const runs = (stage: Stage) =>
        stage.instructions.filter(i => i.keyword === "RUN").map(i => i.args);

    it("builds in one stage and runs the compiled JavaScript, production dependencies only, in the last", () => {
        expect(stages.length).toBeGreaterThanOrEqual(2);
        const build = stages.find(stage => runs(stage).some(args => /npm run build/.test(args)))!;
        expect(build).toBeDefined();
        expect(runs(build).some(args => /\bnpm ci\b/.test(args))).toBe(true);
        expect(JSON.parse(read("package.json")).scripts.build).toMatch(/tsc/);

        for (const kind of KINDS) {
            expect((compose.services[kind].build as { target?: string }).target).toBe(runtime.name);
        }
        expect(runs(runtime).some(args => /\bnpm ci\b.*--omit=dev/.test(args))).toBe(true);
        expect(runs(runtime).some(args => /npm run build|tsc/.test(args))).toBe(false);
        const copies = runtime.instructions.filter(i => i.keyword === "COPY").map(i => i.args);
        expect(copies).toContainEqual(
            expect.stringMatching(new RegExp(`--from=${build.name}\\s+\\S*dist\\b`)),
        );
        expect(
            runtime.instructions.some(
                i => i.keyword === "ENV" && /NODE_ENV=production/.test(i.args),
            ),
        ).toBe(true);
    });

    it("runs dist/bin/agora.js as a non-root user and exposes the code's ports", () => {
        const user = runtime.instructions.filter(i => i.keyword === "USER").at(-1);
        expect(user).toBeDefined();
        expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
        const cmd = runtime.instructions.find(i => i.keyword === "CMD")!;
        expect(JSON.parse(cmd.args)).toEqual([
            "node",
            ...NODE_FLAGS,
            JSON.parse(read("package.json")).main,
        ]);
        expect(JSON.parse(read("package.json")).main).toBe("dist/bin/agora.js");
        expect(fs.existsSync(path.join(ROOT, "bin", "agora.ts"))).toBe(true);
        const exposed = runtime.instructions
            .filter(i => i.keyword === "EXPOSE")
            .flatMap(i => i.args.split(/\s+/).map(Number));
        expect(exposed.sort()).toEqual(
            [DEFAULTS.port, DEFAULTS.healthPort, DEFAULTS.metricsPort].sort(),
        );
    });

    it("gets the sources the build compiles but nothing built, installed or secret from the host", () => {
        const build = JSON.parse(read("tsconfig.build.json"));
        for (const file of [
            "package.json",
            "package-lock.json",
            "tsconfig.json",
            "tsconfig.build.json",
            ...build.include,
        ]) {
            expect({ file, ignored: dockerIgnored(file) }).toEqual({ file, ignored: false });
        }
        for (const file of [
            "node_modules",
            "dist",
            ".data",
            ".env",
            ".git",
            "deploy/secrets/jwt-private.pem",
        ]) {
            expect({ file, ignored: dockerIgnored(file) }).toEqual({ file, ignored: true });
        }
    });
});

/** A status, with the body in the failure message when it is another one. */
function expectStatus(result: HttpResult, status: number): void {
    expect({ status: result.status, body: result.status === status ? null : result.body }).toEqual({
        status,
        body: null,
    });
}

describe("against a real node", () => {
    const run = promisify(execFile);
    let db: TestDatabase;
    let broker: ServiceBroker;
    let healthServer: Server;
    let base: string;
    let healthBase: string;
    let metricsText: string;
    let failNextReserve = false;

    /** Fails one stock reservation, as if no products node answered: the order becomes PENDING. */
    const unreachableInventoryOnce = {
        name: "UnreachableInventoryOnce",
        localAction(handler: (ctx: unknown) => Promise<unknown>, action: { name: string }) {
            if (action.name !== "products.reserve") return handler;
            return (ctx: unknown) => {
                if (!failNextReserve) return handler(ctx);
                failNextReserve = false;
                return Promise.reject(new Errors.ServiceNotAvailableError({ action: action.name }));
            };
        },
    } as unknown as Middleware;

    beforeAll(async () => {
        db = await createTestDatabase();
        process.env.DATABASE_URL = db.url;
        const metricsPort = await freePort();
        broker = createTestBroker({
            services: [...KINDS],
            env: { METRICS_PORT: String(metricsPort) },
            middlewares: [unreachableInventoryOnce],
        });
        // An endpoint that always fails with a 5xx, to trip a circuit breaker for its metrics.
        broker.createService({
            name: "failing",
            actions: {
                fail() {
                    throw new Errors.MoleculerError("always down", 500);
                },
            },
        });
        await broker.start();
        base = gatewayUrl(broker);
        const healthPort = await freePort();
        healthServer = startHealthServer(broker, healthPort);
        healthBase = `http://127.0.0.1:${healthPort}`;

        const config = readConfig();
        const login = await http(base, "POST", "/api/auth/login", {
            body: { email: config.adminEmail, password: config.adminPassword },
        });
        expectStatus(login, 200);
        const token = login.body.accessToken as string;
        const product = async (name: string, stock: number) => {
            const created = await http(base, "POST", "/api/products", {
                token,
                body: { name, price: 100, stock },
            });
            expectStatus(created, 201);
            return created.body.id as string;
        };
        const scarce = await product("Scarce", 1);
        const plenty = await product("Plenty", 10);
        expectStatus(await http(base, "GET", "/api/products"), 200);
        expectStatus(await http(base, "GET", "/api/products"), 200);
        const order = (productId: string) =>
            http(base, "POST", "/api/orders", {
                token,
                body: { items: [{ productId, quantity: 1 }] },
            });
        expectStatus(await order(scarce), 201);
        expectStatus(await order(scarce), 409);
        failNextReserve = true;
        expectStatus(await order(plenty), 202);
        await broker.call("orders.settle", { minAgeMs: 0 });
        for (let i = 0; i < 25; i++) await broker.call("failing.fail").catch(() => undefined);

        const response = await fetch(`http://127.0.0.1:${metricsPort}${METRICS_PATH}`);
        expect(response.status).toBe(200);
        metricsText = await response.text();
    }, 60_000);

    afterAll(async () => {
        healthServer?.close();
        await broker?.stop();
        await db?.drop();
    });

    it("serves the probed health paths on the gateway and on the health port", async () => {
        for (const url of [
            base + LIVE_PATH,
            base + READY_PATH,
            healthBase + LIVE_PATH,
            healthBase + READY_PATH,
        ]) {
            expect({ url, status: (await fetch(url)).status }).toEqual({ url, status: 200 });
        }
    });

    it("passes the compose healthcheck commands, which fail when nothing answers", async () => {
        const targets = { api: new URL(base).port, users: new URL(healthBase).port };
        for (const [kind, port] of Object.entries(targets)) {
            const test = compose.services[kind].healthcheck!.test as string[];
            expect(test.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
            const url = composeHealthUrl(compose.services[kind]);
            const script = test[3].replace(url.host, `127.0.0.1:${port}`);
            await expect(run("node", ["-e", script])).resolves.toBeDefined();
            const closed = await freePort();
            await expect(
                run("node", ["-e", test[3].replace(url.host, `127.0.0.1:${closed}`)]),
            ).rejects.toMatchObject({
                code: 1,
            });
        }
    });

    it("exports every metric and label the Grafana dashboard queries", () => {
        const series = exportedSeries(metricsText);
        for (const target of dashboardTargets) {
            const { selectors, grouping, created, read } = parsePromQL(target.expr);
            expect(selectors.length).toBeGreaterThan(0);
            const exportedLabels = new Set<string>(PROMETHEUS_LABELS);
            for (const { metric, labels } of selectors) {
                if (PROMETHEUS_SERIES.has(metric)) continue;
                const exported = series.get(metric);
                expect({ panel: target.panel, metric, exported: !!exported }).toEqual({
                    panel: target.panel,
                    metric,
                    exported: true,
                });
                for (const label of labels) {
                    const found = exported!.has(label) || PROMETHEUS_LABELS.has(label);
                    expect({ metric, label, found }).toEqual({ metric, label, found: true });
                }
                for (const label of exported!) exportedLabels.add(label);
            }
            const { expr } = target;
            for (const label of read) {
                const found = exportedLabels.has(label);
                expect({ expr, label, found }).toEqual({ expr, label, found: true });
            }
            for (const label of grouping) {
                const found = exportedLabels.has(label) || created.includes(label);
                expect({ expr, label, found }).toEqual({ expr, label, found: true });
            }
            for (const [, label] of (target.legendFormat ?? "").matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
                const grouped = grouping.includes(label);
                expect({ expr, legend: label, grouped }).toEqual({
                    expr,
                    legend: label,
                    grouped: true,
                });
            }
        }
    });
});

describe("the PromQL reader of this test", () => {
    it("finds the selectors, groupings and label_replace labels of an expression", () => {
        expect(
            parsePromQL(
                'histogram_quantile(0.99, sum by (le, action) (rate(moleculer_request_time_bucket{type="local", action=~"a|b"}[$__rate_interval]))) or vector(0)',
            ),
        ).toEqual({
            selectors: [{ metric: "moleculer_request_time_bucket", labels: ["type", "action"] }],
            grouping: ["le", "action"],
            created: [],
            read: [],
        });
        expect(
            parsePromQL(
                'max by (service) (label_replace(m_total{action=~"x[.].+"}, "service", "$1", "action", "([a-z]+)[.].+")) / on (service) n',
            ),
        ).toEqual({
            selectors: [
                { metric: "m_total", labels: ["action"] },
                { metric: "n", labels: [] },
            ],
            grouping: ["service", "service"],
            created: ["service"],
            read: ["action"],
        });
    });
});
