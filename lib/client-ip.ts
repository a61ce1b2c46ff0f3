/**
 * The client address the gateway believes, for rate limits and logs. It is the socket's peer,
 * unless that peer is a proxy listed in `TRUSTED_PROXIES`: then proxy-addr walks
 * `X-Forwarded-For` from the right and stops at the first address that is not a trusted proxy.
 * What a client writes at the left of that header is never taken on its word.
 */
import type { IncomingMessage } from "node:http";
import ipaddr from "ipaddr.js";
import proxyAddr from "proxy-addr";

export type ProxyTrust = (address: string, hop: number) => boolean;

/** proxy-addr's matcher for the configured proxies; a malformed entry stops the node. */
export function compileTrustedProxies(proxies: string[]): ProxyTrust {
    try {
        return proxyAddr.compile(proxies);
    } catch (error) {
        throw new Error(`TRUSTED_PROXIES: ${(error as Error).message}`);
    }
}

export function clientIp(req: IncomingMessage, trust: ProxyTrust): string {
    return proxyAddr(req, trust) ?? "unknown";
}

/**
 * What a client's rate limit is keyed by: its IPv4 address, or the /64 of its IPv6 address, since
 * one IPv6 subscriber usually holds a whole /64 and could otherwise step through 2^64 addresses.
 */
export function rateLimitSubject(ip: string): string {
    if (!ipaddr.isValid(ip)) return ip;
    const address = ipaddr.process(ip);
    if (address.kind() === "ipv4") return address.toString();
    const groups = (address as ipaddr.IPv6).toNormalizedString().split(":").slice(0, 4);
    return `${groups.join(":")}::/64`;
}
