/**
 * The stamped cache (lib/stamped-cache.ts) in memory, as in the embedded mode: hits after a miss,
 * a bump makes every entry of the group unreachable, a slow reader that computed before a write
 * can't store its old value, and concurrent misses compute once under one stamp only.
 */
import { ServiceBroker } from "moleculer";
import { StampedCache } from "../../lib/stamped-cache";

let broker: ServiceBroker;

beforeAll(() => {
    broker = new ServiceBroker({ logger: false, metrics: false });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
    let resolve!: () => void;
    const promise = new Promise<void>(r => (resolve = r));
    return { promise, resolve };
}

it("computes on a miss, then answers from the cache", async () => {
    const cache = new StampedCache(broker);
    const compute = jest.fn(async () => ({ price: 1 }));
    expect(JSON.parse(await cache.read("g", "k", compute))).toEqual({ price: 1 });
    expect(JSON.parse(await cache.read("g", "k", compute))).toEqual({ price: 1 });
    expect(compute).toHaveBeenCalledTimes(1);
    expect(await cache.peek("g", "k")).toBe('{"price":1}');
    expect(await cache.peek("g", "other")).toBeNull();
});

it("reads again after the group's stamp was bumped, and only that group", async () => {
    const cache = new StampedCache(broker);
    let price = 1;
    const compute = async () => ({ price });
    await cache.read("g", "k", compute);
    await cache.read("h", "k", compute);
    price = 2;
    await cache.bump(["g"]);
    expect(await cache.peek("g", "k")).toBeNull();
    expect(JSON.parse(await cache.read("g", "k", compute))).toEqual({ price: 2 });
    expect(JSON.parse(await cache.read("h", "k", compute))).toEqual({ price: 1 });
});

it("never stores a value computed before a bump (the slow reader's race)", async () => {
    const cache = new StampedCache(broker);
    let row = { price: 100 };
    const computed = deferred();
    const release = deferred();
    // The slow reader has read the old row; it is held before its store.
    cache.beforeStore = async () => {
        cache.beforeStore = null;
        computed.resolve();
        await release.promise;
    };
    const slow = cache.read("g", "k", async () => ({ ...row }));
    await computed.promise;
    // The write commits and bumps the stamp before it answers.
    row = { price: 150 };
    await cache.bump(["g"]);
    release.resolve();
    // The slow reader started before the write: it may answer the old value, but not store it.
    expect(JSON.parse(await slow)).toEqual({ price: 100 });
    expect(await cache.peek("g", "k")).toBeNull();
    expect(JSON.parse(await cache.read("g", "k", async () => ({ ...row })))).toEqual({
        price: 150,
    });
});

it("computes concurrent misses of one entry once, but never joins a read from before a bump", async () => {
    const cache = new StampedCache(broker);
    let price = 1;
    const gate = deferred();
    const compute = jest.fn(async () => {
        const seen = price;
        await gate.promise;
        return { price: seen };
    });
    const first = cache.read("g", "k", compute);
    const second = cache.read("g", "k", compute);
    await new Promise(resolve => setImmediate(resolve));
    price = 2;
    await cache.bump(["g"]);
    const afterWrite = cache.read("g", "k", compute);
    await new Promise(resolve => setImmediate(resolve));
    gate.resolve();
    expect(JSON.parse(await first)).toEqual({ price: 1 });
    expect(JSON.parse(await second)).toEqual({ price: 1 });
    expect(JSON.parse(await afterWrite)).toEqual({ price: 2 });
    expect(compute).toHaveBeenCalledTimes(2);
    expect(JSON.parse((await cache.peek("g", "k"))!)).toEqual({ price: 2 });
});

it("does not cache a computation that fails", async () => {
    const cache = new StampedCache(broker);
    await expect(
        cache.read("g", "k", async () => {
            throw new Error("not found");
        }),
    ).rejects.toThrow("not found");
    expect(await cache.peek("g", "k")).toBeNull();
    expect(JSON.parse(await cache.read("g", "k", async () => 1))).toBe(1);
});
