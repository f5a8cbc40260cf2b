import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppConfig } from '../../config/app-config.js';
import { MemoryStore } from '../../store/memory.store.js';
import type { Store } from '../../store/store.port.js';
import type { TenantConfig } from '../../tenants/tenant-config.types.js';
import type { TokenLedgerService } from '../ledger/token-ledger.service.js';
import { fakeHttp, fakeTenantConfigs, tenantConfig, unreachableStore } from '../quota-test-kit.contract.js';
import { balanceKey } from './balance-keys.js';
import { BalanceService } from './balance.service.js';
import { TokenBalanceGuard } from './token-balance.guard.js';

describe(TokenBalanceGuard.name, () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  function setup(tenant: TenantConfig, store: Store = new MemoryStore()) {
    if (store instanceof MemoryStore) stores.push(store);
    const tenants = fakeTenantConfigs(tenant);
    const ledger = { record: () => undefined } as unknown as TokenLedgerService;
    const balances = new BalanceService(store, { maxReservationTokens: 1000 } as AppConfig, tenants, ledger);
    return { store, ledger, tenants, sut: new TokenBalanceGuard(balances, tenants) };
  }

  it('answers 429 insufficient_tokens when the balance is below 1', async () => {
    const tenant = tenantConfig();
    const { sut } = setup(tenant);
    await expect(sut.canActivate(fakeHttp(tenant).context)).rejects.toMatchObject({
      status: 429,
      code: 'insufficient_tokens',
      message: 'Insufficient tokens',
    });
  });

  it('lets a user with at least 1 token through', async () => {
    const tenant = tenantConfig();
    const { sut, store } = setup(tenant);
    await store.set(balanceKey(tenant.id, 'user-1'), '1');
    await expect(sut.canActivate(fakeHttp(tenant).context)).resolves.toBe(true);
  });

  it('uses a positive balance the rate limit guard read, without a store call', async () => {
    const tenant = tenantConfig();
    const { sut } = setup(tenant, unreachableStore());
    const rich = fakeHttp(tenant);
    rich.req.parleyBalance = 5;
    await expect(sut.canActivate(rich.context)).resolves.toBe(true);
  });

  it('reads an empty balance again, refunding the expired leases of an instance that died', async () => {
    const tenant = tenantConfig();
    const { sut, store, ledger, tenants } = setup(tenant);
    await store.set(balanceKey(tenant.id, 'user-1'), '10');
    const dead = new BalanceService(store, { maxReservationTokens: 1000 } as AppConfig, tenants, ledger, {
      reservationLeaseMs: 200,
    });
    await dead.reserve(
      { tenantId: tenant.id, userId: 'user-1', claims: { sub: 'user-1' }, isAdmin: false },
      50,
      'c1',
    );
    dead.onModuleDestroy();
    const peeked = fakeHttp(tenant);
    peeked.req.parleyBalance = 0;
    await expect(sut.canActivate(peeked.context)).rejects.toMatchObject({ code: 'insufficient_tokens' });
    await sleep(250);
    await expect(sut.canActivate(peeked.context)).resolves.toBe(true);
  });

  it('lets everyone through at once when the tenant has no token quota', async () => {
    const tenant = tenantConfig({ settings: { token_quota: false } });
    const { sut } = setup(tenant, unreachableStore());
    await expect(sut.canActivate(fakeHttp(tenant).context)).resolves.toBe(true);
  });

  it('fails closed with 503 while the store is unreachable', async () => {
    const tenant = tenantConfig();
    const { sut } = setup(tenant, unreachableStore());
    await expect(sut.canActivate(fakeHttp(tenant).context)).rejects.toMatchObject({
      status: 503,
      code: 'service_unavailable',
    });
  });
});
