/**
 * Which address a request is counted against: the socket's peer unless a trusted proxy stands in
 * between, never the client's own word in X-Forwarded-For; IPv6 clients by their /64.
 */
import type { IncomingMessage } from "node:http";
import { clientIp, compileTrustedProxies, rateLimitSubject } from "../../lib/client-ip";

/** The two fields proxy-addr reads of a request. */
function request(remoteAddress: string, forwardedFor?: string): IncomingMessage {
    const headers = forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor };
    return { socket: { remoteAddress }, connection: { remoteAddress }, headers } as never;
}

describe("clientIp", () => {
    it("is the socket's peer when no proxy is trusted, whatever X-Forwarded-For says", () => {
        const none = compileTrustedProxies([]);
        expect(clientIp(request("203.0.113.7", "198.51.100.1"), none)).toBe("203.0.113.7");
    });

    it("takes the address a trusted proxy saw, not what the client wrote at the left", () => {
        const loopback = compileTrustedProxies(["loopback"]);
        expect(clientIp(request("127.0.0.1", "198.51.100.1"), loopback)).toBe("198.51.100.1");
        // The client wrote "6.6.6.6"; the proxy appended the address it really saw.
        expect(clientIp(request("127.0.0.1", "6.6.6.6, 198.51.100.1"), loopback)).toBe(
            "198.51.100.1",
        );
    });

    it("walks through a chain of trusted proxies and stops at the first untrusted hop", () => {
        const trust = compileTrustedProxies(["10.0.0.0/8", "loopback"]);
        const chain = "6.6.6.6, 198.51.100.9, 10.1.2.3";
        expect(clientIp(request("127.0.0.1", chain), trust)).toBe("198.51.100.9");
        // A peer that is not a listed proxy is the client, even with a header.
        expect(clientIp(request("192.0.2.50", chain), trust)).toBe("192.0.2.50");
    });

    it("refuses a malformed TRUSTED_PROXIES entry, naming the setting", () => {
        expect(() => compileTrustedProxies(["10.0.0.0/99"])).toThrow(/TRUSTED_PROXIES/);
        expect(() => compileTrustedProxies(["not-an-address"])).toThrow(/TRUSTED_PROXIES/);
    });
});

describe("rateLimitSubject", () => {
    it("counts IPv4 by address, IPv4-mapped IPv6 as IPv4, and IPv6 by /64", () => {
        expect(rateLimitSubject("203.0.113.7")).toBe("203.0.113.7");
        expect(rateLimitSubject("::ffff:203.0.113.7")).toBe("203.0.113.7");
        const one = rateLimitSubject("2001:db8:1:2::1");
        expect(one).toBe("2001:db8:1:2::/64");
        expect(rateLimitSubject("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe(one);
        expect(rateLimitSubject("2001:db8:1:3::1")).not.toBe(one);
    });
});
