import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store, StoreScript } from '../../store/store.port.js';
import { storesUnderTest } from '../quota-test-kit.contract.js';
import { balanceKey, openReservationsKey, reservationKey } from './balance-keys.js';
import {
  adjustScript,
  BALANCE_SCRIPTS,
  extendScript,
  reclaimScript,
  renewScript,
  reserveScript,
  settleScript,
  type AdjustReply,
  type ExtendReply,
  type ReclaimReply,
  type ReserveReply,
  type SettleReply,
} from './balance.scripts.js';

const RESERVATION_TTL_MS = 60_000;
const SETTLED_TTL_MS = 30_000;
const LEASE_MS = 60_000;
/** Long enough for the steps before the wait to finish on a busy machine. */
const SHORT_LEASE_MS = 200;

const stores = (await storesUnderTest()).filter((s) => s.available);

/** Not a quota script: reads a hash for the assertions. */
const hgetallScript: StoreScript<string[]> = {
  name: 'quota_test_hgetall',
  numberOfKeys: 1,
  lua: `return redis.call('HGETALL', KEYS[1])`,
  local: (kv, [key]) => kv.hgetall(key),
};

/** Not a quota script: reads a key's PTTL for the assertions. */
const pttlScript: StoreScript<number> = {
  name: 'quota_test_pttl',
  numberOfKeys: 1,
  lua: `return redis.call('PTTL', KEYS[1])`,
  local: (kv, [key]) => kv.pttl(key),
};

