import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type Store, StoreClosedError, type StoreEvent, type StoreScript } from './store.port.js';

export interface StoreContractOptions {
  /**
   * Whether two stores made by `makeStore` share their data and pub/sub (true for Redis: two
   * connections to one server, i.e. two Parley instances). MemoryStore instances share nothing, so
   * the multi-instance cases are skipped for it.
   */
  shared: boolean;
}

/**
 * Makes a fresh store. Without options every store made by one factory uses the same key prefix
 * (so shared stores see each other); with `keyPrefix` it must use a different prefix derived from it.
 */
export type MakeStore = (opts?: { keyPrefix?: string }) => Promise<Store>;

/** "Debit if enough": returns the new balance, or -1 (balance untouched) when it is too low. */
export const debitScript: StoreScript<number> = {
  name: 'contract_debit',
  numberOfKeys: 1,
  lua: `
    local balance = tonumber(redis.call('GET', KEYS[1]) or '0')
    local amount = tonumber(ARGV[1])
    if balance < amount then return -1 end
    return redis.call('DECRBY', KEYS[1], amount)
  `,
  local: (kv, keys, args) => {
    const balance = Number(kv.get(keys[0]) ?? '0');
    const amount = Number(args[0]);
    if (balance < amount) return -1;
    return kv.incrBy(keys[0], -amount);
  },
};

/** Value (or null) and PTTL of a key: exercises nil -> null, tables -> arrays and TTL reporting. */
export const peekScript: StoreScript<[string | null, number]> = {
  name: 'contract_peek',
  numberOfKeys: 1,
  lua: `return { redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]) }`,
  local: (kv, keys) => [kv.get(keys[0]), kv.pttl(keys[0])],
};

/** Take a lock with a TTL if nobody holds it: 1 when taken, 0 when held. */
export const lockScript: StoreScript<number> = {
  name: 'contract_lock',
  numberOfKeys: 1,
  lua: `
    if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
  `,
  local: (kv, keys, args) => {
    if (kv.get(keys[0]) !== null) return 0;
    kv.set(keys[0], args[0], Number(args[1]));
    return 1;
  },
};

/** Short TTL for expiry tests, and how long to wait until such a key is surely gone. */
const SHORT_TTL_MS = 75;
const EXPIRED_AFTER_MS = 200;

