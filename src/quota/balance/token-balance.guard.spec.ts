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
    return { store, sut: new TokenBalanceGuard(balances, tenants) };
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

  it('uses the balance the rate limit guard read, without a store call', async () => {
    const tenant = tenantConfig();
    const { sut } = setup(tenant, unreachableStore());
    const rich = fakeHttp(tenant);
    rich.req.parleyBalance = 5;
    await expect(sut.canActivate(rich.context)).resolves.toBe(true);
    const poor = fakeHttp(tenant);
    poor.req.parleyBalance = 0;
    await expect(sut.canActivate(poor.context)).rejects.toMatchObject({ code: 'insufficient_tokens' });
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
