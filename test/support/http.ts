/** A small HTTP client for gateway tests: status, headers and the parsed JSON body. */
export interface HttpResult {
    status: number;
    headers: Headers;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    body: any;
}

export interface HttpOptions {
    body?: unknown;
    /** A raw body, sent as is (for malformed JSON and wrong content types). */
    raw?: string;
    token?: string;
    headers?: Record<string, string>;
}

export async function http(
    base: string,
    method: string,
    path: string,
    options: HttpOptions = {},
): Promise<HttpResult> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers["Content-Type"] ??= "application/json";
    }
    const response = await fetch(base + path, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
        parsed = text ? JSON.parse(text) : null;
    } catch {
        // Not JSON: the test sees the text.
    }
    return { status: response.status, headers: response.headers, body: parsed };
}

/** GraphQL over HTTP POST: status and `{ data, errors }`. */
export function graphql(
    base: string,
    query: string,
    variables: Record<string, unknown> = {},
    token?: string,
) {
    return http(base, "POST", "/graphql", { body: { query, variables }, token });
}
