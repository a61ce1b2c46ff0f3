/**
 * Whole GraphQL answers to catalogue queries, cached by the gateway like the REST listing.
 *
 * A catalogue query selects only `products`, `product` (and `__typename`) at its root. What it
 * answers depends on its text, its variables and the catalogue alone: the product reads are public
 * and show every caller the same fields (`readPolicy`), and the types below them (CATALOG_TYPES)
 * hold only scalars and each other (test/unit/graphql-catalog.test.ts checks the schema). Such an
 * answer is kept in the stamped cache (lib/stamped-cache.ts) under the group `graphql.catalog`,
 * which every product or stock write gives a new stamp before it answers, like the listing's: a
 * read that starts after a write has answered never gets an answer from before it, and an answer
 * computed from rows read before a write is not stored (its stamp is no longer current).
 *
 * Only answers without `errors` are kept. Any other request (a mutation, `me`, orders, a batch, a
 * document with several operations or extensions) runs through Apollo every time.
 */
import crypto from "node:crypto";
import { Kind, parse, type DocumentNode } from "graphql";

/** Root fields of a catalogue query. */
export const CATALOG_ROOT_FIELDS: ReadonlySet<string> = new Set([
    "products",
    "product",
    "__typename",
]);

/** The types the catalogue fields return: only scalars and each other below them. */
export const CATALOG_TYPES = ["ProductPage", "Product"] as const;

/** Verdicts by query text, oldest first; bounded in number and in the size of a text kept. */
const verdicts = new Map<string, boolean>();
const VERDICTS_MAX = 1000;
const VERDICT_MAX_LENGTH = 10_000;

function classify(query: string): boolean {
    let document: DocumentNode;
    try {
        document = parse(query, { noLocation: true });
    } catch {
        return false; // Apollo answers the syntax error
    }
    const operations = document.definitions.filter(d => d.kind === Kind.OPERATION_DEFINITION);
    const others = document.definitions.filter(
        d => d.kind !== Kind.OPERATION_DEFINITION && d.kind !== Kind.FRAGMENT_DEFINITION,
    );
    if (operations.length !== 1 || others.length > 0) return false;
    const [operation] = operations;
    if (operation.kind !== Kind.OPERATION_DEFINITION || operation.operation !== "query")
        return false;
    // Fields only at the root (a fragment there could select anything of Query).
    return operation.selectionSet.selections.every(
        selection => selection.kind === Kind.FIELD && CATALOG_ROOT_FIELDS.has(selection.name.value),
    );
}

/** True when the text is one query whose root fields are all catalogue reads. */
export function isCatalogQuery(query: string): boolean {
    const known = verdicts.get(query);
    if (known !== undefined) return known;
    const verdict = classify(query);
    if (query.length <= VERDICT_MAX_LENGTH) {
        if (verdicts.size >= VERDICTS_MAX) verdicts.delete(verdicts.keys().next().value!);
        verdicts.set(query, verdict);
    }
    return verdict;
}

/**
 * The cache key of a request body that is a catalogue query (a digest of its query, operation name
 * and variables), or null when its answer may not be cached.
 */
export function catalogCacheKey(body: unknown): string | null {
    if (body === null || typeof body !== "object" || Array.isArray(body)) return null;
    const { query, variables, operationName, extensions } = body as Record<string, unknown>;
    if (typeof query !== "string" || extensions != null || !isCatalogQuery(query)) return null;
    return crypto
        .createHash("sha256")
        .update(JSON.stringify([query, operationName ?? null, variables ?? null]))
        .digest("base64url");
}

/** True for an answer without top-level `errors` (the only answers kept). */
export function isCleanAnswer(text: string): boolean {
    try {
        const answer = JSON.parse(text) as Record<string, unknown> | null;
        return answer !== null && typeof answer === "object" && !("errors" in answer);
    } catch {
        return false;
    }
}
