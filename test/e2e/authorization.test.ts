/**
 * The authorization matrix (test/support/authorization-matrix.ts) against real processes: every
 * REST route and GraphQL operation, as anonymous, a user, another user and an admin, on a
 * four-node cluster. One test per route, surface and caller, so a failure names all three.
 */
import { restRoutes } from "../../services/api/routes";
import {
    ERROR_TYPES,
    MATRIX,
    OPERATIONS,
    contractError,
    createWorld,
    graphqlOperations,
    startCluster,
    type Cluster,
    type MatrixRow,
    type World,
} from "../support/authorization-matrix";
import { graphql, http, type HttpResult } from "../support/http";

jest.setTimeout(120_000);

let cluster: Cluster;
let world: World;

beforeAll(async () => {
    cluster = await startCluster();
    world = await createWorld(cluster.base, cluster.admin);
});

afterAll(async () => {
    await cluster?.stop();
});

function answer(response: HttpResult): string {
    return `${response.status} ${JSON.stringify(response.body)?.slice(0, 800)}`;
}

function expectStatus(response: HttpResult, status: number): void {
    if (response.status !== status) {
        throw new Error(`expected HTTP ${status}, got ${answer(response)}`);
    }
}

async function callRest(row: MatrixRow, target: Record<string, unknown>): Promise<unknown> {
    const { operation, caller, outcome } = row;
    const call = operation.rest!(target, world, caller);
    const token = caller === "anonymous" ? undefined : world.accounts[caller].token;
    const response = await http(world.base, call.method, call.path, { body: call.body, token });
    expectStatus(response, outcome.status);
    if (!outcome.allowed) {
        contractError(response.body, outcome.status, ERROR_TYPES[outcome.status]);
        return undefined;
    }
    if (outcome.status === 204 && response.body !== null) {
        throw new Error(`a 204 has no body, got ${answer(response)}`);
    }
    return response.body;
}

async function callGraphql(row: MatrixRow, target: Record<string, unknown>): Promise<unknown> {
    const { operation, caller, outcome } = row;
    const field = operation.field!;
    const call = operation.graphql!(target, world, caller);
    const token = caller === "anonymous" ? undefined : world.accounts[caller].token;
    const response = await graphql(world.base, call.query, call.variables, token);
    // Resolver errors, like data, come with 200: the status is in `extensions`.
    expectStatus(response, 200);
    const errors = response.body?.errors;
    const value = response.body?.data?.[field];
    if (!outcome.allowed) {
        const expected = { code: ERROR_TYPES[outcome.status], status: outcome.status };
        const error = errors?.[0];
        if (
            errors?.length !== 1 ||
            error.extensions?.code !== expected.code ||
            error.extensions?.status !== expected.status ||
            error.path?.[0] !== field ||
            (value !== null && value !== undefined)
        ) {
            throw new Error(
                `expected one ${JSON.stringify(expected)} error, got ${answer(response)}`,
            );
        }
        return undefined;
    }
    if (errors !== undefined || value === null || value === undefined) {
        throw new Error(`expected data.${field}, got ${answer(response)}`);
    }
    if (outcome.status === 204 && value !== true) {
        throw new Error(`expected true, got ${answer(response)}`);
    }
    return value;
}

describe("the matrix", () => {
    it("has a row for every REST route of the gateway, and no other", () => {
        const covered = new Set(OPERATIONS.map(operation => operation.route).filter(Boolean));
        expect([...covered].sort()).toEqual(Object.keys(restRoutes).sort());
    });

    it("has a row for every query and mutation of the GraphQL schema, and no other", async () => {
        const { queries, mutations } = await graphqlOperations(world.base);
        const covered = new Set(OPERATIONS.map(operation => operation.field).filter(Boolean));
        expect([...covered].sort()).toEqual([...queries, ...mutations].sort());
    });

    it("checks every caller of every row", () => {
        expect(MATRIX.length).toBeGreaterThanOrEqual(OPERATIONS.length * 4);
        expect(new Set(MATRIX.map(row => row.title)).size).toBe(MATRIX.length);
    });
});

describe("who may call what", () => {
    it.each(MATRIX.map(row => [row.title, row] as const))("%s", async (_, row) => {
        const { operation, caller, outcome } = row;
        const target = (await operation.prepare?.(world, caller)) ?? {};
        const before = outcome.allowed ? undefined : await operation.probe?.(world, target);
        const value =
            row.surface === "REST" ? await callRest(row, target) : await callGraphql(row, target);
        if (outcome.allowed) {
            outcome.shape?.(value);
            await outcome.check?.(value, { world, caller, target });
        } else if (operation.probe) {
            // Refused means nothing happened, not only that the answer said so.
            expect(await operation.probe(world, target)).toEqual(before);
        }
    });
});