// The same table runs on the Lua body (Redis) and the `local` body (MemoryStore).
describe.each(stores)('balance scripts on $name', (under) => {
  let store: Store;

  beforeAll(async () => {
    store = await under.make();
    for (const script of [...BALANCE_SCRIPTS, pttlScript, hgetallScript]) store.defineScript(script);
  }, 10_000);
  afterAll(() => under.cleanup());

  /** A fresh (tenant, user) with `balance` tokens (undefined: no key at all). */
  async function account(balance: number | undefined) {
    const tenantId = `t${randomUUID().slice(0, 8)}`;
    const userId = `user:${randomUUID()}`; // a colon in the user id changes nothing
    const bKey = balanceKey(tenantId, userId);
    if (balance !== undefined) await store.set(bKey, String(balance));
    const openKey = openReservationsKey(tenantId, userId);
    const balanceNow = async () => Number((await store.get(bKey)) ?? '0');
    const reserve = (completionId: string, amount: number, leaseMs = LEASE_MS) =>
      store.runScript<ReserveReply>(
        reserveScript.name,
        [bKey, reservationKey(tenantId, completionId), openKey],
        [amount, RESERVATION_TTL_MS, leaseMs, completionId],
      );
    const settle = (completionId: string, actual: number, attempt: string = randomUUID()) =>
      store.runScript<SettleReply>(
        settleScript.name,
        [bKey, reservationKey(tenantId, completionId), openKey],
        [actual, attempt, SETTLED_TTL_MS, completionId],
      );
    const adjust = (delta: number) => store.runScript<AdjustReply>(adjustScript.name, [bKey], [delta]);
    const extend = (completionId: string, extra: number) =>
      store.runScript<ExtendReply>(
        extendScript.name,
        [bKey, reservationKey(tenantId, completionId), openKey],
        [extra, RESERVATION_TTL_MS, completionId],
      );
    const renew = (leaseMs: number, ...completionIds: string[]) =>
      store.runScript<number>(renewScript.name, [openKey], [leaseMs, ...completionIds]);
    const reclaim = () => store.runScript<ReclaimReply>(reclaimScript.name, [bKey, openKey], []);
    /** The open reservations' amounts by completion id. */
    const listed = async () => {
      const fields = await store.runScript<string[]>(hgetallScript.name, [openKey], []);
      const amounts: Record<string, number> = {};
      for (let i = 0; i < fields.length; i += 2) {
        if (fields[i] !== '~next') amounts[fields[i]] = Number(fields[i + 1].split(',')[0]);
      }
      return amounts;
    };
    return { tenantId, bKey, balanceNow, reserve, settle, adjust, extend, renew, reclaim, listed };
  }

  describe('reserve', () => {
    it.each([
      { balance: undefined, amount: 10, reply: [0, 0, 0, 0] },
      { balance: 0, amount: 10, reply: [0, 0, 0, 0] },
      { balance: 100, amount: 10, reply: [1, 10, 90, 100] },
      { balance: 10, amount: 10, reply: [1, 10, 0, 10] },
      { balance: 5, amount: 10, reply: [1, 5, 0, 5] },
      { balance: 1, amount: 32768, reply: [1, 1, 0, 1] },
    ])('balance $balance, amount $amount -> $reply', async ({ balance, amount, reply }) => {
      const a = await account(balance);
      expect(await a.reserve('c1', amount)).toEqual(reply);
      expect(await a.balanceNow()).toBe(reply[2]);
    });

    it('records the reservation with its TTL', async () => {
      const a = await account(100);
      await a.reserve('c1', 10);
      const [value, pttl] = await Promise.all([
        store.get(reservationKey(a.tenantId, 'c1')),
        store.runScript<number>(pttlScript.name, [reservationKey(a.tenantId, 'c1')], []),
      ]);
      expect(value).toBe('R|10|90');
      expect(pttl).toBeGreaterThan(RESERVATION_TTL_MS - 5000);
      expect(pttl).toBeLessThanOrEqual(RESERVATION_TTL_MS);
    });

    it('never reserves twice for one completion', async () => {
      const a = await account(100);
      await a.reserve('c1', 10);
      expect(await a.reserve('c1', 10)).toEqual([2, 0, 90, 90]);
      expect(await a.balanceNow()).toBe(90);
    });
  });

  describe('extend', () => {
    it.each([
      { balance: 100, amount: 10, extra: 20, reply: [1, 20, 30, 70] },
      { balance: 25, amount: 10, extra: 20, reply: [1, 15, 25, 0] },
      { balance: 10, amount: 10, extra: 20, reply: [1, 0, 10, 0] },
    ])(
      'balance $balance, reserved $amount, extra $extra -> $reply',
      async ({ balance, amount, extra, reply }) => {
        const a = await account(balance);
        await a.reserve('c1', amount);
        expect(await a.extend('c1', extra)).toEqual(reply);
        expect(await a.balanceNow()).toBe(reply[3]);
        expect(await store.get(reservationKey(a.tenantId, 'c1'))).toBe(`R|${reply[2]}|${reply[3]}`);
        // Settling charges against the whole reservation.
        expect(await a.settle('c1', 0)).toEqual([1, reply[2], reply[2], balance, 0, reply[3]]);
      },
    );

    it('keeps the reservation TTL', async () => {
      const a = await account(100);
      await a.reserve('c1', 10);
      await a.extend('c1', 5);
      const pttl = await store.runScript<number>(pttlScript.name, [reservationKey(a.tenantId, 'c1')], []);
      expect(pttl).toBeGreaterThan(RESERVATION_TTL_MS - 5000);
      expect(pttl).toBeLessThanOrEqual(RESERVATION_TTL_MS);
    });

    it('does nothing without an open reservation (none, or settled)', async () => {
      const a = await account(100);
      expect(await a.extend('nope', 5)).toEqual([0, 0, 0, 0]);
      await a.reserve('c1', 10);
      await a.settle('c1', 10);
      expect(await a.extend('c1', 5)).toEqual([0, 0, 0, 0]);
      expect(await a.balanceNow()).toBe(90);
      expect(await store.get(reservationKey(a.tenantId, 'nope'))).toBeNull();
    });
  });

  describe('settle and release', () => {
    it.each([
      {
        name: 'exact',
        balance: 100,
        amount: 10,
        actual: 10,
        reserved: 10,
        delta: 0,
        after: 90,
        shortfall: 0,
      },
      {
        name: 'refund',
        balance: 100,
        amount: 10,
        actual: 3,
        reserved: 10,
        delta: 7,
        after: 97,
        shortfall: 0,
      },
      {
        name: 'release',
        balance: 100,
        amount: 10,
        actual: 0,
        reserved: 10,
        delta: 10,
        after: 100,
        shortfall: 0,
      },
      {
        name: 'extra',
        balance: 100,
        amount: 10,
        actual: 15,
        reserved: 10,
        delta: -5,
        after: 85,
        shortfall: 0,
      },
      {
        name: 'extra clamped',
        balance: 12,
        amount: 10,
        actual: 15,
        reserved: 10,
        delta: -2,
        after: 0,
        shortfall: 3,
      },
      {
        name: 'extra at zero',
        balance: 10,
        amount: 10,
        actual: 25,
        reserved: 10,
        delta: 0,
        after: 0,
        shortfall: 15,
      },
      {
        name: 'partial reservation',
        balance: 5,
        amount: 10,
        actual: 4,
        reserved: 5,
        delta: 1,
        after: 1,
        shortfall: 0,
      },
      {
        name: 'partial, over',
        balance: 5,
        amount: 10,
        actual: 9,
        reserved: 5,
        delta: 0,
        after: 0,
        shortfall: 4,
      },
    ])('$name', async ({ balance, amount, actual, reserved, delta, after, shortfall }) => {
      const a = await account(balance);
      const [, , afterReserve] = await a.reserve('c1', amount);
      expect(await a.settle('c1', actual)).toEqual([1, reserved, delta, after, shortfall, afterReserve]);
      expect(await a.balanceNow()).toBe(after);
      // The ledger's view: the deltas sum to the balance change.
      expect(balance - reserved + delta).toBe(after);
    });

    it('settles once: a second settle or a release afterwards changes nothing', async () => {
      const a = await account(100);
      await a.reserve('c1', 10);
      expect(await a.settle('c1', 4)).toEqual([1, 10, 6, 96, 0, 90]);
      expect(await a.settle('c1', 4)).toEqual([2]);
      expect(await a.settle('c1', 0)).toEqual([2]);
      expect(await a.balanceNow()).toBe(96);
    });

    it('gives the same attempt its outcome again (a retry after a lost reply) without applying it twice', async () => {
      const a = await account(100);
      await a.reserve('c1', 10);
      const attempt = randomUUID();
      const first = await a.settle('c1', 30, attempt);
      expect(first).toEqual([1, 10, -20, 70, 0, 90]);
      expect(await a.settle('c1', 30, attempt)).toEqual(first);
      expect(await a.balanceNow()).toBe(70);
    });

    it('keeps the tombstone for the settled TTL', async () => {
      const a = await account(100);
      await a.reserve('c1', 10);
      await a.settle('c1', 10, 'attempt-1');
      const key = reservationKey(a.tenantId, 'c1');
      expect(await store.get(key)).toBe('S|attempt-1|10|0|90|0|90');
      const pttl = await store.runScript<number>(pttlScript.name, [key], []);
      expect(pttl).toBeGreaterThan(SETTLED_TTL_MS - 5000);
      expect(pttl).toBeLessThanOrEqual(SETTLED_TTL_MS);
    });

    it('does nothing without a reservation (expired, or never made)', async () => {
      const a = await account(100);
      expect(await a.settle('nope', 10)).toEqual([0]);
      expect(await a.balanceNow()).toBe(100);
    });

    it('keeps other changes made meanwhile (an admin top-up between reserve and settle)', async () => {
      const a = await account(10);
      await a.reserve('c1', 10);
      await a.adjust(50);
      expect(await a.settle('c1', 20)).toEqual([1, 10, -10, 40, 0, 0]);
      expect(await a.balanceNow()).toBe(40);
    });
  });

  describe('leases', () => {
    it('lists an open reservation with its lease until it is settled', async () => {
      const a = await account(100);
      await a.reserve('c1', 10);
      await a.reserve('c2', 20);
      expect(await a.listed()).toEqual({ c1: 10, c2: 20 });
      await a.settle('c1', 3);
      expect(await a.listed()).toEqual({ c2: 20 });
      await a.settle('c2', 3);
      expect(await a.listed()).toEqual({});
    });

    it('refunds an expired lease at the next reservation; the late settle charges the usage alone', async () => {
      const a = await account(100);
      await a.reserve('c1', 10, 1);
      await sleep(10);
      expect(await a.reserve('c2', 10)).toEqual([1, 10, 90, 100, 'c1', 10]);
      expect(await a.balanceNow()).toBe(90);
      // c1's instance was alive after all: its usage is charged, its reservation was refunded already.
      expect(await a.settle('c1', 4)).toEqual([1, 0, -4, 86, 0, 90]);
      expect(await a.balanceNow()).toBe(86);
      expect(await a.listed()).toEqual({ c2: 10 });
    });

    it('refunds expired leases when the balance is read', async () => {
      const a = await account(100);
      await a.reserve('c1', 10, SHORT_LEASE_MS);
      await a.reserve('c2', 30, SHORT_LEASE_MS);
      await a.reserve('c3', 5);
      await sleep(SHORT_LEASE_MS + 50);
      expect(await a.reclaim()).toEqual([95, 'c1', 10, 'c2', 30]);
      expect(await a.reclaim()).toEqual([95]);
      expect(await a.listed()).toEqual({ c3: 5 });
    });

    it('keeps a renewed lease open', async () => {
      const a = await account(100);
      await a.reserve('c1', 10, SHORT_LEASE_MS);
      await a.reserve('c2', 10, SHORT_LEASE_MS);
      expect(await a.renew(LEASE_MS, 'c1', 'other')).toBe(1);
      await sleep(SHORT_LEASE_MS + 50);
      expect(await a.reclaim()).toEqual([90, 'c2', 10]);
      expect(await a.renew(LEASE_MS, 'c2')).toBe(0);
    });

    it('refunds what an extension added too, and extends nothing once refunded', async () => {
      const a = await account(100);
      await a.reserve('c1', 10, SHORT_LEASE_MS);
      await a.extend('c1', 5);
      expect(await a.listed()).toEqual({ c1: 15 });
      await sleep(SHORT_LEASE_MS + 50);
      expect(await a.reclaim()).toEqual([100, 'c1', 15]);
      expect(await a.extend('c1', 5)).toEqual([0, 0, 0, 0]);
      expect(await a.balanceNow()).toBe(100);
    });
  });

  describe('adjust', () => {
    it.each([
      { balance: undefined, delta: 100, reply: [100, 100, 0] },
      { balance: 100, delta: -30, reply: [-30, 70, 0] },
      { balance: 50, delta: -80, reply: [-50, 0, 30] },
      { balance: 0, delta: -5, reply: [0, 0, 5] },
      { balance: 7, delta: 0, reply: [0, 7, 0] },
      { balance: 1_000_000_000_000, delta: 1_000_000_000_000, reply: [1e12, 2e12, 0] },
    ])('balance $balance, delta $delta -> $reply', async ({ balance, delta, reply }) => {
      const a = await account(balance);
      expect(await a.adjust(delta)).toEqual(reply);
      expect(await a.balanceNow()).toBe(reply[1]);
    });

    it('rejects a delta that is not an integer', async () => {
      const a = await account(10);
      await expect(a.adjust(1.5)).rejects.toThrow();
      expect(await a.balanceNow()).toBe(10);
    });
  });

  it('never lets concurrent reservations spend more than the balance', async () => {
    const a = await account(1000);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => a.reserve(`c${i}`, 100)));
    expect(replies.filter(([status]) => status === 1)).toHaveLength(10);
    expect(replies.filter(([status]) => status === 0)).toHaveLength(40);
    expect(await a.balanceNow()).toBe(0);
  });
});
