/**
 * The one page shape of every list: `?page=1&pageSize=20` in, and
 * `{ rows, total, page, pageSize, totalPages }` out. A page size is capped at 100: a larger one
 * is answered with pages of 100, and the answer's `pageSize` says so.
 */
import type { Page, PageParams } from "../types";

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** fastest-validator rules for `page` and `pageSize`; `convert` because query strings are text. */
export const pageParamRules = {
    page: { type: "number", optional: true, integer: true, min: 1, max: 1_000_000, convert: true },
    pageSize: {
        type: "number",
        optional: true,
        integer: true,
        min: 1,
        convert: true,
        description: `Rows per page (default ${DEFAULT_PAGE_SIZE}), capped at ${MAX_PAGE_SIZE}: a larger size is answered with pages of ${MAX_PAGE_SIZE}`,
    },
} as const;

export function pageParams(params: PageParams): { page: number; pageSize: number; offset: number } {
    const page = params.page ?? 1;
    const pageSize = Math.min(params.pageSize ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
    return { page, pageSize, offset: (page - 1) * pageSize };
}

export function toPage<T>(rows: T[], total: number, page: number, pageSize: number): Page<T> {
    return { rows, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
}
