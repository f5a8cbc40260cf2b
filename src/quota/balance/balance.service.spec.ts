import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { TenantContext } from '../../common/context/request-context.js';
import type { AppConfig } from '../../config/app-config.js';
import { MemoryStore } from '../../store/memory.store.js';
import type { Store } from '../../store/store.port.js';
import type { TenantConfig } from '../../tenants/tenant-config.types.js';
import type { LedgerEntry, TokenLedgerService } from '../ledger/token-ledger.service.js';
import type { QuotaOptions } from '../quota-options.js';
import { fakeTenantConfigs, tenantConfig } from '../quota-test-kit.contract.js';
import { balanceKey } from './balance-keys.js';
import { BalanceService } from './balance.service.js';

/**
 * What the next runScript calls do: fail before running (`down`: the connection dropped; `offline`:
 * ioredis had no connection to send it on), or run and lose the reply (`lost`).
 */
type Fault = 'down' | 'offline' | 'lost';

/** A MemoryStore whose script calls can be made to fail, as Redis does in an outage. */
function faultyStore(inner: MemoryStore): { store: Store; faults: Fault[]; calls: () => number } {
  const faults: Fault[] = [];
  let calls = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'runScript') return Reflect.get(target, prop, receiver) as unknown;
      return async (name: string, keys: string[], args: (string | number)[]) => {
        calls++;
        const fault = faults.shift();
        if (fault === 'down') throw new Error('Connection is closed.');
        if (fault === 'offline')
          throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
        const reply: unknown = await target.runScript(name, keys, args);
        if (fault === 'lost') throw new Error('Connection lost before the reply');
        return reply;
      };
    },
  });
  return { store, faults, calls: () => calls };
}

const OPTIONS: Partial<QuotaOptions> = { settleRetryDelaysMs: [1, 1, 1] };
/** Long enough for the steps before a wait to finish on a busy machine. */
const SHORT_LEASE_MS = 200;

