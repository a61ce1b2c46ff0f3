/**
 * The pure rules of placing an order: which lines are acceptable, what they cost, what the order
 * copies from the user and the reservation, and how a retry is recognised. No I/O here.
 */
import crypto from "node:crypto";
import { FieldValidationError, type FieldProblem, type ShortItem } from "../../lib/errors";
import type { OrderItem, OrderLine, ReservedLine, ShippingDetails, User } from "../../types";

export const MAX_LINES = 50;
export const MAX_QUANTITY = 1000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Ids in one spelling (PostgreSQL prints uuids in lower case), each product at most once. */
export function normalizeLines(items: OrderLine[]): OrderLine[] {
    const seen = new Set<string>();
    const problems: FieldProblem[] = [];
    const lines = items.map((item, index) => {
        const productId = item.productId.toLowerCase();
        if (seen.has(productId)) {
            problems.push({
                field: `items[${index}].productId`,
                message: "The product appears more than once in this order",
                type: "arrayUnique",
            });
        }
        seen.add(productId);
        return { productId, quantity: item.quantity };
    });
    if (problems.length) throw new FieldValidationError(problems);
    return lines;
}

/**
 * The key of `Idempotency-Key` (header, put in meta by the gateway) or of the `idempotencyKey`
 * argument; null when the client sent none.
 */
export function idempotencyKeyOf(fromParams?: string, fromHeader?: unknown): string | null {
    const key = fromParams ?? fromHeader;
    if (key === undefined || key === null) return null;
    if (typeof key !== "string" || key.length < 1 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
        throw new FieldValidationError([
            {
                field: "idempotencyKey",
                message: `The idempotency key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
                type: "stringLength",
            },
        ]);
    }
    return key;
}

/** Same lines in any order hash the same: that is "the same request" for idempotency. */
export function requestHash(lines: OrderLine[]): string {
    const canonical = [...lines]
        .sort((a, b) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0))
        .map(line => [line.productId, line.quantity]);
    return crypto.createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** The lines of an order not priced yet: it is PENDING until the inventory answers. */
export function unpricedItems(lines: OrderLine[]): OrderItem[] {
    return lines.map(line => ({
        productId: line.productId,
        name: null,
        unitPrice: null,
        quantity: line.quantity,
        lineTotal: null,
    }));
}

/**
 * The order's own copy of each line, priced by the reservation that took its stock: the name and
 * price of the product at that moment, never anything the client sent. Kept in the order's line
 * order; `reserved` holds the same products (products.reserve returns one line per line asked).
 */
export function pricedItems(
    lines: OrderLine[],
    reserved: ReservedLine[],
): { items: OrderItem[]; total: number } {
    const byProduct = new Map(reserved.map(line => [line.productId, line]));
    const items = lines.map(line => {
        const taken = byProduct.get(line.productId);
        if (!taken) throw new Error(`The reservation has no line for product ${line.productId}`);
        return {
            productId: line.productId,
            name: taken.name,
            unitPrice: taken.unitPrice,
            quantity: line.quantity,
            lineTotal: taken.unitPrice * line.quantity,
        };
    });
    return { items, total: items.reduce((sum, item) => sum + item.lineTotal, 0) };
}

export function shippingOf(user: User): ShippingDetails {
    return { name: user.name, phone: user.phone, address: user.address };
}

/** True for the inventory's "not enough stock" answer, also after it crossed the transporter. */
export function isStockShortage(err: unknown): err is { data: { items: ShortItem[] } } {
    return (err as { type?: string } | null)?.type === "INSUFFICIENT_STOCK";
}

/** True for the inventory's "no such product" answer: a 422 naming each unknown or deleted line. */
export function isUnknownProduct(err: unknown): err is { data: FieldProblem[] } {
    const refusal = err as { type?: string; data?: unknown } | null;
    return refusal?.type === "VALIDATION_ERROR" && Array.isArray(refusal.data);
}

/** Why the inventory refused an order, for `rejectionReason`. */
export function refusalReason(err: unknown): string | null {
    if (isStockShortage(err)) return shortageReason(err.data.items);
    if (isUnknownProduct(err)) {
        return `No such product: ${err.data.map(problem => String(problem.actual ?? problem.field)).join(", ")}`;
    }
    return null;
}

function shortageReason(items: ShortItem[]): string {
    const short = items
        .map(item => `${item.productId} (requested ${item.requested}, available ${item.available})`)
        .join(", ");
    return `Not enough stock: ${short}`;
}
