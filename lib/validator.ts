/**
 * The broker's validator: fastest-validator (Moleculer's built-in one) for each action's `params`,
 * and then one rule every text field shares, which fastest-validator has no option for. A string
 * may not hold a NUL character (PostgreSQL `text` can't store one) or a lone UTF-16 surrogate
 * (not Unicode: it would be stored as U+FFFD, silently changing what the client sent, and it
 * breaks bcrypt's UTF-8 encoding). Either is a 422 naming the field, on the node that runs the
 * action, whoever called it (gateway, another service, the REPL).
 */
import { Validators } from "moleculer";

interface FieldError {
    type: string;
    field: string;
    message: string;
    actual: unknown;
}

type Checker = ((params: unknown, opts?: unknown) => true | FieldError[] | Promise<unknown>) & {
    async?: boolean;
};

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isStorableText(value: string): boolean {
    return !value.includes("\u0000") && !LONE_SURROGATE.test(value);
}

/** Every string in `value` that can't be stored as text, by its field path. */
export function unstorableTextFields(value: unknown, path = ""): FieldError[] {
    if (typeof value === "string") {
        if (isStorableText(value)) return [];
        return [
            {
                type: "stringText",
                field: path,
                message: `The '${path}' field must be valid text (no NUL character or lone surrogate).`,
                actual: value,
            },
        ];
    }
    if (Array.isArray(value)) {
        return value.flatMap((item, index) => unstorableTextFields(item, `${path}[${index}]`));
    }
    if (value !== null && typeof value === "object") {
        return Object.entries(value).flatMap(([key, item]) =>
            unstorableTextFields(item, path ? `${path}.${key}` : key),
        );
    }
    return [];
}

export class AgoraValidator extends Validators.Fastest {
    override compile(schema: object): Checker {
        const check = super.compile(schema) as Checker;
        // Runs after fastest-validator, so `$$strict: "remove"` has already dropped unknown fields.
        const withText = (result: true | FieldError[], params: unknown): true | FieldError[] => {
            const problems = [...(result === true ? [] : result), ...unstorableTextFields(params)];
            return problems.length ? problems : true;
        };
        const checker: Checker = (params, opts) => {
            const result = check(params, opts);
            if (result instanceof Promise) {
                return result.then(settled => withText(settled as true | FieldError[], params));
            }
            return withText(result as true | FieldError[], params);
        };
        checker.async = check.async;
        return checker;
    }
}
