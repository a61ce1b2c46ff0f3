/**
 * The OpenAPI 3 document of the REST API, generated rather than written: its paths are the
 * gateway's route table (routes.ts); each operation's parameters and request body are the
 * fastest-validator `params` of the action behind it; its security is the action's `auth` level;
 * its response body is the GraphQL type the same action returns (REST and GraphQL are two faces
 * of one action, shared/API.md), from the services' own `settings.graphql` definitions. Every node
 * runs the same code, so the gateway reads the schemas of the services it doesn't host from their
 * modules, and the document is whole even while some service has no live node.
 *
 * What no definition holds is listed here once: which actions answer 201, 202 or 204 (their
 * handlers set the status), the 409s each can give, and the `Idempotency-Key` header.
 *
 * Served at `/api/openapi.json`; `/api/docs` is Swagger UI from the `swagger-ui-dist` package
 * (its files from node_modules: no CDN).
 */
import fs from "node:fs";
import path from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServiceSchema } from "moleculer";
import { Kind, parse, type DefinitionNode, type FieldDefinitionNode, type TypeNode } from "graphql";
import type { OpenAPIV3 } from "openapi-types";
import type { AccessLevel } from "../../lib/access";
import { NotFoundError } from "../../lib/errors";
import { restRoutes } from "./routes";

type Schema = OpenAPIV3.SchemaObject | OpenAPIV3.ReferenceObject;
type Rule = string | Record<string, unknown> | Rule[];

interface ActionDefinition {
    params?: Record<string, Rule>;
    auth?: AccessLevel;
    graphql?: { query?: string; mutation?: string };
}

interface GraphQLSettings {
    type?: string;
    enum?: string;
    resolvers?: Record<string, Record<string, unknown>>;
}

/** Success statuses other than 200, which the handlers set (`ctx.meta.$statusCode`). */
const SUCCESS_STATUS: Record<string, number[]> = {
    "users.register": [201],
    "users.logout": [204],
    "users.changePassword": [204],
    "products.create": [201],
    "products.remove": [204],
    "orders.place": [201, 202],
};

/** The conflicts (409) each action can answer, by the error `type` of shared/API.md. */
const CONFLICTS: Record<string, string[]> = {
    "users.register": ["EMAIL_TAKEN"],
    "products.adjustInventory": ["INSUFFICIENT_STOCK"],
    "orders.place": ["INSUFFICIENT_STOCK", "IDEMPOTENCY_CONFLICT"],
    "orders.cancel": ["INVALID_TRANSITION"],
    "orders.updateStatus": ["INVALID_TRANSITION"],
};

/** Headers the gateway turns into an action's param (onBeforeCall in api.service.ts). */
const HEADERS: Record<string, { header: string; param: string; description: string }[]> = {
    "orders.place": [
        {
            header: "Idempotency-Key",
            param: "idempotencyKey",
            description:
                "The same key from the same user answers with the first order again; with another body, 409 IDEMPOTENCY_CONFLICT.",
        },
    ],
};

const STATUS_TEXT: Record<number, string> = {
    200: "OK",
    201: "Created",
    202: "Accepted: the order is PENDING and will be settled without being asked again",
    204: "No Content",
    400: "Malformed JSON or not JSON (INVALID_REQUEST_BODY)",
    401: "No, bad or expired access token, or wrong credentials",
    403: "Signed in, but the role may not do this (FORBIDDEN)",
    404: "No such thing, or not yours to see (NOT_FOUND)",
    409: "Conflict with the current state",
    413: "Body over 64 KB (PAYLOAD_TOO_LARGE)",
    422: "Well-formed but invalid fields: `data` lists each field and why (VALIDATION_ERROR)",
    429: "Too many requests; see Retry-After (RATE_LIMITED)",
    503: "The service behind the call has no live node, or its circuit is open (SERVICE_UNAVAILABLE)",
};

const BODY_METHODS = new Set(["post", "put", "patch"]);

// --- fastest-validator rules to JSON Schema ---

