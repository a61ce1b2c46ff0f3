/**
 * Request ids: which client ids are kept, and that every line logged while a request is handled,
 * by any action or event handler it sets off, names it (JSON in production, text elsewhere).
 * Across real nodes: test/e2e/production.test.ts.
 */
import { ServiceBroker, type Context } from "moleculer";
import { readConfig } from "../../lib/config";
import { RequestIdMiddleware, acceptRequestId } from "../../lib/request-id";
import { createBrokerOptions } from "../../moleculer.config";

describe("acceptRequestId", () => {
    it.each([
        ["a plain word", "abc"],
        ["every accepted punctuation", "trace-01.2:3~4+5=6/7_8"],
        ["128 characters", "x".repeat(128)],
    ])("keeps %s", (_label, id) => {
        expect(acceptRequestId(id)).toBe(id);
    });

    it.each([
        ["an id over 128 characters", "x".repeat(129)],
        ["spaces", "a b"],
        ["markup", "<script>"],
        ["quotes", '"x"'],
        ["an empty value", ""],
        ["a repeated header", ["a", "b"]],
        ["no header", undefined],
    ])("replaces %s with a fresh UUID", (_label, header) => {
        const id = acceptRequestId(header);
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(acceptRequestId(header)).not.toBe(id);
    });
});

describe("log lines of a request", () => {
    /** A broker with the project's logger for NODE_ENV, and what it printed. */
    async function run(nodeEnv: string) {
        const lines: string[] = [];
        const capture = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
        const spies = (["log", "warn", "error"] as const).map(method =>
            jest.spyOn(console, method).mockImplementation(capture),
        );
        const options = createBrokerOptions(readConfig({ NODE_ENV: nodeEnv, METRICS_PORT: "0" }));
        const broker = new ServiceBroker({
            nodeID: "unit",
            logger: options.logger,
            logLevel: "info",
            middlewares: [RequestIdMiddleware],
        });
        broker.createService({
            name: "front",
            actions: {
                async order(ctx: Context) {
                    this.logger.info("front takes the order");
                    await ctx.emit("order.taken");
                    return ctx.call("back.reserve");
                },
            },
        });
        broker.createService({
            name: "back",
            actions: {
                reserve() {
                    this.logger.warn("back is short of stock");
                    return true;
                },
            },
            events: {
                "order.taken"() {
                    this.logger.info("back heard of the order");
                },
            },
        });
        try {
            await broker.start();
            lines.length = 0;
            await broker.call("front.order", {}, { requestID: "req-42" });
            // Events are delivered asynchronously: wait for the handler's line.
            for (let i = 0; i < 50 && !lines.some(l => l.includes("heard")); i++) {
                await new Promise(resolve => setTimeout(resolve, 10));
            }
            broker.logger.info("outside any request");
        } finally {
            await broker.stop();
            spies.forEach(spy => spy.mockRestore());
        }
        return lines;
    }

    it("are JSON in production, each with the request's id, and only those", async () => {
        const lines = await run("production");
        const parsed = lines.map(line => JSON.parse(line));
        const messages = [
            "front takes the order",
            "back is short of stock",
            "back heard of the order",
        ];
        for (const msg of messages) {
            expect(parsed).toContainEqual(
                expect.objectContaining({ msg, requestId: "req-42", nodeID: "unit" }),
            );
        }
        const outside = parsed.find(line => line.msg === "outside any request");
        expect(outside).toBeDefined();
        expect(outside).not.toHaveProperty("requestId");
    });

    it("name the request in brackets outside production", async () => {
        const lines = await run("development");
        expect(lines.find(line => line.includes("back is short of stock"))).toContain("[req-42]");
        expect(lines.find(line => line.includes("outside any request"))).not.toContain("[req-");
    });
});
