/**
 * The OpenAPI document and its reference page, from a gateway that hosts no other service: the
 * document is a valid OpenAPI 3.0, names every REST route of shared/API.md with its path, query,
 * header and body parameters (required as the contract says), and the page's assets come from
 * the gateway itself.
 */
import fs from "node:fs";
import path from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { ServiceBroker } from "moleculer";
import type { OpenAPIV3 } from "openapi-types";
import { restRoutes } from "../../services/api/routes";
import { createTestBroker, gatewayUrl } from "../support/broker";

/** The contract this shop implements: the repository's copy of shared/API.md. */
function contractFile(): string {
    return path.resolve(__dirname, "../../docs/contract/API.md");
}

interface ContractRoute {
    method: string;
    path: string;
    query: string[];
    body: { name: string; optional: boolean }[];
    headers: string[];
}

/** Top-level fields of `{email, password, phone?, items: [{productId, quantity}]}`. */
function bodyFields(text: string): { name: string; optional: boolean }[] {
    const inner = text.trim().slice(1, -1);
    const fields: string[] = [];
    let depth = 0;
    let current = "";
    for (const char of inner) {
        if ("[{".includes(char)) depth++;
        if ("]}".includes(char)) depth--;
        if (char === "," && depth === 0) {
            fields.push(current);
            current = "";
        } else current += char;
    }
    fields.push(current);
    return fields
        .map(field => field.split(":")[0].trim())
        .filter(Boolean)
        .map(field => ({ name: field.replace(/\?$/, ""), optional: field.endsWith("?") }));
}

/** Every REST route of the contract's tables: "| `POST /api/x` `{a, b?}`, header `H?` | …". */
function contractRoutes(): ContractRoute[] {
    const routes: ContractRoute[] = [];
    for (const line of fs.readFileSync(contractFile(), "utf8").split("\n")) {
        const cell = /^\| `(GET|POST|PATCH|PUT|DELETE) (\/api\/[^`]*)`([^|]*)\|/.exec(line);
        if (!cell) continue;
        const [, method, target, rest] = cell;
        const [routePath, query = ""] = target.split("?");
        const body = /`(\{.*\})`/.exec(rest);
        routes.push({
            method: method.toLowerCase(),
            path: routePath.replace(/:(\w+)/g, "{$1}"),
            query: query
                .split("&")
                .map(pair => pair.split("=")[0])
                .filter(Boolean),
            body: body ? bodyFields(body[1]) : [],
            headers: [...rest.matchAll(/header `([\w-]+)\??`/g)].map(match => match[1]),
        });
    }
    return routes;
}

let broker: ServiceBroker;
let base: string;
let document: OpenAPIV3.Document;

beforeAll(async () => {
    // The gateway alone: the document comes from the code, not from which nodes are up.
    broker = createTestBroker({ services: ["api"] });
    await broker.start();
    base = gatewayUrl(broker);
    const response = await fetch(`${base}/api/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    document = (await response.json()) as OpenAPIV3.Document;
});

afterAll(() => broker.stop());

it("is a valid OpenAPI 3.0 document", async () => {
    expect(document.openapi).toMatch(/^3\.0\./);
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
});

