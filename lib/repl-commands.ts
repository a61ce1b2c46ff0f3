/**
 * The operator's own commands in `npm run repl` (moleculer-repl's `customCommands`, given to the
 * broker as `replCommands`), beside the built-in `nodes`, `services`, `call`, `metrics`…:
 * `stock <productId>`, `orders [status]`, `outbox` and `settle`.
 *
 * The REPL node sits on the transporter, inside the trust boundary that the gateway guards, so it
 * calls as the operator: an admin identity in `meta.user`, which the services' `auth` checks and
 * ownership rules accept like any admin's. Nothing here decides a business rule; every command
 * is one or a few action calls.
 */
import type { ServiceBroker } from "moleculer";
import type { AuthUser, Order, OutboxBacklog, Page, Product } from "../types";

/** Who the REPL's commands call as. */
export const REPL_OPERATOR: AuthUser = {
    id: "00000000-0000-0000-0000-000000000000",
    email: "repl@agora.local",
    role: "admin",
};

/** The services that keep an outbox of durable events. */
const OUTBOX_SERVICES = ["users", "products", "orders"];

interface ReplCommand {
    command: string;
    description: string;
    alias?: string[];
    action(broker: ServiceBroker, args: Record<string, unknown>): Promise<void>;
}

const asOperator = { meta: { user: REPL_OPERATOR } };

function print(line = ""): void {
    process.stdout.write(`${line}\n`);
}

/** A fixed-width table: the REPL's own output style, without colour codes (it may be piped). */
function printTable(header: string[], rows: (string | number)[][]): void {
    const cells = [header, ...rows.map(row => row.map(String))];
    const widths = header.map((_, column) => Math.max(...cells.map(row => row[column].length)));
    for (const row of cells)
        print(row.map((cell, column) => cell.padEnd(widths[column])).join("  "));
}

/** Prints a failed call the way the gateway would answer it: name, code, type and message. */
function printError(error: unknown): void {
    const { name, code, type, message } = error as Record<string, string>;
    print(`${name} (${code} ${type}): ${message}`);
}

export const replCommands: ReplCommand[] = [
    {
        command: "stock <productId>",
        description: "Stock and price of one product (products.get)",
        async action(broker, args) {
            try {
                const product = await broker.call<Product, { id: unknown }>(
                    "products.get",
                    { id: args.productId },
                    asOperator,
                );
                print(`${product.name} (${product.id})`);
                print(`  stock: ${product.stock}`);
                print(`  price: ${product.price} ${product.currency} (minor units)`);
            } catch (error) {
                printError(error);
            }
        },
    },
    {
        command: "orders [status]",
        description: "The newest 20 orders in one status, PENDING by default (orders.list)",
        alias: ["pending"],
        async action(broker, args) {
            const status = String(args.status ?? "PENDING").toUpperCase();
            try {
                const page = await broker.call<Page<Order>, object>(
                    "orders.list",
                    { status, pageSize: 20 },
                    asOperator,
                );
                print(`${page.total} ${status} order(s)${page.total > 20 ? ", newest 20:" : ""}`);
                if (!page.rows.length) return;
                printTable(
                    ["id", "user", "items", "total", "created"],
                    page.rows.map(order => [
                        order.id,
                        order.userId,
                        order.items.length,
                        order.total ?? "-",
                        order.createdAt,
                    ]),
                );
            } catch (error) {
                printError(error);
            }
        },
    },
    {
        command: "outbox",
        description: "Durable events each service has not relayed yet (<service>.outboxBacklog)",
        async action(broker) {
            const rows = await Promise.all(
                OUTBOX_SERVICES.map(service =>
                    broker
                        .call<OutboxBacklog, object>(`${service}.outboxBacklog`, {}, asOperator)
                        .then(
                            backlog => [
                                service,
                                backlog.unsent,
                                backlog.oldestAgeSeconds.toFixed(1),
                            ],
                            (error: Error) => [service, "-", error.message],
                        ),
                ),
            );
            printTable(["service", "unsent", "oldest (s)"], rows);
        },
    },
    {
        command: "settle",
        description: "One settler pass now on some orders node (orders.settle)",
        async action(broker) {
            try {
                const counts = await broker.call<Record<string, number>, object>(
                    "orders.settle",
                    {},
                    asOperator,
                );
                printTable(["outcome", "orders"], Object.entries(counts));
            } catch (error) {
                printError(error);
            }
        },
    },
];
