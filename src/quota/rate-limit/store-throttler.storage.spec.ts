import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../store/store.port.js';
import { storesUnderTest } from '../quota-test-kit.contract.js';
import { StoreThrottlerStorage } from './store-throttler.storage.js';

const stores = (await storesUnderTest()).filter((s) => s.available);

describe.each(stores)(`${StoreThrottlerStorage.name} on $name`, (under) => {
  let store: Store;
  let sut: StoreThrottlerStorage;

  beforeAll(async () => {
    store = await under.make();
    sut = new StoreThrottlerStorage(store);
  }, 10_000);
  afterAll(() => under.cleanup());

  const key = () => `tenant-${randomUUID()}`;

  it('counts hits in a window and reports the time left', async () => {
    const k = key();
    const first = await sut.hit(k, 60_000);
    expect(first.hits).toBe(1);
    expect(first.resetMs).toBeGreaterThan(59_000);
    expect(first.resetMs).toBeLessThanOrEqual(60_000);
    await sleep(20);
    const second = await sut.hit(k, 60_000);
    expect(second.hits).toBe(2);
    // A fixed window: the second hit does not push the end further.
    expect(second.resetMs).toBeLessThan(first.resetMs);
  });

  it('starts a new window once the old one ended', async () => {
    const k = key();
    await sut.hit(k, 60);
    await sut.hit(k, 60);
    await sleep(120);
    expect((await sut.hit(k, 60)).hits).toBe(1);
  });

  it('keeps separate counters per key and per window length', async () => {
    const k = key();
    await sut.hit(k, 60_000);
    expect((await sut.hit(key(), 60_000)).hits).toBe(1);
    expect((await sut.hit(k, 30_000)).hits).toBe(1);
  });

  it('repairs a counter that lost its TTL', async () => {
    const k = key();
    await store.set(`ratelimit:${k}:1000`, '5');
    const hit = await sut.hit(k, 1000);
    expect(hit.hits).toBe(6);
    expect(hit.resetMs).toBeGreaterThan(0);
    expect(hit.resetMs).toBeLessThanOrEqual(1000);
  });

  it('reads another counter in the same round trip (missing = 0)', async () => {
    const k = key();
    expect((await sut.hitAndPeek(k, 60_000, `other-${k}`)).peeked).toBe(0);
    await store.set(`other-${k}`, '42');
    expect(await sut.hitAndPeek(k, 60_000, `other-${k}`)).toMatchObject({ hits: 2, peeked: 42 });
  });

  it('gives every concurrent hit its own count', async () => {
    const k = key();
    const hits = await Promise.all(Array.from({ length: 100 }, () => sut.hit(k, 60_000)));
    expect(hits.map((h) => h.hits).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });

  it('implements ThrottlerStorage.increment (times in seconds, blocked over the limit)', async () => {
    const k = key();
    expect(await sut.increment(k, 10_000, 2, 10_000, 'default')).toEqual({
      totalHits: 1,
      timeToExpire: 10,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    await sut.increment(k, 10_000, 2, 10_000, 'default');
    expect(await sut.increment(k, 10_000, 2, 10_000, 'default')).toMatchObject({
      totalHits: 3,
      isBlocked: true,
      timeToBlockExpire: 10,
    });
  });

  it('refuses a window below 1 ms', async () => {
    await expect(sut.hit(key(), 0)).rejects.toThrow(RangeError);
  });
});