it("names every REST route of the contract with its parameters", () => {
    const routes = contractRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(20);
    // One operation per route of the gateway's table, and the table is the contract's.
    const operations = Object.values(document.paths).flatMap(item => Object.keys(item!));
    expect(operations).toHaveLength(Object.keys(restRoutes).length);
    expect(routes).toHaveLength(Object.keys(restRoutes).length);

    for (const route of routes) {
        const where = `${route.method.toUpperCase()} ${route.path}`;
        // The same URL: a path parameter's name may differ (`:id` in the contract, `{productId}`).
        const shape = (template: string) => template.replace(/\{\w+\}/g, "{}");
        const documentedPath = Object.keys(document.paths).find(
            p => shape(p) === shape(route.path),
        );
        const operation = (
            document.paths[documentedPath ?? route.path] as Record<
                string,
                OpenAPIV3.OperationObject
            >
        )?.[route.method];
        expect({ where, documented: !!operation }).toEqual({ where, documented: true });
        const parameters = (operation.parameters ?? []) as OpenAPIV3.ParameterObject[];
        const named = (place: string) => parameters.filter(p => p.in === place).map(p => p.name);

        const inPath = [...documentedPath!.matchAll(/\{(\w+)\}/g)].map(match => match[1]);
        expect({ where, path: named("path").sort() }).toEqual({ where, path: inPath.sort() });
        for (const name of route.query) {
            expect({ where, query: name, documented: named("query").includes(name) }).toEqual({
                where,
                query: name,
                documented: true,
            });
        }
        for (const header of route.headers) expect(named("header")).toContain(header);

        const body = (operation.requestBody as OpenAPIV3.RequestBodyObject | undefined)?.content[
            "application/json"
        ]?.schema as OpenAPIV3.SchemaObject | undefined;
        for (const field of route.body) {
            const property = body?.properties?.[field.name];
            const required = (body?.required ?? []).includes(field.name);
            expect({ where, field: field.name, documented: !!property, required }).toEqual({
                where,
                field: field.name,
                documented: true,
                required: !field.optional,
            });
        }
    }
});

it("describes security, errors and answers from the action definitions", () => {
    const placeOrder = document.paths["/api/orders"]!.post!;
    expect(placeOrder.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(placeOrder.responses)).toEqual(
        expect.arrayContaining(["201", "202", "401", "409", "422", "503"]),
    );
    const items = (
        (placeOrder.requestBody as OpenAPIV3.RequestBodyObject).content["application/json"]
            .schema as OpenAPIV3.SchemaObject
    ).properties!.items as OpenAPIV3.ArraySchemaObject;
    expect(items).toMatchObject({ type: "array", minItems: 1, maxItems: 50 });

    const listProducts = document.paths["/api/products"]!.get!;
    expect(listProducts.security).toBeUndefined();
    const pageSize = (listProducts.parameters as OpenAPIV3.ParameterObject[]).find(
        p => p.name === "pageSize",
    )!;
    expect(pageSize).toMatchObject({ in: "query", required: false });
    expect(pageSize.schema).toMatchObject({ type: "integer", minimum: 1 });
    expect((pageSize.schema as OpenAPIV3.SchemaObject).description).toMatch(/capped at 100/);

    const createProduct = document.paths["/api/products"]!.post!;
    expect(Object.keys(createProduct.responses)).toEqual(expect.arrayContaining(["201", "403"]));
    expect((createProduct.responses["201"] as OpenAPIV3.ResponseObject).content).toEqual({
        "application/json": { schema: { $ref: "#/components/schemas/Product" } },
    });
    expect(document.paths["/api/auth/logout"]!.post!.responses["204"]).toBeDefined();

    // Response bodies are the GraphQL types, without the fields only GraphQL resolves.
    const order = document.components!.schemas!.Order as OpenAPIV3.SchemaObject;
    expect(Object.keys(order.properties!)).toEqual(
        expect.arrayContaining(["id", "status", "items", "total", "shipping"]),
    );
    expect(order.properties!.user).toBeUndefined();
    expect(document.components!.schemas!.User).toBeDefined();
});

it("serves a reference page whose assets are the gateway's own", async () => {
    const page = await fetch(`${base}/api/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    // The browser may run the page's own scripts and styles, and nothing from anywhere else.
    const policy = page.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    const html = await page.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)/);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map(match => match[1]);
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const asset of assets) {
        expect(asset.startsWith("/api/docs/")).toBe(true);
        const response = await fetch(base + asset);
        expect({ asset, status: response.status }).toEqual({ asset, status: 200 });
        expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    const start = await fetch(`${base}/api/docs/agora-init.js`).then(r => r.text());
    expect(start).toContain('"/api/openapi.json"');

    const missing = await fetch(`${base}/api/docs/nothing.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 404, type: "NOT_FOUND" });
});
