import { afterEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../../common/errors/parley-error.js';
import { MemoryStore } from '../../store/memory.store.js';
import { balanceKey } from '../balance/balance-keys.js';
import { fakeHttp, fakeTenantConfigs, tenantConfig, unreachableStore } from '../quota-test-kit.contract.js';
import { StoreThrottlerStorage } from './store-throttler.storage.js';
import { TenantRateLimitGuard } from './tenant-rate-limit.guard.js';

async function rejection(promise: Promise<unknown>): Promise<ParleyError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ParleyError);
  return err as ParleyError;
}

describe(TenantRateLimitGuard.name, () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  function setup(...tenants: ReturnType<typeof tenantConfig>[]) {
    const store = new MemoryStore();
    stores.push(store);
    const sut = new TenantRateLimitGuard(new StoreThrottlerStorage(store), fakeTenantConfigs(...tenants));
    return { store, sut };
  }

  it('lets requests through up to the limit, with the x-ratelimit headers', async () => {
    const tenant = tenantConfig({ rateLimit: { requests: 3, windowS: 60 } });
    const { sut } = setup(tenant);
    for (const remaining of [2, 1, 0]) {
      const http = fakeHttp(tenant);
      await expect(sut.canActivate(http.context)).resolves.toBe(true);
      expect(http.headers['x-ratelimit-limit-requests']).toBe('3');
      expect(http.headers['x-ratelimit-remaining-requests']).toBe(String(remaining));
      expect(http.headers['x-ratelimit-reset-requests']).toMatch(/^(59\.\d+s|1m0s)$/);
    }
  });

  it('answers 429 rate_limit_exceeded with Retry-After over the limit, headers included', async () => {
    const tenant = tenantConfig({ rateLimit: { requests: 1, windowS: 30 } });
    const { sut } = setup(tenant);
    await sut.canActivate(fakeHttp(tenant).context);
    const http = fakeHttp(tenant);
    const err = await rejection(sut.canActivate(http.context));
    expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded', message: 'Rate limit exceeded' });
    expect(err.headers['Retry-After']).toBe('30');
    expect(http.headers).toMatchObject({
      'x-ratelimit-limit-requests': '1',
      'x-ratelimit-remaining-requests': '0',
    });
  });

  it('limits the tenant as a whole, not each user, and each tenant apart', async () => {
    const a = tenantConfig({ rateLimit: { requests: 2, windowS: 60 } });
    const b = tenantConfig({ rateLimit: { requests: 2, windowS: 60 } });
    const { sut } = setup(a, b);
    await sut.canActivate(fakeHttp(a, 'alice').context);
    await sut.canActivate(fakeHttp(a, 'bob').context);
    await expect(sut.canActivate(fakeHttp(a, 'carol').context)).rejects.toThrow('Rate limit exceeded');
    await expect(sut.canActivate(fakeHttp(b, 'alice').context)).resolves.toBe(true);
  });

  it('reads the tenant config when the tenant guard did not leave it on the request', async () => {
    const tenant = tenantConfig({ rateLimit: { requests: 7, windowS: 60 } });
    const { sut } = setup(tenant);
    const http = fakeHttp(tenant, 'user-1', false);
    await sut.canActivate(http.context);
    expect(http.headers['x-ratelimit-limit-requests']).toBe('7');
  });

  it('reads the balance in the same round trip when the tenant has a token quota', async () => {
    const metered = tenantConfig();
    const free = tenantConfig({ settings: { token_quota: false } });
    const { sut, store } = setup(metered, free);
    await store.set(balanceKey(metered.id, 'user-1'), '12');
    const first = fakeHttp(metered);
    await sut.canActivate(first.context);
    expect(first.req.parleyBalance).toBe(12);
    const second = fakeHttp(free);
    await sut.canActivate(second.context);
    expect(second.req.parleyBalance).toBeUndefined();
  });

  it('fails closed with 503 while the store is unreachable', async () => {
    const tenant = tenantConfig();
    const sut = new TenantRateLimitGuard(
      new StoreThrottlerStorage(unreachableStore()),
      fakeTenantConfigs(tenant),
    );
    const err = await rejection(sut.canActivate(fakeHttp(tenant).context));
    expect(err).toMatchObject({ status: 503, code: 'service_unavailable' });
  });

  it('lets a tenant without a token quota through at once; the verdict follows on the request', async () => {
    const tenant = tenantConfig({
      rateLimit: { requests: 1, windowS: 30 },
      settings: { token_quota: false },
    });
    const { sut } = setup(tenant);
    const first = fakeHttp(tenant);
    await expect(sut.canActivate(first.context)).resolves.toBe(true);
    await expect(first.req.parleyAdmission!.verdict).resolves.toBeUndefined();
    expect(first.headers['x-ratelimit-remaining-requests']).toBe('0');

    const second = fakeHttp(tenant);
    await expect(sut.canActivate(second.context)).resolves.toBe(true);
    const refusal = await second.req.parleyAdmission!.verdict;
    expect(refusal).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    expect(refusal!.headers['Retry-After']).toBe('30');
    expect(second.headers).toMatchObject({
      'x-ratelimit-limit-requests': '1',
      'x-ratelimit-remaining-requests': '0',
    });
    expect(second.req.parleyBalance).toBeUndefined();
  });

  it('waits for the verdict when another one is on its way', async () => {
    const tenant = tenantConfig({
      rateLimit: { requests: 1, windowS: 30 },
      settings: { token_quota: false },
    });
    const { sut } = setup(tenant);
    const first = sut.canActivate(fakeHttp(tenant).context);
    const second = sut.canActivate(fakeHttp(tenant).context);
    await expect(first).resolves.toBe(true);
    expect(await rejection(second)).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
  });

  it('gives a 503 verdict while the store is unreachable, for a tenant without a token quota', async () => {
    const tenant = tenantConfig({ settings: { token_quota: false } });
    const sut = new TenantRateLimitGuard(
      new StoreThrottlerStorage(unreachableStore()),
      fakeTenantConfigs(tenant),
    );
    const http = fakeHttp(tenant);
    await expect(sut.canActivate(http.context)).resolves.toBe(true);
    await expect(http.req.parleyAdmission!.verdict).resolves.toMatchObject({
      status: 503,
      code: 'service_unavailable',
    });
  });

  it('refuses to run before the tenant guard', async () => {
    const tenant = tenantConfig();
    const { sut } = setup(tenant);
    const http = fakeHttp(tenant);
    delete http.req.parley!.tenantId;
    const err = await rejection(sut.canActivate(http.context));
    expect(err.code).toBe('internal_error');
  });
});
