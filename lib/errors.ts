/**
 * The error types of the public contract (shared/API.md). Services throw these; the gateway turns
 * them into `{ name, message, code, type, data }` with the HTTP status in `code`, and GraphQL puts
 * `type` into `errors[].extensions.code`. They survive NATS because Moleculer's error regenerator
 * keeps `name`, `code`, `type` and `data`.
 */
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerError } = Errors;

export interface FieldProblem {
    field: string;
    message: string;
    type?: string;
    /** The value that was refused, as fastest-validator reports it. */
    actual?: unknown;
}

export class BadRequestError extends MoleculerClientError {
    constructor(message: string, data?: unknown) {
        super(message, 400, "INVALID_REQUEST_BODY", data);
        this.name = "BadRequestError";
    }
}

export class UnauthorizedError extends MoleculerClientError {
    constructor(message = "Authentication required", type = "UNAUTHORIZED") {
        super(message, 401, type, undefined);
        this.name = "UnauthorizedError";
    }
}

export class InvalidCredentialsError extends MoleculerClientError {
    constructor() {
        super("Invalid email or password", 401, "INVALID_CREDENTIALS", undefined);
        this.name = "InvalidCredentialsError";
    }
}

export class TokenExpiredError extends MoleculerClientError {
    constructor() {
        super("The access token has expired", 401, "TOKEN_EXPIRED", undefined);
        this.name = "TokenExpiredError";
    }
}

export class ForbiddenError extends MoleculerClientError {
    constructor(message = "You are not allowed to do this") {
        super(message, 403, "FORBIDDEN", undefined);
        this.name = "ForbiddenError";
    }
}

export class NotFoundError extends MoleculerClientError {
    constructor(what: string, id?: string) {
        super(`${what} not found`, 404, "NOT_FOUND", id === undefined ? undefined : { id });
        this.name = "NotFoundError";
    }
}

export class EmailTakenError extends MoleculerClientError {
    constructor() {
        super("This email is already registered", 409, "EMAIL_TAKEN", undefined);
        this.name = "EmailTakenError";
    }
}

export interface ShortItem {
    productId: string;
    requested: number;
    available: number;
}

export class InsufficientStockError extends MoleculerClientError {
    constructor(items: ShortItem[]) {
        super("Not enough stock", 409, "INSUFFICIENT_STOCK", { items });
        this.name = "InsufficientStockError";
    }
}

export class InvalidTransitionError extends MoleculerClientError {
    constructor(from: string, to: string) {
        super(`An order can't move from ${from} to ${to}`, 409, "INVALID_TRANSITION", {
            from,
            to,
        });
        this.name = "InvalidTransitionError";
    }
}

export class IdempotencyConflictError extends MoleculerClientError {
    constructor() {
        super(
            "This Idempotency-Key was already used with a different request",
            409,
            "IDEMPOTENCY_CONFLICT",
            undefined,
        );
        this.name = "IdempotencyConflictError";
    }
}

/** 422 with the same `data` shape as the built-in validator: one entry per field and why. */
export class FieldValidationError extends MoleculerClientError {
    constructor(problems: FieldProblem[]) {
        super("Parameters validation error!", 422, "VALIDATION_ERROR", problems);
        this.name = "ValidationError";
    }
}

/** 429: the client is over a rate limit; `data.retryAfter` (seconds) is also the `Retry-After`. */
export class RateLimitedError extends MoleculerClientError {
    constructor(retryAfterSeconds: number) {
        super("Too many requests, try again later", 429, "RATE_LIMITED", {
            retryAfter: retryAfterSeconds,
        });
        this.name = "RateLimitedError";
    }
}

export class ServiceUnavailableError extends MoleculerError {
    constructor(message = "The service is unavailable, try again shortly", data?: unknown) {
        super(message, 503, "SERVICE_UNAVAILABLE", data);
        this.name = "ServiceUnavailableError";
        this.retryable = true;
    }
}
