/**
 * The start-up banner of a gateway node names where everything is, the GraphQL playground and the
 * REST reference included, and those links answer.
 */
import { freePort, startNode, waitUntilHealthy, type NodeProcess } from "../support/processes";

let node: NodeProcess;

afterAll(() => node?.stop());

it("links REST, the GraphQL playground and the API reference, which answer", async () => {
    const port = await freePort();
    node = startNode("gateway", {
        SERVICES: "api",
        PORT: String(port),
        METRICS_PORT: "0",
        LOGLEVEL: "info",
    });
    await waitUntilHealthy(node, `http://127.0.0.1:${port}/health/ready`);
    const deadline = Date.now() + 10_000;
    while (!/Agora node ready/.test(node.logs()) && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 100));
    }
    const banner = node.logs();
    const links = {
        rest: `http://localhost:${port}/api`,
        graphql: `http://localhost:${port}/graphql (playground in a browser)`,
        docs: `http://localhost:${port}/api/docs`,
    };
    for (const link of Object.values(links)) expect(banner).toContain(link);

    // The playground is what a browser gets at /graphql, and the reference page is there too.
    const playground = await fetch(`http://127.0.0.1:${port}/graphql`, {
        headers: { Accept: "text/html" },
    });
    expect(playground.status).toBe(200);
    expect(await playground.text()).toMatch(/GraphQL Playground/i);
    const docs = await fetch(`http://127.0.0.1:${port}/api/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("swagger-ui");
});
