/**
 * An `orders.orders` row as PostgreSQL returns it, and its public JSON shape (API.md "Order").
 */
import type { Order, OrderItem, OrderStatus, ShippingDetails } from "../../types";

export interface OrderRow {
    id: string;
    user_id: string;
    status: OrderStatus;
    items: OrderItem[];
    /** `bigint` comes back from pg as a string; null while PENDING and not yet priced. */
    total: string | number | null;
    currency: string;
    shipping: ShippingDetails;
    rejection_reason: string | null;
    idempotency_key: string | null;
    request_hash: string | null;
    stock_held: boolean;
    release_pending: boolean;
    created_at: Date;
    updated_at: Date;
}

/** jsonb keeps no key order: the copies are rebuilt so that every answer reads the same. */
export function toOrder(row: OrderRow): Order {
    const { name, phone, address } = row.shipping;
    return {
        id: row.id,
        userId: row.user_id,
        status: row.status,
        items: row.items.map(item => ({
            productId: item.productId,
            name: item.name,
            unitPrice: item.unitPrice,
            quantity: item.quantity,
            lineTotal: item.lineTotal,
        })),
        total: row.total === null ? null : Number(row.total),
        currency: row.currency,
        shipping: {
            name,
            phone,
            address: {
                line1: address.line1,
                line2: address.line2,
                city: address.city,
                postalCode: address.postalCode,
                country: address.country,
            },
        },
        rejectionReason: row.rejection_reason,
        createdAt: new Date(row.created_at).toISOString(),
        updatedAt: new Date(row.updated_at).toISOString(),
    };
}
