/**
 * What the gateway accepts at /graphql before Apollo sees it: a POST whose JSON body is one
 * operation `{ query, variables?, operationName?, extensions? }` or a non-empty batch of them,
 * whose documents stay within a depth and a field count (MAX_DEPTH, MAX_FIELDS).
 * Apollo 2 answers the other shapes with plain-text errors (or a 500 for a missing body); here they
 * get the contract's 400. A GET is the playground's (API.md), when a browser asks for HTML.
 */
import type { IncomingMessage } from "node:http";
import { Errors } from "moleculer";
import { Kind, parse, type DocumentNode, type SelectionSetNode } from "graphql";
import { BadRequestError, FieldValidationError } from "../../lib/errors";

/** Operations in one batch; each is resolved on its own. */
export const MAX_BATCH = 10;
/** Nesting of selections: `{ orders { rows { items { product { name } } } } }` is 5. */
export const MAX_DEPTH = 10;
/** Fields one operation may select, fragments expanded: a page of orders with everything is ~60. */
export const MAX_FIELDS = 500;

export class MethodNotAllowedError extends Errors.MoleculerClientError {
    constructor(message: string) {
        super(message, 405, "METHOD_NOT_ALLOWED", undefined);
        this.name = "MethodNotAllowedError";
    }
}

function isObjectOrAbsent(value: unknown): boolean {
    return (
        value === undefined ||
        value === null ||
        (typeof value === "object" && !Array.isArray(value))
    );
}

function checkOperation(operation: unknown, where: string): void {
    if (operation === null || typeof operation !== "object" || Array.isArray(operation)) {
        throw new BadRequestError(`${where} must be a JSON object with a 'query'`);
    }
    const { query, variables, operationName, extensions } = operation as Record<string, unknown>;
    if (typeof query !== "string" || query.trim() === "") {
        throw new BadRequestError(`${where}: 'query' must be a non-empty string`);
    }
    if (!isObjectOrAbsent(variables)) {
        throw new BadRequestError(`${where}: 'variables' must be a JSON object`);
    }
    if (!isObjectOrAbsent(extensions)) {
        throw new BadRequestError(`${where}: 'extensions' must be a JSON object`);
    }
    if (
        operationName !== undefined &&
        operationName !== null &&
        typeof operationName !== "string"
    ) {
        throw new BadRequestError(`${where}: 'operationName' must be a string`);
    }
    checkCost(query);
}

/** Fields and nesting depth of a selection. */
interface Cost {
    fields: number;
    depth: number;
}

/**
 * Refuses a document too deep or too wide before GraphQL validates it: validation is quadratic in
 * the fields of one selection, so `{ a a a … }` five thousand times would hold the gateway for
 * seconds, while parsing is linear. A syntax error is left to Apollo, which says where it is.
 */
function checkCost(query: string): void {
    // The verdict depends on the text alone: a query already found within the limits isn't parsed
    // again (Apollo keeps its own parsed and validated copy).
    if (withinLimits.has(query)) return;
    measureCost(query);
    if (query.length > ACCEPTED_MAX_LENGTH) return;
    if (withinLimits.size >= ACCEPTED_MAX) withinLimits.delete(withinLimits.values().next().value!);
    withinLimits.add(query);
}

/** Queries found within the limits, oldest first; bounded in number and size. */
const withinLimits = new Set<string>();
const ACCEPTED_MAX = 1000;
const ACCEPTED_MAX_LENGTH = 10_000;

function measureCost(query: string): void {
    let document: DocumentNode;
    try {
        document = parse(query, { noLocation: true });
    } catch {
        return;
    }
    const fragments = new Map<string, SelectionSetNode>();
    for (const definition of document.definitions) {
        if (definition.kind === Kind.FRAGMENT_DEFINITION) {
            fragments.set(definition.name.value, definition.selectionSet);
        }
    }
    // Fragments are expanded, once each (memoized, so nested spreads can't explode); a cycle
    // counts as nothing here, and GraphQL validation refuses it anyway.
    const measured = new Map<string, Cost>();
    const measure = (set: SelectionSetNode, seen: Set<string>): Cost => {
        const total = { fields: 0, depth: 0 };
        for (const selection of set.selections) {
            let inner: Cost = { fields: 0, depth: 0 };
            if (selection.kind === Kind.FIELD) {
                const below = selection.selectionSet
                    ? measure(selection.selectionSet, seen)
                    : inner;
                inner = { fields: below.fields + 1, depth: below.depth + 1 };
            } else if (selection.kind === Kind.INLINE_FRAGMENT) {
                inner = measure(selection.selectionSet, seen);
            } else {
                const name = selection.name.value;
                const fragment = fragments.get(name);
                if (fragment && !seen.has(name)) {
                    inner = measured.get(name) ?? measure(fragment, new Set(seen).add(name));
                    measured.set(name, inner);
                }
            }
            total.fields = Math.min(total.fields + inner.fields, Number.MAX_SAFE_INTEGER);
            total.depth = Math.max(total.depth, inner.depth);
        }
        return total;
    };
    for (const definition of document.definitions) {
        if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
        const { fields, depth } = measure(definition.selectionSet, new Set());
        if (depth > MAX_DEPTH) {
            throw new FieldValidationError([
                {
                    field: "query",
                    message: `The query nests ${depth} levels deep; at most ${MAX_DEPTH} are allowed`,
                    type: "queryDepth",
                },
            ]);
        }
        if (fields > MAX_FIELDS) {
            throw new FieldValidationError([
                {
                    field: "query",
                    message: `The query selects ${fields} fields; at most ${MAX_FIELDS} are allowed`,
                    type: "queryComplexity",
                },
            ]);
        }
    }
}

/** True when a browser asks for the page (the playground) rather than for data. */
export function wantsPlayground(req: IncomingMessage): boolean {
    return req.method === "GET" && /\btext\/html\b/.test(String(req.headers.accept ?? ""));
}

/** Throws the contract's error unless `req` is a GraphQL request the gateway serves. */
export function checkGraphQLRequest(
    req: IncomingMessage & { body?: unknown },
    playground: boolean,
): void {
    if (req.method === "GET" && playground && wantsPlayground(req)) return;
    if (req.method !== "POST") {
        throw new MethodNotAllowedError("GraphQL operations are sent with POST (JSON body)");
    }
    const body = req.body;
    if (Array.isArray(body)) {
        if (body.length === 0 || body.length > MAX_BATCH) {
            throw new BadRequestError(`A batch must hold 1 to ${MAX_BATCH} operations`);
        }
        body.forEach((operation, index) => checkOperation(operation, `Operation ${index}`));
        return;
    }
    checkOperation(body, "The body");
}