async function waitFor(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function elapsed<T>(promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await promise;
  return { value, ms: performance.now() - start };
}

function events(...ids: number[]): StoreEvent[] {
  return ids.map((id) => ({ id, data: `event-${id}` }));
}

/** The behaviour every Store implementation must have. */
export function describeStoreContract(
  name: string,
  makeStore: MakeStore,
  options: StoreContractOptions,
): void {
  describe(`${name} (Store contract)`, () => {
    const opened: Store[] = [];
    const open = async (opts?: { keyPrefix?: string }): Promise<Store> => {
      const store = await makeStore(opts);
      opened.push(store);
      return store;
    };
    /** A key/channel name unique to this test, so tests never see each other's data. */
    const unique = (label: string): string => `${label}:${randomUUID()}`;

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });

    describe('plain values', () => {
      it('get returns null for a missing key, set/get round-trips and overwrites', async () => {
        const store = await open();
        const key = unique('value');
        expect(await store.get(key)).toBeNull();
        await store.set(key, 'one');
        expect(await store.get(key)).toBe('one');
        await store.set(key, 'two');
        expect(await store.get(key)).toBe('two');
        await store.set(key, '');
        expect(await store.get(key)).toBe('');
      });

      it('set with a TTL expires the key; set without TTL clears an earlier TTL', async () => {
        const store = await open();
        const expiring = unique('ttl');
        const kept = unique('ttl-cleared');
        await store.set(expiring, 'v', SHORT_TTL_MS);
        await store.set(kept, 'v', SHORT_TTL_MS);
        await store.set(kept, 'w');
        expect(await store.get(expiring)).toBe('v');
        await sleep(EXPIRED_AFTER_MS);
        expect(await store.get(expiring)).toBeNull();
        expect(await store.get(kept)).toBe('w');
      });

      it('expire sets a TTL on an existing key and is a no-op for a missing one', async () => {
        const store = await open();
        const key = unique('expire');
        await store.set(key, 'v');
        await store.expire(key, SHORT_TTL_MS);
        await store.expire(unique('missing'), SHORT_TTL_MS);
        expect(await store.get(key)).toBe('v');
        await sleep(EXPIRED_AFTER_MS);
        expect(await store.get(key)).toBeNull();
      });

      it('rejects invalid TTLs', async () => {
        const store = await open();
        await expect(store.set(unique('bad-ttl'), 'v', 0)).rejects.toThrow(RangeError);
        await expect(store.set(unique('bad-ttl'), 'v', -5)).rejects.toThrow(RangeError);
        await expect(store.expire(unique('bad-ttl'), Number.NaN)).rejects.toThrow(RangeError);
      });

      it('del removes several keys, ignores missing ones and accepts no keys', async () => {
        const store = await open();
        const [a, b, c] = [unique('del'), unique('del'), unique('del')];
        await store.set(a, '1');
        await store.set(b, '2');
        await store.set(c, '3');
        await store.del(a, b, unique('missing'));
        await store.del();
        expect(await store.get(a)).toBeNull();
        expect(await store.get(b)).toBeNull();
        expect(await store.get(c)).toBe('3');
      });

      it('incrBy counts from 0, accepts negative deltas and keeps the TTL', async () => {
        const store = await open();
        const key = unique('counter');
        expect(await store.incrBy(key, 5)).toBe(5);
        expect(await store.incrBy(key, -7)).toBe(-2);
        expect(await store.get(key)).toBe('-2');
        const results = await Promise.all(Array.from({ length: 100 }, () => store.incrBy(key, 1)));
        expect(new Set(results).size).toBe(100);
        expect(await store.get(key)).toBe('98');

        const expiring = unique('counter-ttl');
        await store.set(expiring, '10', SHORT_TTL_MS);
        expect(await store.incrBy(expiring, 1)).toBe(11);
        await sleep(EXPIRED_AFTER_MS);
        expect(await store.get(expiring)).toBeNull();
      });

      it('incrBy rejects a non-integer value or delta', async () => {
        const store = await open();
        const key = unique('not-a-number');
        await store.set(key, 'abc');
        await expect(store.incrBy(key, 1)).rejects.toThrow();
        await expect(store.incrBy(unique('counter'), 1.5)).rejects.toThrow(RangeError);
        expect(await store.get(key)).toBe('abc');
      });
    });

    describe('scripts', () => {
      it('runs a debit-if-enough script 200 times concurrently with exact results', async () => {
        const store = await open();
        store.defineScript(debitScript);
        const key = unique('balance');
        await store.set(key, '150');
        const results = await Promise.all(
          Array.from({ length: 200 }, () => store.runScript<number>(debitScript.name, [key], [1])),
        );
        const successes = results.filter((r) => r >= 0);
        expect(successes).toHaveLength(150);
        expect(new Set(successes)).toEqual(new Set(Array.from({ length: 150 }, (_, i) => i)));
        expect(results.filter((r) => r === -1)).toHaveLength(50);
        expect(await store.get(key)).toBe('0');
      });

      it('converts script results like Redis does (nil -> null, table -> array) and reports PTTL', async () => {
        const store = await open();
        store.defineScript(peekScript);
        const key = unique('peek');
        expect(await store.runScript(peekScript.name, [key], [])).toEqual([null, -2]);
        await store.set(key, 'x');
        expect(await store.runScript(peekScript.name, [key], [])).toEqual(['x', -1]);
        await store.set(key, 'y', 10_000);
        const [value, pttl] = await store.runScript<[string | null, number]>(peekScript.name, [key], []);
        expect(value).toBe('y');
        expect(pttl).toBeGreaterThan(9_000);
        expect(pttl).toBeLessThanOrEqual(10_000);
      });

      it('a script can set a key with a TTL (lock)', async () => {
        const store = await open();
        store.defineScript(lockScript);
        const key = unique('lock');
        const taken = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.runScript<number>(lockScript.name, [key], [`owner-${i}`, 10_000]),
          ),
        );
        expect(taken.filter((t) => t === 1)).toHaveLength(1);
        const shortLock = unique('short-lock');
        expect(await store.runScript(lockScript.name, [shortLock], ['first', SHORT_TTL_MS])).toBe(1);
        expect(await store.runScript(lockScript.name, [shortLock], ['second', SHORT_TTL_MS])).toBe(0);
        await sleep(EXPIRED_AFTER_MS);
        expect(await store.runScript(lockScript.name, [shortLock], ['late', SHORT_TTL_MS])).toBe(1);
      });

      it('rejects unknown scripts, wrong key counts and conflicting re-definitions', async () => {
        const store = await open();
        store.defineScript(debitScript);
        expect(() => store.defineScript(debitScript)).not.toThrow();
        expect(() => store.defineScript({ ...debitScript, lua: 'return 1' })).toThrow();
        expect(() => store.defineScript({ ...debitScript, name: 'bad name!' })).toThrow();
        await expect(store.runScript('contract_nope', [], [])).rejects.toThrow();
        await expect(store.runScript(debitScript.name, [], [1])).rejects.toThrow();
        await expect(store.runScript(debitScript.name, ['a', 'b'], [1])).rejects.toThrow();
      });
    });

    describe('event log', () => {
      it('readAfter returns exactly the events after afterId, in order', async () => {
        const store = await open();
        const key = unique('log');
        expect(await store.readAfter(key, 0)).toEqual([]);
        for (const event of events(1, 2, 3, 4, 5)) await store.append(key, [event]);
        expect(await store.readAfter(key, 0)).toEqual(events(1, 2, 3, 4, 5));
        expect(await store.readAfter(key, 3)).toEqual(events(4, 5));
        expect(await store.readAfter(key, 5)).toEqual([]);
        expect(await store.readAfter(key, 99)).toEqual([]);
        expect(await store.readAfter(key, 1, { count: 2 })).toEqual(events(2, 3));
      });

      it('ids need not be contiguous but must increase; data is kept verbatim', async () => {
        const store = await open();
        const key = unique('log');
        const data = 'data: {"a":"ü\\n"}\n\nline 2 ' + 'x'.repeat(10_000);
        await store.append(key, [{ id: 10, data }]);
        await store.append(key, [{ id: 20, data: '' }]);
        await expect(store.append(key, [{ id: 20, data: 'dup' }])).rejects.toThrow();
        await expect(store.append(key, [{ id: 15, data: 'older' }])).rejects.toThrow();
        await expect(store.append(key, [{ id: 0, data: 'zero' }])).rejects.toThrow(RangeError);
        await expect(store.append(key, [{ id: 1.5, data: 'fraction' }])).rejects.toThrow(RangeError);
        expect(await store.readAfter(key, 0)).toEqual([
          { id: 10, data },
          { id: 20, data: '' },
        ]);
        expect(await store.readAfter(key, 12)).toEqual([{ id: 20, data: '' }]);
      });

      it('a batch lands in order in one call; a rejected batch writes nothing', async () => {
        const store = await open();
        const key = unique('log');
        await store.append(key, events(1, 2, 3), { maxLen: 100, ttlMs: 60_000 });
        await store.append(key, []);
        await expect(store.append(key, events(5, 4))).rejects.toThrow(RangeError);
        await expect(store.append(key, events(6, 6))).rejects.toThrow(RangeError);
        await expect(store.append(key, events(3, 8))).rejects.toThrow();
        await store.append(key, events(7, 9));
        expect(await store.readAfter(key, 0)).toEqual(events(1, 2, 3, 7, 9));
      });
      it('values and logs share one key space (wrong kind of operation rejects)', async () => {
        const store = await open();
        const log = unique('log');
        const value = unique('value');
        await store.append(log, [{ id: 1, data: 'a' }]);
        await store.set(value, 'v');
        await expect(store.get(log)).rejects.toThrow(/WRONGTYPE/);
        await expect(store.append(value, [{ id: 1, data: 'a' }])).rejects.toThrow(/WRONGTYPE/);
        await expect(store.readAfter(value, 0)).rejects.toThrow(/WRONGTYPE/);
        await store.del(log);
        expect(await store.readAfter(log, 0)).toEqual([]);
      });

      it('a blocking readAfter returns at once when events are already there', async () => {
        const store = await open();
        const key = unique('log');
        await store.append(key, [{ id: 1, data: 'a' }]);
        const { value, ms } = await elapsed(store.readAfter(key, 0, { blockMs: 5000 }));
        expect(value).toEqual([{ id: 1, data: 'a' }]);
        expect(ms).toBeLessThan(500);
      });

      it('a blocking readAfter is woken by a later append', async () => {
        const store = await open();
        const key = unique('log');
        await store.append(key, [{ id: 1, data: 'a' }]);
        const read = elapsed(store.readAfter(key, 1, { blockMs: 5000 }));
        await sleep(50);
        await store.append(key, [{ id: 2, data: 'b' }]);
        const { value, ms } = await read;
        expect(value).toEqual([{ id: 2, data: 'b' }]);
        expect(ms).toBeLessThan(1000);
      });

      it('several concurrent blocking readers are all woken', async () => {
        const store = await open();
        const keys = [unique('log'), unique('log')];
        const reads = [0, 1, 2, 3, 4, 5].map((i) => store.readAfter(keys[i % 2], 0, { blockMs: 5000 }));
        await sleep(50);
        await store.append(keys[0], [{ id: 1, data: 'zero' }]);
        await store.append(keys[1], [{ id: 1, data: 'one' }]);
        const results = await Promise.all(reads);
        results.forEach((result, i) => expect(result).toEqual([{ id: 1, data: i % 2 ? 'one' : 'zero' }]));
        // The store still serves blocking reads afterwards (pooled connections are reusable).
        const again = store.readAfter(keys[0], 1, { blockMs: 5000 });
        await store.append(keys[0], [{ id: 2, data: 'again' }]);
        expect(await again).toEqual([{ id: 2, data: 'again' }]);
      });

      it('a blocking readAfter resolves [] when nothing arrives in time', async () => {
        const store = await open();
        const key = unique('log');
        await store.append(key, [{ id: 1, data: 'a' }]);
        const { value, ms } = await elapsed(store.readAfter(key, 1, { blockMs: 150 }));
        expect(value).toEqual([]);
        expect(ms).toBeGreaterThanOrEqual(130);
        expect(ms).toBeLessThan(1000);
        const missing = await elapsed(store.readAfter(unique('missing'), 0, { blockMs: 100 }));
        expect(missing.value).toEqual([]);
        expect(missing.ms).toBeGreaterThanOrEqual(80);
      });

      it('aborting the signal ends a blocking read promptly with []', async () => {
        const store = await open();
        const key = unique('log');
        const controller = new AbortController();
        const read = elapsed(store.readAfter(key, 0, { blockMs: 10_000, signal: controller.signal }));
        await sleep(50);
        controller.abort();
        const { value, ms } = await read;
        expect(value).toEqual([]);
        expect(ms).toBeLessThan(500);

        const aborted = await elapsed(
          store.readAfter(key, 0, { blockMs: 10_000, signal: controller.signal }),
        );
        expect(aborted.value).toEqual([]);
        expect(aborted.ms).toBeLessThan(200);

        // The store is unaffected.
        const next = store.readAfter(key, 0, { blockMs: 5000 });
        await store.append(key, [{ id: 1, data: 'a' }]);
        expect(await next).toEqual([{ id: 1, data: 'a' }]);
      });

      it('close ends blocking reads promptly with []', async () => {
        const store = await open();
        const read = elapsed(store.readAfter(unique('log'), 0, { blockMs: 10_000 }));
        await sleep(50);
        const closing = elapsed(store.close());
        const { value, ms } = await read;
        expect(value).toEqual([]);
        expect(ms).toBeLessThan(1000);
        expect((await closing).ms).toBeLessThan(1000);
      });

      it('maxLen bounds the log, keeping the newest events', async () => {
        const store = await open();
        const key = unique('log');
        const total = 500;
        const maxLen = 10;
        for (let id = 1; id <= total; id++) await store.append(key, [{ id, data: `e${id}` }], { maxLen });
        const kept = await store.readAfter(key, 0);
        expect(kept.length).toBeGreaterThanOrEqual(maxLen);
        // Redis trims approximately (`MAXLEN ~`, whole 100-entry nodes), so allow that much slack.
        expect(kept.length).toBeLessThanOrEqual(maxLen + 150);
        expect(kept.at(-1)).toEqual({ id: total, data: `e${total}` });
        kept.forEach((event, i) => expect(event.id).toBe(total - kept.length + 1 + i));
      });

      it('ttlMs on append expires the whole log', async () => {
        const store = await open();
        const key = unique('log');
        await store.append(key, [{ id: 1, data: 'a' }], { ttlMs: SHORT_TTL_MS });
        await store.append(key, [{ id: 2, data: 'b' }], { ttlMs: SHORT_TTL_MS });
        expect(await store.readAfter(key, 0)).toHaveLength(2);
        await sleep(EXPIRED_AFTER_MS);
        expect(await store.readAfter(key, 0)).toEqual([]);
        await store.append(key, [{ id: 1, data: 'again' }]);
        expect(await store.readAfter(key, 0)).toEqual([{ id: 1, data: 'again' }]);
        await store.expire(key, SHORT_TTL_MS);
        await sleep(EXPIRED_AFTER_MS);
        expect(await store.readAfter(key, 0)).toEqual([]);
      });
    });

    describe('pub/sub', () => {
      it('delivers messages in order to every handler until unsubscribed', async () => {
        const store = await open();
        const channel = unique('chan');
        const first: string[] = [];
        const second: string[] = [];
        const unsubscribeFirst = await store.subscribe(channel, (m) => first.push(m));
        const unsubscribeSecond = await store.subscribe(channel, (m) => second.push(m));
        await store.publish(channel, 'a');
        await store.publish(channel, 'b');
        await store.publish(channel, 'c');
        await waitFor(() => first.length === 3 && second.length === 3);
        expect(first).toEqual(['a', 'b', 'c']);
        expect(second).toEqual(['a', 'b', 'c']);

        await unsubscribeFirst();
        await unsubscribeFirst(); // idempotent
        await store.publish(channel, 'd');
        await waitFor(() => second.length === 4);
        expect(second.at(-1)).toBe('d');

        await unsubscribeSecond();
        await store.publish(channel, 'e');
        await sleep(100);
        expect(first).toEqual(['a', 'b', 'c']);
        expect(second).toEqual(['a', 'b', 'c', 'd']);
      });

      it('delivers asynchronously, only to the right channel, and survives a throwing handler', async () => {
        const store = await open();
        const channel = unique('chan');
        const other = unique('chan');
        const got: string[] = [];
        const gotOther: string[] = [];
        await store.subscribe(channel, () => {
          throw new Error('handler failure (expected in this test)');
        });
        await store.subscribe(channel, (m) => got.push(m));
        await store.subscribe(other, (m) => gotOther.push(m));
        const publishing = store.publish(channel, 'x');
        expect(got).toEqual([]); // handlers never run synchronously inside publish()
        await publishing;
        await store.publish(unique('nobody-listens'), 'y');
        await waitFor(() => got.length === 1);
        await sleep(50);
        expect(got).toEqual(['x']);
        expect(gotOther).toEqual([]);
      });

      it('can re-subscribe to a channel after unsubscribing', async () => {
        const store = await open();
        const channel = unique('chan');
        const got: string[] = [];
        const unsubscribe = await store.subscribe(channel, (m) => got.push(m));
        await unsubscribe();
        await store.subscribe(channel, (m) => got.push(`again:${m}`));
        await store.publish(channel, 'z');
        await waitFor(() => got.length === 1);
        expect(got).toEqual(['again:z']);
      });
    });

    describe('lifecycle and isolation', () => {
      it('ping resolves while the store is up', async () => {
        const store = await open();
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('prefixes keys and channels: a store with another prefix sees none of them', async () => {
        const store = await open();
        const other = await open({ keyPrefix: `other-${randomUUID()}:` });
        expect(other.keyPrefix).not.toBe(store.keyPrefix);
        const key = unique('isolated');
        const channel = unique('chan');
        await store.set(key, 'mine');
        await store.append(`${key}:log`, [{ id: 1, data: 'a' }]);
        expect(await other.get(key)).toBeNull();
        expect(await other.readAfter(`${key}:log`, 0)).toEqual([]);
        const heard: string[] = [];
        await other.subscribe(channel, (m) => heard.push(m));
        await store.publish(channel, 'hello');
        await sleep(100);
        expect(heard).toEqual([]);
      });

      it('rejects operations after close; close is idempotent', async () => {
        const store = await open();
        await store.close();
        await store.close();
        await expect(store.get('anything')).rejects.toThrow(StoreClosedError);
        await expect(store.set('anything', 'v')).rejects.toThrow(StoreClosedError);
        await expect(store.readAfter('anything', 0)).rejects.toThrow(StoreClosedError);
        await expect(store.publish('anything', 'v')).rejects.toThrow(StoreClosedError);
        await expect(store.ping()).rejects.toThrow(StoreClosedError);
      });
    });

    describe('two instances (multi-instance)', () => {
      const sharedIt = it.skipIf(!options.shared);
      const note = options.shared ? '' : ' [skipped: instances of this store are not shared]';

      sharedIt(`see each other's values, counters and logs${note}`, async () => {
        const a = await open();
        const b = await open();
        const key = unique('shared');
        await a.set(key, 'from-a');
        expect(await b.get(key)).toBe('from-a');
        const counter = unique('shared-counter');
        await Promise.all(
          Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).incrBy(counter, 2)).map((p) =>
            p.then(() => {}),
          ),
        );
        expect(await a.get(counter)).toBe('100');
        const log = unique('shared-log');
        await a.append(log, [{ id: 1, data: 'x' }]);
        expect(await b.readAfter(log, 0)).toEqual([{ id: 1, data: 'x' }]);
      });

      sharedIt(`run scripts atomically across instances${note}`, async () => {
        const a = await open();
        const b = await open();
        a.defineScript(debitScript);
        b.defineScript(debitScript);
        const key = unique('shared-balance');
        await a.set(key, '150');
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            (i % 2 ? a : b).runScript<number>(debitScript.name, [key], [1]),
          ),
        );
        expect(results.filter((r) => r >= 0)).toHaveLength(150);
        expect(await b.get(key)).toBe('0');
      });

      sharedIt(`wake a blocking reader on the other instance${note}`, async () => {
        const a = await open();
        const b = await open();
        const log = unique('shared-log');
        const read = elapsed(b.readAfter(log, 0, { blockMs: 5000 }));
        await sleep(50);
        await a.append(log, [{ id: 1, data: 'cross' }]);
        const { value, ms } = await read;
        expect(value).toEqual([{ id: 1, data: 'cross' }]);
        expect(ms).toBeLessThan(1000);
      });

      sharedIt(`deliver pub/sub messages to every instance${note}`, async () => {
        const a = await open();
        const b = await open();
        const channel = unique('shared-chan');
        const atA: string[] = [];
        const atB: string[] = [];
        await a.subscribe(channel, (m) => atA.push(m));
        await b.subscribe(channel, (m) => atB.push(m));
        await a.publish(channel, 'from-a');
        await b.publish(channel, 'from-b');
        await waitFor(() => atA.length === 2 && atB.length === 2);
        expect(atA).toEqual(['from-a', 'from-b']);
        expect(atB).toEqual(['from-a', 'from-b']);
      });
    });
  });
}