describe(BalanceService.name, () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  function setup(tenant: TenantConfig = tenantConfig(), maxReservationTokens = 1000) {
    const memory = new MemoryStore();
    stores.push(memory);
    const { store, faults, calls } = faultyStore(memory);
    const rows: LedgerEntry[] = [];
    const ledger = { record: (entry: LedgerEntry) => rows.push(entry) } as unknown as TokenLedgerService;
    const sut = new BalanceService(
      store,
      { maxReservationTokens } as AppConfig,
      fakeTenantConfigs(tenant),
      ledger,
      OPTIONS,
    );
    const ctx: TenantContext = {
      tenantId: tenant.id,
      userId: 'user-1',
      claims: { sub: 'user-1' },
      isAdmin: false,
    };
    const ledgerSum = () => rows.reduce((sum, row) => sum + row.delta, 0);
    /** Another instance on the same store and ledger, with its own lease length. */
    const instance = (reservationLeaseMs: number, reservationTtlMs?: number) => {
      const other = new BalanceService(
        memory,
        { maxReservationTokens } as AppConfig,
        fakeTenantConfigs(tenant),
        ledger,
        {
          ...OPTIONS,
          reservationLeaseMs,
          ...(reservationTtlMs === undefined ? {} : { reservationTtlMs }),
        },
      );
      instances.push(other);
      return other;
    };
    return { sut, memory, faults, calls, rows, ctx, tenant, ledgerSum, instance };
  }
  const instances: BalanceService[] = [];
  afterEach(() => {
    for (const each of instances.splice(0)) each.onModuleDestroy();
  });

  describe('leases', () => {
    it("refunds a dead instance's reservation once its lease runs out, with a ledger row", async () => {
      const { sut, ctx, tenant, rows, instance, ledgerSum } = setup();
      await sut.adjust(tenant.id, ctx.userId, 100);
      const dead = instance(SHORT_LEASE_MS);
      await dead.reserve(ctx, 10, 'c1');
      dead.onModuleDestroy(); // it stops renewing, as a process that died does
      expect(await sut.get(tenant.id, ctx.userId)).toBe(90);
      await sleep(SHORT_LEASE_MS + 50);
      expect(await sut.get(tenant.id, ctx.userId)).toBe(100);
      expect(rows.at(-1)).toEqual(
        expect.objectContaining({
          reason: 'release',
          completionId: 'c1',
          delta: 10,
          balanceAfter: 100,
          meta: { lease_expired: true },
        }),
      );
      expect(ledgerSum()).toBe(100);
    });

    it('keeps renewing the leases of the completions it runs', async () => {
      const { sut, ctx, tenant, instance } = setup();
      await sut.adjust(tenant.id, ctx.userId, 100);
      const alive = instance(SHORT_LEASE_MS);
      const reservation = await alive.reserve(ctx, 10, 'c1');
      await sleep(3 * SHORT_LEASE_MS);
      expect(await sut.get(tenant.id, ctx.userId)).toBe(90);
      expect(await alive.settle(reservation, 4)).toMatchObject({
        status: 'settled',
        charged: 4,
        balance: 96,
      });
    });

    it('stops renewing a reservation older than its lifetime, which then goes back to the balance', async () => {
      const { sut, ctx, tenant, instance } = setup();
      await sut.adjust(tenant.id, ctx.userId, 100);
      const leaky = instance(SHORT_LEASE_MS, 2 * SHORT_LEASE_MS);
      await leaky.reserve(ctx, 10, 'never-settled');
      await sleep(SHORT_LEASE_MS);
      expect(await sut.get(tenant.id, ctx.userId)).toBe(90);
      await sleep(3 * SHORT_LEASE_MS);
      expect(await sut.get(tenant.id, ctx.userId)).toBe(100);
    });

    it('charges the usage alone when the reservation was refunded before its settlement', async () => {
      const { sut, ctx, tenant, instance, ledgerSum } = setup();
      await sut.adjust(tenant.id, ctx.userId, 100);
      const cutOff = instance(SHORT_LEASE_MS);
      const reservation = await cutOff.reserve(ctx, 10, 'c1');
      cutOff.onModuleDestroy();
      await sleep(SHORT_LEASE_MS + 50);
      expect(await sut.get(tenant.id, ctx.userId)).toBe(100);
      expect(await cutOff.settle(reservation, 4)).toMatchObject({
        status: 'settled',
        charged: 4,
        balance: 96,
      });
      expect(ledgerSum()).toBe(96);
    });
  });

  it('reads a missing balance as 0', async () => {
    const { sut, tenant } = setup();
    expect(await sut.get(tenant.id, 'nobody')).toBe(0);
  });

  describe('adjust', () => {
    it('adds and deducts, recording who and why', async () => {
      const { sut, tenant, rows } = setup();
      expect(await sut.adjust(tenant.id, 'u', 100, 'welcome', 'admin-token')).toBe(100);
      expect(await sut.adjust(tenant.id, 'u', -30)).toBe(70);
      expect(rows).toEqual([
        expect.objectContaining({
          reason: 'admin_adjustment',
          delta: 100,
          balanceAfter: 100,
          actor: 'admin-token',
          note: 'welcome',
        }),
        expect.objectContaining({
          reason: 'admin_adjustment',
          delta: -30,
          balanceAfter: 70,
          actor: null,
          note: null,
        }),
      ]);
    });

    it('stops a deduction at zero and records the shortfall', async () => {
      const { sut, tenant, rows } = setup();
      await sut.adjust(tenant.id, 'u', 50);
      expect(await sut.adjust(tenant.id, 'u', -80, 'refund', 'ops')).toBe(0);
      expect(rows.slice(1)).toEqual([
        expect.objectContaining({
          reason: 'admin_adjustment',
          delta: -50,
          balanceAfter: 0,
          meta: { requested: -80 },
        }),
        expect.objectContaining({
          reason: 'shortfall',
          delta: 0,
          balanceAfter: 0,
          shortfall: 30,
          actor: 'ops',
        }),
      ]);
    });

    it('refuses a delta that is not an integer', async () => {
      const { sut, tenant } = setup();
      await expect(sut.adjust(tenant.id, 'u', 2.5)).rejects.toMatchObject({ status: 400, param: 'delta' });
    });

    it('answers 503 while the store is unreachable', async () => {
      const { sut, tenant, faults } = setup();
      faults.push('down');
      await expect(sut.adjust(tenant.id, 'u', 5)).rejects.toMatchObject({
        status: 503,
        code: 'service_unavailable',
      });
    });
  });

  describe('reserve', () => {
    it('answers 429 insufficient_tokens below 1 token, and reserves nothing', async () => {
      const { sut, ctx, rows } = setup();
      await expect(sut.reserve(ctx, 10, 'c1')).rejects.toMatchObject({
        status: 429,
        code: 'insufficient_tokens',
        message: 'Insufficient tokens',
      });
      expect(rows).toEqual([]);
    });

    it.each([
      { balance: 5000, estimate: 300, reserved: 300, asked: 300 },
      { balance: 5000, estimate: 99_999, reserved: 1000, asked: 1000 }, // capped at MAX_RESERVATION_TOKENS
      { balance: 120, estimate: 300, reserved: 120, asked: 300 }, // what is left
      { balance: 1, estimate: 300, reserved: 1, asked: 300 },
      { balance: 50, estimate: 0, reserved: 1, asked: 1 },
      { balance: 50, estimate: 12.2, reserved: 13, asked: 13 },
    ])(
      'balance $balance, estimate $estimate: reserves $reserved',
      async ({ balance, estimate, reserved, asked }) => {
        const { sut, ctx, rows } = setup();
        await sut.adjust(ctx.tenantId, ctx.userId, balance);
        expect(await sut.reserve(ctx, estimate, 'c1')).toEqual({
          id: 'c1',
          tenantId: ctx.tenantId,
          userId: ctx.userId,
          reserved,
          estimate: asked,
          enforced: true,
        });
        expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(balance - reserved);
        expect(rows[1]).toMatchObject({ reason: 'reservation', delta: -reserved, completionId: 'c1' });
      },
    );

    it('does nothing, without a store call, when the tenant has no token quota', async () => {
      const { sut, ctx, faults } = setup(tenantConfig({ settings: { token_quota: false } }));
      faults.push('down');
      const reservation = await sut.reserve(ctx, 100, 'c1');
      expect(reservation).toMatchObject({ reserved: 0, enforced: false });
      expect(await sut.settle(reservation, 500)).toMatchObject({ status: 'not_enforced' });
      expect(await sut.release(reservation)).toMatchObject({ status: 'not_enforced' });
    });

    it('answers 503 while the store is unreachable', async () => {
      const { sut, ctx, faults } = setup();
      await sut.adjust(ctx.tenantId, ctx.userId, 100);
      faults.push('down', 'down');
      await expect(sut.reserve(ctx, 10, 'c1')).rejects.toMatchObject({ status: 503 });
      await sleep(20); // the background roll-back finds nothing to undo
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(100);
    });

    it('does not try to roll back what surely never reached the store', async () => {
      const { sut, ctx, faults, calls } = setup();
      await sut.adjust(ctx.tenantId, ctx.userId, 100);
      faults.push('offline');
      await expect(sut.reserve(ctx, 10, 'c1')).rejects.toMatchObject({ status: 503 });
      await sleep(20);
      expect(calls()).toBe(2); // the top-up and the failed reserve
    });

    it('rolls back a reservation whose reply was lost, with both ledger rows', async () => {
      const { sut, ctx, faults, rows, ledgerSum } = setup();
      await sut.adjust(ctx.tenantId, ctx.userId, 100);
      faults.push('lost');
      await expect(sut.reserve(ctx, 10, 'c1')).rejects.toMatchObject({ status: 503 });
      await expect.poll(() => sut.get(ctx.tenantId, ctx.userId)).toBe(100);
      await expect.poll(() => rows.length).toBe(3);
      expect(rows.slice(1)).toEqual([
        expect.objectContaining({ reason: 'reservation', delta: -10, balanceAfter: 90 }),
        expect.objectContaining({ reason: 'release', delta: 10, balanceAfter: 100 }),
      ]);
      expect(ledgerSum()).toBe(100);
    });
  });

  describe('extend', () => {
    async function reserved(balance: number, estimate: number) {
      const s = setup();
      await s.sut.adjust(s.ctx.tenantId, s.ctx.userId, balance);
      const reservation = await s.sut.reserve(s.ctx, estimate, 'c1');
      return { ...s, reservation };
    }

    it('reserves the difference to a larger estimate, and settles against the whole', async () => {
      const { sut, reservation, rows, ctx, ledgerSum } = await reserved(1000, 100);
      const extended = await sut.extend(reservation, 250);
      expect(extended).toMatchObject({ reserved: 250, estimate: 250, enforced: true });
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(750);
      expect(rows[2]).toMatchObject({
        reason: 'reservation',
        delta: -150,
        balanceAfter: 750,
        completionId: 'c1',
      });
      expect(await sut.settle(extended, 200)).toMatchObject({
        status: 'settled',
        charged: 200,
        balance: 800,
      });
      expect(ledgerSum()).toBe(800);
    });

    it.each([
      { name: 'a smaller estimate', balance: 1000, first: 100, then: 80, reserved: 100, after: 900 },
      { name: 'up to the cap only', balance: 5000, first: 900, then: 99_999, reserved: 1000, after: 4000 },
      { name: 'what is left', balance: 150, first: 100, then: 300, reserved: 150, after: 0 },
      { name: 'nothing left', balance: 100, first: 100, then: 300, reserved: 100, after: 0 },
    ])('$name', async ({ balance, first, then, reserved: total, after }) => {
      const { sut, reservation, ctx, ledgerSum } = await reserved(balance, first);
      const extended = await sut.extend(reservation, then);
      expect(extended.reserved).toBe(total);
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(after);
      expect(ledgerSum()).toBe(after);
      expect(await sut.settle(extended, 0)).toMatchObject({ status: 'settled', balance });
      expect(ledgerSum()).toBe(balance);
    });

    it('does nothing for a reservation that is settled, or not enforced', async () => {
      const { sut, reservation, ctx } = await reserved(1000, 100);
      await sut.settle(reservation, 10);
      expect(await sut.extend(reservation, 500)).toEqual(reservation);
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(990);
      const free = setup(tenantConfig({ settings: { token_quota: false } }));
      const none = await free.sut.reserve(free.ctx, 100, 'c2');
      expect(await free.sut.extend(none, 500)).toEqual(none);
    });

    it('goes ahead with the first reservation when the store fails, never rejecting', async () => {
      const { sut, reservation, faults, ctx } = await reserved(1000, 100);
      faults.push('down');
      expect(await sut.extend(reservation, 300)).toEqual(reservation);
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(900);
    });

    it('records an extension whose reply was lost when it settles', async () => {
      const { sut, reservation, faults, rows, ctx, ledgerSum } = await reserved(1000, 100);
      faults.push('lost');
      const extended = await sut.extend(reservation, 300);
      expect(extended).toEqual(reservation);
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(700);
      expect(await sut.settle(extended, 120)).toMatchObject({
        status: 'settled',
        charged: 120,
        balance: 880,
      });
      expect(rows.filter((r) => r.reason === 'reservation').map((r) => r.delta)).toEqual([-100, -200]);
      expect(ledgerSum()).toBe(880);
    });
  });

  describe('settle and release', () => {
    async function reserved(balance: number, estimate: number) {
      const s = setup();
      await s.sut.adjust(s.ctx.tenantId, s.ctx.userId, balance);
      const reservation = await s.sut.reserve(s.ctx, estimate, 'c1');
      return { ...s, reservation };
    }

    it.each([
      { name: 'exact', balance: 100, estimate: 10, actual: 10, charged: 10, after: 90, shortfall: 0 },
      { name: 'refund', balance: 100, estimate: 10, actual: 4, charged: 4, after: 96, shortfall: 0 },
      { name: 'extra', balance: 100, estimate: 10, actual: 25, charged: 25, after: 75, shortfall: 0 },
      { name: 'extra, clamped', balance: 30, estimate: 10, actual: 45, charged: 30, after: 0, shortfall: 15 },
    ])('$name', async ({ balance, estimate, actual, charged, after, shortfall }) => {
      const { sut, reservation, rows, ledgerSum, ctx } = await reserved(balance, estimate);
      expect(await sut.settle(reservation, actual, { model: 'm' })).toEqual({
        status: 'settled',
        charged,
        shortfall,
        balance: after,
      });
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(after);
      expect(rows[2]).toMatchObject({
        reason: 'settlement',
        balanceAfter: after,
        completionId: 'c1',
        meta: { model: 'm', reserved: estimate, actual },
      });
      if (shortfall > 0) expect(rows[3]).toMatchObject({ reason: 'shortfall', delta: 0, shortfall });
      else expect(rows).toHaveLength(3);
      expect(ledgerSum()).toBe(after);
    });

    it('release refunds everything', async () => {
      const { sut, reservation, ctx, ledgerSum } = await reserved(100, 40);
      expect(await sut.release(reservation)).toEqual({
        status: 'settled',
        charged: 0,
        shortfall: 0,
        balance: 100,
      });
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(100);
      expect(ledgerSum()).toBe(100);
    });

    it('is idempotent: settling twice, or releasing after settling, changes nothing', async () => {
      const { sut, reservation, rows, ctx } = await reserved(100, 10);
      await sut.settle(reservation, 7);
      expect(await sut.settle(reservation, 7)).toMatchObject({ status: 'already_settled' });
      expect(await sut.release(reservation)).toMatchObject({ status: 'already_settled' });
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(93);
      expect(rows).toHaveLength(3);
    });

    it('retries through an outage and records a lost reply exactly once', async () => {
      const { sut, reservation, faults, rows, ctx, ledgerSum } = await reserved(100, 10);
      faults.push('down', 'lost');
      expect(await sut.settle(reservation, 3)).toMatchObject({ status: 'settled', balance: 97 });
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(97);
      expect(rows.filter((r) => r.reason === 'settlement')).toHaveLength(1);
      expect(ledgerSum()).toBe(97);
    });

    it('gives up after the retries, leaving the reservation charged', async () => {
      const { sut, reservation, faults, ctx } = await reserved(100, 10);
      faults.push('down', 'down', 'down', 'down');
      expect(await sut.settle(reservation, 3)).toMatchObject({ status: 'failed', charged: 10 });
      expect(await sut.get(ctx.tenantId, ctx.userId)).toBe(90);
      // Once the store is back, a later settle still works.
      expect(await sut.settle(reservation, 3)).toMatchObject({ status: 'settled', balance: 97 });
    });

    it('reports a reservation that is gone (expired)', async () => {
      const { sut, reservation, memory, ctx } = await reserved(100, 10);
      await memory.del(`quota:reservation:${ctx.tenantId}:c1`);
      expect(await sut.settle(reservation, 3)).toMatchObject({ status: 'not_found' });
      expect(await memory.get(balanceKey(ctx.tenantId, ctx.userId))).toBe('90');
    });

    it('charges the reservation when the usage is not a number', async () => {
      const { sut, reservation } = await reserved(100, 10);
      expect(await sut.settle(reservation, Number.NaN)).toMatchObject({ status: 'settled', charged: 10 });
    });
  });
});
