/**
 * The few calls a benchmark makes outside the load itself, over the public API like any client:
 * seeding products and buyers, and reading back what the load left for the checks.
 */
import crypto from "node:crypto";

export interface ApiResponse<T> {
    status: number;
    body: T;
    text: string;
}

export interface Buyer {
    id: string;
    email: string;
    password: string;
    token: string;
}

interface ProductOut {
    id: string;
    stock: number;
}

interface OrderOut {
    id: string;
    status: string;
    items: { productId: string; quantity: number }[];
}

interface PageOut<T> {
    rows: T[];
    total: number;
    totalPages: number;
}

export const BUYER_PASSWORD = "a benchmark buyer passphrase";

export class AgoraClient {
    constructor(readonly base: string) {}

    async request<T>(
        method: string,
        path: string,
        options: { body?: unknown; token?: string } = {},
    ): Promise<ApiResponse<T>> {
        const headers: Record<string, string> = {};
        if (options.token) headers.Authorization = `Bearer ${options.token}`;
        if (options.body !== undefined) headers["Content-Type"] = "application/json";
        const response = await fetch(this.base + path, {
            method,
            headers,
            body: options.body === undefined ? undefined : JSON.stringify(options.body),
            signal: AbortSignal.timeout(30_000),
        });
        const text = await response.text();
        let body: unknown = null;
        try {
            body = text ? JSON.parse(text) : null;
        } catch {
            body = text;
        }
        return { status: response.status, body: body as T, text };
    }

    /** The body when the status is the expected one; otherwise an error that shows the answer. */
    async expect<T>(
        status: number,
        method: string,
        path: string,
        options: { body?: unknown; token?: string } = {},
    ): Promise<T> {
        const response = await this.request<T>(method, path, options);
        if (response.status !== status) {
            throw new Error(
                `${method} ${path}: expected ${status}, got ${response.status} ${response.text.slice(0, 500)}`,
            );
        }
        return response.body;
    }

    async login(email: string, password: string): Promise<string> {
        const body = await this.expect<{ accessToken: string }>(200, "POST", "/api/auth/login", {
            body: { email, password },
        });
        return body.accessToken;
    }

    async createProduct(adminToken: string, index: number, stock: number): Promise<ProductOut> {
        return this.expect<ProductOut>(201, "POST", "/api/products", {
            token: adminToken,
            body: {
                name: `Bench product ${String(index).padStart(4, "0")}`,
                description: `A product of the benchmark catalogue, number ${index}.`,
                price: 100 + ((index * 7919) % 100_000),
                stock,
                category: `bench-${index % 10}`,
            },
        });
    }

    async registerBuyer(index: number): Promise<Buyer> {
        const email = `buyer-${index}-${crypto.randomBytes(3).toString("hex")}@bench.test`;
        const user = await this.expect<{ id: string }>(201, "POST", "/api/auth/register", {
            body: {
                email,
                password: BUYER_PASSWORD,
                name: `Buyer ${index}`,
                phone: "+1 555 0100",
                address: {
                    line1: `${index} Bench St`,
                    city: "Loadville",
                    postalCode: "12345",
                    country: "US",
                },
            },
        });
        const token = await this.login(email, BUYER_PASSWORD);
        return { id: user.id, email, password: BUYER_PASSWORD, token };
    }

    async productStock(id: string): Promise<number> {
        return (await this.expect<ProductOut>(200, "GET", `/api/products/${id}`)).stock;
    }

    /** Every order with `status`, as an admin sees them, page by page. */
    async ordersWithStatus(adminToken: string, status: string): Promise<OrderOut[]> {
        const orders: OrderOut[] = [];
        for (let page = 1; ; page++) {
            const body = await this.expect<PageOut<OrderOut>>(
                200,
                "GET",
                `/api/orders?status=${status}&page=${page}&pageSize=100`,
                { token: adminToken },
            );
            orders.push(...body.rows);
            if (page >= body.totalPages) return orders;
        }
    }

    async countOrders(adminToken: string, status: string): Promise<number> {
        const body = await this.expect<PageOut<OrderOut>>(
            200,
            "GET",
            `/api/orders?status=${status}&pageSize=1`,
            { token: adminToken },
        );
        return body.total;
    }
}

/** Runs `work` over `items` with at most `limit` at a time. */
export async function mapLimit<T, R>(
    items: T[],
    limit: number,
    work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
    const results: R[] = new Array(items.length);
    let next = 0;
    const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
        while (next < items.length) {
            const index = next++;
            results[index] = await work(items[index], index);
        }
    });
    await Promise.all(lanes);
    return results;
}
