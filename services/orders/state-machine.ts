/**
 * The order lifecycle of API.md, written once:
 * `PENDING → CONFIRMED → SHIPPED → DELIVERED`, `PENDING → REJECTED`, `PENDING | CONFIRMED → CANCELLED`.
 *
 * CONFIRMED and REJECTED are reached only through the inventory's answer (placement or settler);
 * people (the owner, an admin) may only ship, deliver and cancel.
 */
import { OrderStatus } from "../../types";

const NEXT: Record<OrderStatus, readonly OrderStatus[]> = {
    [OrderStatus.Pending]: [OrderStatus.Confirmed, OrderStatus.Rejected, OrderStatus.Cancelled],
    [OrderStatus.Confirmed]: [OrderStatus.Shipped, OrderStatus.Cancelled],
    [OrderStatus.Shipped]: [OrderStatus.Delivered],
    [OrderStatus.Delivered]: [],
    [OrderStatus.Rejected]: [],
    [OrderStatus.Cancelled]: [],
};

const SET_BY_INVENTORY: readonly OrderStatus[] = [OrderStatus.Confirmed, OrderStatus.Rejected];

export const ORDER_STATUSES: readonly OrderStatus[] = Object.values(OrderStatus);

/** Statuses whose shipping details still follow the customer's profile. */
export const UNSHIPPED_STATUSES: readonly OrderStatus[] = [
    OrderStatus.Pending,
    OrderStatus.Confirmed,
];

export function canMove(from: OrderStatus, to: OrderStatus): boolean {
    return NEXT[from].includes(to);
}

/** The statuses from which the owner or an admin may move an order to `to` (none: never). */
export function manualSourcesOf(to: OrderStatus): OrderStatus[] {
    if (SET_BY_INVENTORY.includes(to)) return [];
    return ORDER_STATUSES.filter(from => canMove(from, to));
}