/** `"string|min:3|optional"` to `{ type: "string", min: 3, optional: true }`. */
function expandShorthand(rule: string): Record<string, unknown> {
    const [type, ...options] = rule.split("|");
    const expanded: Record<string, unknown> = { type };
    for (const option of options) {
        const [key, value] = option.split(":");
        expanded[key] = value === undefined ? true : isNaN(Number(value)) ? value : Number(value);
    }
    return expanded;
}

function isOptional(rule: Rule): boolean {
    if (Array.isArray(rule)) return rule.some(isOptional);
    const expanded = typeof rule === "string" ? expandShorthand(rule) : rule;
    return expanded.optional === true || expanded.default !== undefined;
}

function ruleToSchema(rule: Rule): OpenAPIV3.SchemaObject {
    if (Array.isArray(rule)) return { oneOf: rule.map(ruleToSchema) };
    const r = typeof rule === "string" ? expandShorthand(rule) : rule;
    const schema = baseSchema(r);
    if (r.nullable === true) schema.nullable = true;
    // fastest-validator ignores a rule's `description`; it is there for this document.
    if (typeof r.description === "string") schema.description = r.description;
    if (r.default !== undefined && typeof r.default !== "function") schema.default = r.default;
    return schema;
}

function baseSchema(r: Record<string, unknown>): OpenAPIV3.SchemaObject {
    const num = (key: string) => (typeof r[key] === "number" ? (r[key] as number) : undefined);
    switch (r.type) {
        case "string":
            return prune({
                type: "string",
                minLength: num("length") ?? num("min") ?? (r.empty === false ? 1 : undefined),
                maxLength: num("length") ?? num("max"),
                pattern: r.pattern instanceof RegExp ? r.pattern.source : (r.pattern as string),
                enum: r.enum as string[] | undefined,
            });
        case "email":
            return prune({ type: "string", format: "email", maxLength: num("max") });
        case "uuid":
            return { type: "string", format: "uuid" };
        case "url":
            return { type: "string", format: "uri" };
        case "date":
            return { type: "string", format: "date-time" };
        case "boolean":
            return { type: "boolean" };
        case "number":
            return prune({
                type: r.integer === true ? "integer" : "number",
                minimum: num("min") ?? (r.positive === true ? 0 : undefined),
                exclusiveMinimum:
                    r.positive === true && num("min") === undefined ? true : undefined,
                maximum: num("max"),
            });
        case "enum": {
            const values = r.values as (string | number)[];
            return { type: typeof values[0] === "number" ? "number" : "string", enum: values };
        }
        case "array":
            return prune({
                type: "array",
                items: r.items ? ruleToSchema(r.items as Rule) : {},
                minItems: num("min") ?? (r.empty === false ? 1 : undefined),
                maxItems: num("max"),
                uniqueItems: r.unique === true ? true : undefined,
            }) as OpenAPIV3.ArraySchemaObject;
        case "object":
            return r.props ? objectSchema(r.props as Record<string, Rule>) : { type: "object" };
        default:
            // `any` and anything this table doesn't know: no constraint rather than a wrong one.
            return {};
    }
}

function objectSchema(props: Record<string, Rule>): OpenAPIV3.SchemaObject {
    const entries = Object.entries(props).filter(([name]) => !name.startsWith("$$"));
    return prune({
        type: "object",
        properties: Object.fromEntries(entries.map(([name, rule]) => [name, ruleToSchema(rule)])),
        required: nonEmpty(entries.filter(([, rule]) => !isOptional(rule)).map(([name]) => name)),
    });
}

/** OpenAPI 3.0 refuses an empty `required` list: none is no list. */
function nonEmpty(names: string[]): string[] | undefined {
    return names.length ? names : undefined;
}

/** Drops the keys left undefined, which the OpenAPI schema refuses. */
function prune<T extends object>(object: T): T {
    return Object.fromEntries(
        Object.entries(object).filter(([, value]) => value !== undefined),
    ) as T;
}

// --- GraphQL types (the services' settings.graphql) to component schemas ---

const SCALARS: Record<string, OpenAPIV3.SchemaObject> = {
    ID: { type: "string" },
    String: { type: "string" },
    Int: { type: "integer" },
    Float: { type: "number" },
    Boolean: { type: "boolean" },
};

