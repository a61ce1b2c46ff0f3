/** Which GraphQL requests the gateway may answer from its catalogue cache (graphql-catalog.ts). */
import { catalogCacheKey, isCatalogQuery, isCleanAnswer } from "../../services/api/graphql-catalog";

describe("isCatalogQuery", () => {
    it.each([
        "{ products { total rows { id name } } }",
        "query One($id: ID!) { product(id: $id) { name price } __typename }",
        "{ a: products(page: 1) { total } b: products(page: 2) { total } }",
        "query { products { rows { ...P } } } fragment P on Product { id name }",
        "query ($on: Boolean!) { products { total @include(if: $on) } }",
    ])("accepts %s", query => {
        expect(isCatalogQuery(query)).toBe(true);
    });

    it.each([
        'mutation { deleteProduct(id: "x") }',
        "{ me { email } }",
        "{ products { total } me { email } }",
        "{ orders { total } }",
        "subscription { products { total } }",
        'query A { products { total } } query B { product(id: "x") { name } }',
        "{ ...Q } fragment Q on Query { products { total } }",
        "{ ... on Query { products { total } } }",
        "{ __schema { types { name } } }",
        "{ products { total ",
        "",
    ])("refuses %s", query => {
        expect(isCatalogQuery(query)).toBe(false);
    });
});

describe("catalogCacheKey", () => {
    const query = "{ products { total } }";

    it("is one key per query, operation name and variables", () => {
        const key = catalogCacheKey({ query, variables: { a: 1 } });
        expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(catalogCacheKey({ query, variables: { a: 1 } })).toBe(key);
        expect(catalogCacheKey({ query, variables: { a: 2 } })).not.toBe(key);
        expect(catalogCacheKey({ query, variables: { a: 1 }, operationName: "X" })).not.toBe(key);
        expect(catalogCacheKey({ query: `${query} `, variables: { a: 1 } })).not.toBe(key);
    });

    it("is null for what may not be cached", () => {
        expect(catalogCacheKey([{ query }])).toBeNull();
        expect(catalogCacheKey({ query, extensions: { persistedQuery: {} } })).toBeNull();
        expect(catalogCacheKey({ query: "{ me { email } }" })).toBeNull();
        expect(catalogCacheKey({ query: 42 })).toBeNull();
        expect(catalogCacheKey(null)).toBeNull();
    });
});

describe("isCleanAnswer", () => {
    it("keeps answers without top-level errors only", () => {
        expect(isCleanAnswer('{"data":{"products":{"total":1}}}')).toBe(true);
        expect(isCleanAnswer('{"data":{"errors":{"total":1}}}')).toBe(true);
        expect(isCleanAnswer('{"errors":[{"message":"x"}],"data":null}')).toBe(false);
        expect(isCleanAnswer("not json")).toBe(false);
        expect(isCleanAnswer("null")).toBe(false);
    });
});
