/**
 * The gateway's one translation from whatever went wrong to the contract's error
 * (`{ name, message, code, type, data }` + HTTP status, shared/API.md). REST and GraphQL both use it.
 */
import { Errors } from "moleculer";

export interface ContractError {
    name: string;
    message: string;
    code: number;
    type: string;
    data?: unknown;
}

/** Moleculer's "nobody can take this call now" errors: all become 503 SERVICE_UNAVAILABLE. */
const UNAVAILABLE_TYPES = new Set([
    "SERVICE_NOT_FOUND",
    "SERVICE_NOT_AVAILABLE",
    "REQUEST_TIMEOUT",
    "REQUEST_REJECTED",
    "REQUEST_SKIPPED",
    "QUEUE_FULL",
    "CIRCUIT_BREAKER_OPEN",
    "SERVICE_UNAVAILABLE",
]);

/** body-parser's failures, in moleculer-web's wrapping. */
const BODY_TYPES: Record<string, Pick<ContractError, "code" | "type" | "message">> = {
    "entity.parse.failed": {
        code: 400,
        type: "INVALID_REQUEST_BODY",
        message: "The body is not valid JSON",
    },
    "entity.too.large": { code: 413, type: "PAYLOAD_TOO_LARGE", message: "The body is too large" },
    "encoding.unsupported": {
        code: 415,
        type: "INVALID_REQUEST_BODY",
        message: "Unsupported encoding",
    },
    "charset.unsupported": {
        code: 415,
        type: "INVALID_REQUEST_BODY",
        message: "Unsupported charset",
    },
    "request.aborted": {
        code: 400,
        type: "INVALID_REQUEST_BODY",
        message: "The request was aborted",
    },
    "stream.encoding.set": { code: 500, type: "INTERNAL_ERROR", message: "Internal error" },
};

export function toContractError(error: unknown, production: boolean): ContractError {
    const err = (error ?? {}) as Partial<Errors.MoleculerError> & { status?: number };
    const type = typeof err.type === "string" ? err.type : "";
    const code = typeof err.code === "number" ? err.code : (err.status ?? 500);

    if (BODY_TYPES[type]) return { name: "BadRequestError", ...BODY_TYPES[type] };
    // zlib's own codes (Z_DATA_ERROR…): a Content-Encoding the body doesn't really have.
    if (typeof err.code === "string" && (err.code as string).startsWith("Z_")) {
        return {
            name: "BadRequestError",
            message: "The body does not match its Content-Encoding",
            code: 400,
            type: "INVALID_REQUEST_BODY",
        };
    }
    if (UNAVAILABLE_TYPES.has(type) || code === 503 || code === 504) {
        return {
            name: "ServiceUnavailableError",
            message: "The service is unavailable, try again shortly",
            code: 503,
            type: "SERVICE_UNAVAILABLE",
        };
    }
    if (code >= 400 && code < 500) {
        return {
            name: err.name ?? "Error",
            message: err.message ?? "Bad request",
            code,
            type: type || "BAD_REQUEST",
            data: err.data,
        };
    }
    // Anything else is our fault: say little in production.
    return {
        name: "InternalServerError",
        message: production ? "Internal server error" : (err.message ?? "Internal server error"),
        code: 500,
        type: "INTERNAL_ERROR",
    };
}