function typeToSchema(type: TypeNode, nullable = true): Schema {
    if (type.kind === Kind.NON_NULL_TYPE) return typeToSchema(type.type, false);
    const schema: Schema =
        type.kind === Kind.LIST_TYPE
            ? { type: "array", items: typeToSchema(type.type) }
            : (SCALARS[type.name.value] ?? { $ref: `#/components/schemas/${type.name.value}` });
    if (!nullable) return schema;
    // A nullable reference: OpenAPI 3.0 can't mark a $ref itself nullable.
    return "$ref" in schema ? { allOf: [schema], nullable: true } : { ...schema, nullable: true };
}

/**
 * Object types and enums of every service's GraphQL definitions. Fields that a resolver fills in
 * (an order's `user`, an item's `product`) are GraphQL's only: REST answers never carry them.
 */
function componentSchemas(services: ServiceSchema[]): Record<string, OpenAPIV3.SchemaObject> {
    const schemas: Record<string, OpenAPIV3.SchemaObject> = {};
    for (const service of services) {
        const graphql = (service.settings?.graphql ?? {}) as GraphQLSettings;
        const sdl = [graphql.enum, graphql.type].filter(Boolean).join("\n");
        if (!sdl) continue;
        for (const definition of parse(sdl).definitions as DefinitionNode[]) {
            if (definition.kind === Kind.ENUM_TYPE_DEFINITION) {
                schemas[definition.name.value] = {
                    type: "string",
                    enum: (definition.values ?? []).map(value => value.name.value),
                };
            }
            if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
            const resolved = graphql.resolvers?.[definition.name.value] ?? {};
            const fields = (definition.fields ?? []).filter(
                field => !(field.name.value in resolved),
            );
            schemas[definition.name.value] = prune({
                type: "object",
                description: definition.description?.value,
                properties: Object.fromEntries(
                    fields.map(field => [field.name.value, typeToSchema(field.type)]),
                ),
                required: nonEmpty(
                    fields
                        .filter(field => field.type.kind === Kind.NON_NULL_TYPE)
                        .map(field => field.name.value),
                ),
            }) as OpenAPIV3.SchemaObject;
        }
    }
    return schemas;
}

/** The type an action's GraphQL field returns, e.g. `Order` for `placeOrder(...): Order`. */
function graphqlReturnType(action: ActionDefinition): FieldDefinitionNode["type"] | null {
    const field = action.graphql?.query ?? action.graphql?.mutation;
    if (!field) return null;
    const definition = parse(`type Root { ${field} }`).definitions[0];
    return definition.kind === Kind.OBJECT_TYPE_DEFINITION ? definition.fields![0].type : null;
}

// --- the document ---

