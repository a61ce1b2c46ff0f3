/**
 * Shared shapes: what actions take and return, and what events carry. Every service imports them
 * from here, so a changed payload breaks the compiler, not production.
 */

export type Role = "user" | "admin";

/** Who is calling: set by the gateway from a verified access token, carried in `ctx.meta.user`. */
export interface AuthUser {
    id: string;
    email: string;
    role: Role;
    /** The refresh-token family (session) the access token was minted for. */
    sessionId?: string;
}

export interface RequestMeta {
    user?: AuthUser;
    /** `Idempotency-Key` header of `POST /api/orders`. */
    idempotencyKey?: string;
    /** moleculer-web reads these to set the HTTP status and headers. */
    $statusCode?: number;
    $responseHeaders?: Record<string, string>;
    /** Client IP as the gateway trusts it (for auth logs). */
    clientIp?: string;
}

export interface Page<T> {
    rows: T[];
    total: number;
    page: number;
    pageSize: number;
    totalPages: number;
}

export interface PageParams {
    page?: number;
    pageSize?: number;
}

export interface Address {
    line1: string | null;
    line2: string | null;
    city: string | null;
    postalCode: string | null;
    country: string | null;
}

export interface User {
    id: string;
    email: string;
    name: string;
    role: Role;
    phone: string | null;
    address: Address;
    createdAt: string;
    updatedAt: string;
}

export interface TokenPair {
    accessToken: string;
    refreshToken: string;
    tokenType: "Bearer";
    /** Seconds until the access token expires. */
    expiresIn: number;
    user: User;
}

export interface Product {
    id: string;
    name: string;
    description: string | null;
    /** Minor units of `currency` (1999 is 19.99). */
    price: number;
    currency: string;
    stock: number;
    category: string | null;
    createdAt: string;
    updatedAt: string;
}

export type ProductSort = "name" | "-name" | "price" | "-price" | "createdAt" | "-createdAt";

export interface ProductListParams extends PageParams {
    search?: string;
    category?: string;
    minPrice?: number;
    maxPrice?: number;
    inStock?: boolean;
    sort?: ProductSort;
}

export type InventoryOp = "add" | "subtract" | "set";

export interface OrderLine {
    productId: string;
    quantity: number;
}

/** `products.reserve`: take stock for every line of an order, all or nothing. */
export interface ReserveParams {
    orderId: string;
    items: OrderLine[];
}

/** A reserved line, with the product's name and price at the moment its stock was taken. */
export interface ReservedLine extends OrderLine {
    name: string;
    unitPrice: number;
}

export interface Reservation {
    orderId: string;
    items: ReservedLine[];
    /** `held` until released; a released reservation is kept so that retries stay idempotent. */
    status: "held" | "released";
    createdAt: string;
}

export enum OrderStatus {
    Pending = "PENDING",
    Confirmed = "CONFIRMED",
    Shipped = "SHIPPED",
    Delivered = "DELIVERED",
    Rejected = "REJECTED",
    Cancelled = "CANCELLED",
}

/** An order line. Name and prices are null only while the order is PENDING and unpriced. */
export interface OrderItem {
    productId: string;
    name: string | null;
    unitPrice: number | null;
    quantity: number;
    lineTotal: number | null;
}

export interface ShippingDetails {
    name: string;
    phone: string | null;
    address: Address;
}

export interface Order {
    id: string;
    userId: string;
    status: OrderStatus;
    items: OrderItem[];
    /** Null only while the order is PENDING and unpriced (the inventory was unreachable). */
    total: number | null;
    currency: string;
    shipping: ShippingDetails;
    rejectionReason: string | null;
    createdAt: string;
    updatedAt: string;
}

/** Event `user.profileUpdated`: the new shipping details of a user. */
export interface UserProfileUpdatedEvent {
    userId: string;
    shipping: ShippingDetails;
    updatedAt: string;
}

/** What a durable channel carries: one outbox row (see mixins/outbox.mixin.ts). */
export interface ChannelEvent<T = unknown> {
    /** The outbox row id: consumers dedupe on it. */
    eventId: string;
    channel: string;
    occurredAt: string;
    data: T;
}

/** Action `<service>.outboxBacklog`: what a service's outbox relay still has to send. */
export interface OutboxBacklog {
    service: string;
    unsent: number;
    /** Age of the oldest unsent event; 0 when there is none. */
    oldestAgeSeconds: number;
}

/** Durable channels and their payloads (`data`). */
export const Channel = {
    UserProfileUpdated: "user.profileUpdated",
    OrderPlaced: "order.placed",
    OrderConfirmed: "order.confirmed",
    OrderRejected: "order.rejected",
    OrderCancelled: "order.cancelled",
    OrderStatusChanged: "order.statusChanged",
    InventoryUpdated: "inventory.updated",
} as const;

/** `order.*`: an order's lifecycle step. */
export interface OrderLifecycleEvent {
    orderId: string;
    userId: string;
    status: OrderStatus;
    previousStatus: OrderStatus | null;
    /** Null while the order is not priced yet (PENDING, or refused before it was). */
    total: number | null;
    currency: string;
    items: { productId: string; quantity: number }[];
    rejectionReason: string | null;
    updatedAt: string;
}

/** `inventory.updated`: a product's stock after a change. */
export interface InventoryUpdatedEvent {
    productId: string;
    stock: number;
    previousStock: number | null;
    updatedAt: string;
}