const errorResponse = (description: string): OpenAPIV3.ResponseObject => ({
    description,
    content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

function operation(
    method: string,
    routePath: string,
    actionName: string,
    action: ActionDefinition,
): OpenAPIV3.OperationObject {
    const pathNames = [...routePath.matchAll(/:(\w+)/g)].map(match => match[1]);
    const params = Object.fromEntries(
        Object.entries(action.params ?? {}).filter(([name]) => !name.startsWith("$$")),
    );
    const parameters: OpenAPIV3.ParameterObject[] = pathNames.map(name => ({
        name,
        in: "path",
        required: true,
        schema: params[name] ? ruleToSchema(params[name]) : { type: "string" },
    }));
    const rest = Object.fromEntries(
        Object.entries(params).filter(([name]) => !pathNames.includes(name)),
    );
    const withBody = BODY_METHODS.has(method);
    if (!withBody) {
        for (const [name, rule] of Object.entries(rest)) {
            parameters.push({
                name,
                in: "query",
                required: !isOptional(rule),
                schema: ruleToSchema(rule),
            });
        }
    }
    for (const { header, param, description } of HEADERS[actionName] ?? []) {
        parameters.push({
            name: header,
            in: "header",
            required: false,
            description,
            schema: ruleToSchema(params[param]),
        });
    }

    const responses: OpenAPIV3.ResponsesObject = {};
    const returned = graphqlReturnType(action);
    for (const status of SUCCESS_STATUS[actionName] ?? [200]) {
        const hasBody = status !== 204 && returned !== null;
        responses[status] = {
            description: STATUS_TEXT[status],
            ...(hasBody
                ? { content: { "application/json": { schema: typeToSchema(returned!, false) } } }
                : {}),
        };
    }
    if (withBody) responses[400] = errorResponse(STATUS_TEXT[400]);
    if (action.auth || actionName === "users.login" || actionName === "users.refresh") {
        responses[401] = errorResponse(STATUS_TEXT[401]);
    }
    if (action.auth === "admin") responses[403] = errorResponse(STATUS_TEXT[403]);
    if (pathNames.length || actionName === "users.me")
        responses[404] = errorResponse(STATUS_TEXT[404]);
    if (CONFLICTS[actionName]) {
        responses[409] = errorResponse(`${STATUS_TEXT[409]}: ${CONFLICTS[actionName].join(", ")}`);
    }
    if (withBody) responses[413] = errorResponse(STATUS_TEXT[413]);
    if (Object.keys(params).length) responses[422] = errorResponse(STATUS_TEXT[422]);
    responses[429] = errorResponse(STATUS_TEXT[429]);
    responses[503] = errorResponse(STATUS_TEXT[503]);

    const [service] = actionName.split(".");
    return prune({
        operationId: actionName,
        tags: [routePath.startsWith("/auth") ? "auth" : service],
        summary: `${actionName}${action.auth ? ` (${action.auth})` : ""}`,
        security: action.auth ? [{ bearerAuth: [] }] : undefined,
        parameters: parameters.length ? parameters : undefined,
        requestBody:
            withBody && Object.keys(rest).length
                ? {
                      required: true,
                      content: { "application/json": { schema: objectSchema(rest) } },
                  }
                : undefined,
        responses,
    });
}

export interface OpenApiOptions {
    /** Where REST lives on the gateway. */
    basePath: string;
    version: string;
    /** The schemas of every service with REST routes (the gateway's own modules of them). */
    services: ServiceSchema[];
}

export function buildOpenApi(options: OpenApiOptions): OpenAPIV3.Document {
    const byName = new Map(options.services.map(service => [service.name, service]));
    const paths: OpenAPIV3.PathsObject = {};
    for (const [route, actionName] of Object.entries(restRoutes)) {
        const [method, routePath] = route.split(" ");
        const [serviceName, name] = actionName.split(".");
        const action = byName.get(serviceName)?.actions?.[name] as ActionDefinition | undefined;
        if (!action) throw new Error(`No action ${actionName} behind the route ${route}`);
        const openApiPath = options.basePath + routePath.replace(/:(\w+)/g, "{$1}");
        const lower = method.toLowerCase() as OpenAPIV3.HttpMethods;
        paths[openApiPath] = {
            ...paths[openApiPath],
            [lower]: operation(lower, routePath, actionName, action),
        };
    }
    return {
        openapi: "3.0.3",
        info: {
            title: "Agora REST API",
            version: options.version,
            description:
                "Generated from the gateway's routes and the actions' definitions. GraphQL serves the same actions at /graphql. Money is an integer in minor units; ids are UUIDs; timestamps ISO 8601 UTC.",
        },
        servers: [{ url: "/" }],
        tags: [
            { name: "auth", description: "Accounts and tokens" },
            { name: "users", description: "Profiles and, for admins, every user" },
            { name: "products", description: "Catalogue and inventory" },
            { name: "orders", description: "Placement and lifecycle" },
        ],
        paths,
        components: {
            securitySchemes: {
                bearerAuth: {
                    type: "http",
                    scheme: "bearer",
                    bearerFormat: "JWT",
                    description: "The accessToken of POST /api/auth/login (15 minutes).",
                },
            },
            schemas: {
                ...componentSchemas(options.services),
                Error: {
                    type: "object",
                    required: ["name", "message", "code", "type"],
                    properties: {
                        name: { type: "string" },
                        message: { type: "string" },
                        code: { type: "integer", description: "The HTTP status" },
                        type: { type: "string", description: "A stable machine-readable word" },
                        data: { description: "Details, e.g. each invalid field" },
                    },
                },
            },
        },
    };
}

/** Swagger UI's static files, served from the installed package (no CDN). */
const SWAGGER_UI_DIR = path.dirname(require.resolve("swagger-ui-dist/package.json"));

/** The Swagger UI files /api/docs serves, by name; anything else is a 404. */
const SWAGGER_ASSETS: Record<string, string> = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
};

/** The page at /api/docs: Swagger UI on the generated document (its start is a file too). */
function swaggerPage(docsPath: string): string {
    return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Agora REST API</title>
<link rel="icon" href="${docsPath}/favicon-32x32.png">
<link rel="stylesheet" href="${docsPath}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${docsPath}/swagger-ui-bundle.js"></script>
<script src="${docsPath}/agora-init.js"></script>
</body>
</html>
`;
}

/** The version in package.json, found from here in the sources and in dist/ alike. */
function packageVersion(): string {
    for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
        const file = path.join(dir, "package.json");
        if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")).version;
    }
    return "0.0.0";
}

type Send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => void;

const send: Send = (res, status, type, body) => {
    res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-cache" });
    res.end(body);
};

/** The gateway's own way of answering an error in the contract's shape. */
interface ContractErrorSender {
    sendContractError(req: IncomingMessage, res: ServerResponse, error: unknown): void;
}

/**
 * The services with REST routes, from their modules (every node has the same code). Loaded when
 * the document is first asked for, not with the gateway: they bring Sequelize, moleculer-db and
 * the channels, about 35 MB a gateway-only node otherwise never needs.
 */
function restServices(): ServiceSchema[] {
    /* eslint-disable @typescript-eslint/no-require-imports */
    return [
        require("../users/users.service").default,
        require("../products/products.service").default,
        require("../orders/orders.service").default,
    ] as ServiceSchema[];
    /* eslint-enable @typescript-eslint/no-require-imports */
}

/**
 * The gateway routes of the documentation: `GET <basePath>/openapi.json`, and the page
 * `GET <basePath>/docs` with its assets. Each has a path of its own: moleculer-web replaces a
 * route by another of the same path, so they can't share the REST route's. The document is built
 * once, on the first request.
 */
export function openApiRoutes(basePath: string, services?: ServiceSchema[]) {
    let document: string | null = null;
    const docsPath = `${basePath}/docs`;
    const documentUrl = `${basePath}/openapi.json`;
    const route = (routePath: string, aliases: Record<string, unknown>) => ({
        path: routePath,
        mappingPolicy: "restrict",
        authentication: false,
        authorization: false,
        aliases,
    });
    return [
        route(documentUrl, {
            "GET /"(req: IncomingMessage, res: ServerResponse) {
                document ??= JSON.stringify(
                    buildOpenApi({
                        basePath,
                        version: packageVersion(),
                        services: services ?? restServices(),
                    }),
                );
                send(res, 200, "application/json; charset=utf-8", document);
            },
        }),
        route(docsPath, {
            "GET /"(req: IncomingMessage, res: ServerResponse) {
                send(res, 200, "text/html; charset=utf-8", swaggerPage(docsPath));
            },
            "GET /:asset"(
                this: ContractErrorSender,
                req: IncomingMessage & { $params?: { asset?: string } },
                res: ServerResponse,
            ) {
                const asset = req.$params?.asset ?? "";
                if (asset === "agora-init.js") {
                    const start = `window.ui = SwaggerUIBundle({ url: ${JSON.stringify(documentUrl)}, dom_id: "#swagger-ui", deepLinking: true });\n`;
                    return send(res, 200, SWAGGER_ASSETS["swagger-ui-bundle.js"], start);
                }
                if (!SWAGGER_ASSETS[asset]) {
                    return this.sendContractError(req, res, new NotFoundError("Asset", asset));
                }
                const file = fs.readFileSync(path.join(SWAGGER_UI_DIR, asset));
                send(res, 200, SWAGGER_ASSETS[asset], file);
            },
        }),
    ];
}
