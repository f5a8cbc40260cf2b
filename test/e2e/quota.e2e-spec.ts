import { Controller, HttpCode, Module, Post, UseGuards } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/common/errors/parley-error.js';
import { TokenBalanceGuard } from '../../src/quota/balance/token-balance.guard.js';
import { TokenLedgerService } from '../../src/quota/ledger/token-ledger.service.js';
import { fakeHttp } from '../../src/quota/quota-test-kit.contract.js';
import { QuotaModule } from '../../src/quota/quota.module.js';
import { StoreThrottlerStorage } from '../../src/quota/rate-limit/store-throttler.storage.js';
import { TenantRateLimitGuard } from '../../src/quota/rate-limit/tenant-rate-limit.guard.js';
import { TenantAccessGuard } from '../../src/tenants/tenant-access.guard.js';
import { TenantConfigService } from '../../src/tenants/tenant-config.service.js';
import {
  createTestApp,
  createTestApps,
  hasRedis,
  type TestApp,
  type TestAppGroup,
} from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { admin, signToken } from '../utils/factories.js';
import {
  balanceOf,
  balances,
  createQuotaTenant,
  ledgerSum,
  setTokenQuota,
  tenantContext,
  topUp,
  withQuotaModule,
} from '../utils/quota.js';
import { TcpProxy } from '../utils/tcp-proxy.js';

/**
 * A stand-in for the completion route until it is wired to the quota guards: the same guards, in
 * the pipeline's order, on a tenant-scoped POST.
 */
@Controller()
@UseGuards(TenantAccessGuard, TenantRateLimitGuard, TokenBalanceGuard)
class QuotaProbeController {
  @Post(['v1/quota-probe', ':tenantId/v1/quota-probe'])
  @HttpCode(200)
  probe(): { ok: true } {
    return { ok: true };
  }
}

@Module({ imports: [QuotaModule], controllers: [QuotaProbeController] })
class QuotaProbeModule {}

withQuotaModule(QuotaProbeModule);

const balancePath = (tenantId: string, userId: string) =>
  `/admin/tenants/${tenantId}/users/${userId}/balance`;

/** Runs a guard as the completion route will, after the auth and tenant guards. */
async function runGuard(
  t: TestApp,
  guard: TenantRateLimitGuard | TokenBalanceGuard,
  tenantId: string,
  userId: string,
): Promise<{ ok: boolean; error?: ParleyError; headers: Record<string, string> }> {
  const tenant = await t.app.get(TenantConfigService).get(tenantId);
  const http = fakeHttp(tenant!, userId);
  try {
    await guard.canActivate(http.context);
    return { ok: true, headers: http.headers };
  } catch (e) {
    if (!(e instanceof ParleyError)) throw e;
    return { ok: false, error: e, headers: http.headers };
  }
}

describe('quota: admin balance routes', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 0 for a user who never had tokens', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const res = await admin(t).get(balancePath(tenantId, userId));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ balance: 0 });
  });

  it('tops up and deducts whole tokens, and the ledger sums to the balance', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const res = await admin(t).post(balancePath(tenantId, userId), { delta: 1000, reason: 'welcome' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ balance: 1000 });
    expect(await topUp(t, tenantId, userId, -250)).toBe(750);
    expect(await balanceOf(t, tenantId, userId)).toBe(750);
    expect(await ledgerSum([t], tenantId, userId)).toBe(750);
  });

  it('stops a deduction at zero and records the shortfall in the ledger', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    await topUp(t, tenantId, userId, 40);
    expect(await topUp(t, tenantId, userId, -100, 'correction')).toBe(0);
    const ledger = await admin(t).get(`/admin/tenants/${tenantId}/users/${userId}/ledger`);
    expect(ledger.status).toBe(200);
    expect(ledger.body).toMatchObject({ object: 'list', has_more: false });
    expect(ledger.body.data).toHaveLength(3);
    expect(ledger.body.data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          reason: 'admin_adjustment',
          delta: 40,
          balance_after: 40,
          actor: 'admin-token',
        }),
        expect.objectContaining({
          reason: 'admin_adjustment',
          delta: -40,
          balance_after: 0,
          note: 'correction',
        }),
        expect.objectContaining({ reason: 'shortfall', delta: 0, balance_after: 0, shortfall: 60 }),
      ]),
    );
    expect(await ledgerSum([t], tenantId, userId)).toBe(0);
  });

  it.each([
    ['a fraction', { delta: 1.5 }],
    ['a string', { delta: '5' }],
    ['missing', {}],
    ['too large', { delta: 1e13 }],
  ])('answers 400 invalid_value naming delta when it is %s', async (_what, body) => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const res = await admin(t).post(balancePath(tenantId, userId), body);
    expectErrorEnvelope(res, 400, 'invalid_value', 'delta');
    expect(await balanceOf(t, tenantId, userId)).toBe(0);
  });

  it('answers 400 for unknown fields and a bad ledger limit', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    expectErrorEnvelope(
      await admin(t).post(balancePath(tenantId, userId), { delta: 1, extra: true }),
      400,
      'invalid_value',
    );
    expectErrorEnvelope(
      await admin(t).get(`/admin/tenants/${tenantId}/users/${userId}/ledger?limit=0`),
      400,
      'invalid_value',
      'limit',
    );
  });

  it('answers 404 for a tenant that does not exist', async () => {
    expectErrorEnvelope(await admin(t).get(balancePath('no-such-tenant', 'u')), 404, 'not_found');
    expectErrorEnvelope(
      await admin(t).post(balancePath('no-such-tenant', 'u'), { delta: 5 }),
      404,
      'not_found',
    );
    expectErrorEnvelope(await admin(t).get('/admin/tenants/no-such-tenant/users/u/ledger'), 404, 'not_found');
  });

  it('needs an admin: 401 without a token, 403 for a user', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    expectErrorEnvelope(await request(t.url).get(balancePath(tenantId, userId)), 401, 'invalid_token');
    const user = signToken({ sub: userId, tenant_id: tenantId });
    const res = await request(t.url)
      .post(balancePath(tenantId, userId))
      .set('Authorization', `Bearer ${user}`)
      .send({ delta: 1000 });
    expectErrorEnvelope(res, 403, 'forbidden');
  });

  it('pages the ledger, newest first', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    for (const delta of [1, 2, 3]) await topUp(t, tenantId, userId, delta);
    const res = await admin(t).get(`/admin/tenants/${tenantId}/users/${userId}/ledger?limit=2`);
    expect(res.status).toBe(200);
    expect(res.body.has_more).toBe(true);
    expect(res.body.data).toHaveLength(2);
  });

  it('documents the routes in the OpenAPI document', async () => {
    const res = await request(t.url).get('/docs-json');
    const paths = Object.keys(res.body.paths as object);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/admin/tenants/{tenantId}/users/{userId}/balance',
        '/admin/tenants/{tenantId}/users/{userId}/ledger',
      ]),
    );
  });
});

describe('quota: BalanceService and the guards in one instance', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp({ MAX_RESERVATION_TOKENS: '500' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('reserves, settles and releases, and the ledger in the database sums to the balance', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const ctx = tenantContext(tenantId, userId);
    await topUp(t, tenantId, userId, 1000);
    const sut = balances(t);
    const a = await sut.reserve(ctx, 2000, 'chatcmpl-a'); // capped at MAX_RESERVATION_TOKENS
    expect(a).toMatchObject({ reserved: 500, enforced: true });
    const b = await sut.reserve(ctx, 100, 'chatcmpl-b');
    expect(await balanceOf(t, tenantId, userId)).toBe(400);
    expect(await sut.settle(a, 120, { model: 'sim-small' })).toMatchObject({
      status: 'settled',
      charged: 120,
    });
    expect(await sut.release(b)).toMatchObject({ status: 'settled', charged: 0 });
    expect(await sut.settle(a, 120)).toMatchObject({ status: 'already_settled' });
    expect(await balanceOf(t, tenantId, userId)).toBe(880);
    expect(await ledgerSum([t], tenantId, userId)).toBe(880);
  });

  it('goes ahead with what is left, charges beyond it never below zero, and refuses at zero', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const ctx = tenantContext(tenantId, userId);
    await topUp(t, tenantId, userId, 30);
    const sut = balances(t);
    const r = await sut.reserve(ctx, 100, 'chatcmpl-1');
    expect(r.reserved).toBe(30);
    expect(await sut.settle(r, 75)).toEqual({ status: 'settled', charged: 30, shortfall: 45, balance: 0 });
    await expect(sut.reserve(ctx, 1, 'chatcmpl-2')).rejects.toMatchObject({
      status: 429,
      code: 'insufficient_tokens',
      message: 'Insufficient tokens',
    });
    expect(await ledgerSum([t], tenantId, userId)).toBe(0);
  });

  it('enforces nothing for a tenant with settings.token_quota false', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const ctx = tenantContext(tenantId, userId);
    await expect(balances(t).reserve(ctx, 10, 'chatcmpl-x')).rejects.toMatchObject({
      code: 'insufficient_tokens',
    });
    expect((await runGuard(t, t.app.get(TokenBalanceGuard), tenantId, userId)).error?.code).toBe(
      'insufficient_tokens',
    );
    await setTokenQuota(t, tenantId, false);
    await expect
      .poll(async () => (await balances(t).reserve(ctx, 10, `chatcmpl-${Date.now()}`)).enforced)
      .toBe(false);
    expect((await runGuard(t, t.app.get(TokenBalanceGuard), tenantId, userId)).ok).toBe(true);
  });

  it('TokenBalanceGuard: 429 below one token, through once topped up', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const guard = t.app.get(TokenBalanceGuard);
    const refused = await runGuard(t, guard, tenantId, userId);
    expect(refused.error).toMatchObject({
      status: 429,
      code: 'insufficient_tokens',
      message: 'Insufficient tokens',
    });
    await topUp(t, tenantId, userId, 1);
    expect((await runGuard(t, guard, tenantId, userId)).ok).toBe(true);
  });

  it('TenantRateLimitGuard: the tenant limit, its headers, then 429 with Retry-After', async () => {
    const { tenantId, userId } = await createQuotaTenant(t, { rate_limit: { requests: 3, window_s: 20 } });
    const guard = t.app.get(TenantRateLimitGuard);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await runGuard(t, guard, tenantId, userId));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(results.map((r) => r.headers['x-ratelimit-remaining-requests'])).toEqual(['2', '1', '0', '0']);
    expect(results[0].headers['x-ratelimit-limit-requests']).toBe('3');
    expect(results[0].headers['x-ratelimit-reset-requests']).toMatch(/^(1\d|20|\d)(\.\d+)?s$/);
    expect(results[3].error).toMatchObject({
      status: 429,
      code: 'rate_limit_exceeded',
      message: 'Rate limit exceeded',
    });
    expect(Number(results[3].error!.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    expect(Number(results[3].error!.headers['Retry-After'])).toBeLessThanOrEqual(20);
  });

  it('never lets 50 concurrent reservations spend more than the balance', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    await topUp(t, tenantId, userId, 1000);
    const ctx = tenantContext(tenantId, userId);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => balances(t).reserve(ctx, 100, `chatcmpl-c${i}`)),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(10);
    expect(await balanceOf(t, tenantId, userId)).toBe(0);
    expect(await ledgerSum([t], tenantId, userId)).toBe(0);
  });
});

describe('quota: the guards on a route, over HTTP', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers in the pipeline order, with the rate limit headers on every answer', async () => {
    const { tenantId, userId } = await createQuotaTenant(t, { rate_limit: { requests: 2, window_s: 30 } });
    const token = signToken({ sub: userId, tenant_id: tenantId });
    const call = () =>
      request(t.url).post('/v1/quota-probe').set('Authorization', `Bearer ${token}`).send({});

    const poor = await call();
    expectErrorEnvelope(poor, 429, 'insufficient_tokens', null);
    expect(poor.body.error.message).toBe('Insufficient tokens');
    expect(poor.headers).toMatchObject({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '1',
    });
    expect(poor.headers['x-ratelimit-reset-requests']).toMatch(/^\d+(\.\d+)?s$/);

    await topUp(t, tenantId, userId, 10);
    const ok = await call();
    expect(ok.status).toBe(200);
    expect(ok.headers['x-ratelimit-remaining-requests']).toBe('0');

    const limited = await call();
    expectErrorEnvelope(limited, 429, 'rate_limit_exceeded', null);
    expect(limited.body.error.message).toBe('Rate limit exceeded');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(30);
    expect(limited.headers['x-ratelimit-remaining-requests']).toBe('0');

    // Another tenant is not affected; a tenant without a token quota needs no balance.
    const free = await createQuotaTenant(t, { settings: { token_quota: false } });
    const freeToken = signToken({ sub: free.userId, tenant_id: free.tenantId });
    const res = await request(t.url)
      .post(`/${free.tenantId}/v1/quota-probe`)
      .set('Authorization', `Bearer ${freeToken}`)
      .send({});
    expect(res.status).toBe(200);
    expect(res.headers['x-ratelimit-limit-requests']).toBe(String(t.config.defaultRateLimitRequests));
  });

  it('still answers 401 and 403 before the quota guards, without rate limit headers', async () => {
    const { tenantId } = await createQuotaTenant(t);
    const anonymous = await request(t.url).post(`/${tenantId}/v1/quota-probe`).send({});
    expectErrorEnvelope(anonymous, 401, 'invalid_token');
    const stranger = signToken({ sub: 'stranger' });
    const denied = await request(t.url)
      .post(`/${tenantId}/v1/quota-probe`)
      .set('Authorization', `Bearer ${stranger}`)
      .send({});
    expectErrorEnvelope(denied, 403, 'tenant_access_denied');
    expect(denied.headers['x-ratelimit-limit-requests']).toBeUndefined();
  });
});

describe.skipIf(!hasRedis)('quota: two instances on one Redis', () => {
  let group: TestAppGroup;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    group = await createTestApps(2);
    [a, b] = group.apps;
  });
  afterAll(async () => {
    await group?.close();
  });

  it('50 concurrent reservations for 10 over both instances: exactly 10 succeed, ledger exact', async () => {
    const { tenantId, userId } = await createQuotaTenant(a);
    await topUp(b, tenantId, userId, 1000);
    const ctx = tenantContext(tenantId, userId);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => balances(i % 2 ? a : b).reserve(ctx, 100, `chatcmpl-m${i}`)),
    );
    const reserved = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as ParleyError] : []));
    expect(reserved).toHaveLength(10);
    expect(refused.map((e) => e.code)).toEqual(Array(40).fill('insufficient_tokens'));
    expect(await balanceOf(a, tenantId, userId)).toBe(0);

    // Settle them on either instance with various usages (refunds, extra, shortfalls).
    const settled = await Promise.all(
      reserved.map((r, i) => balances(i % 2 ? b : a).settle(r, [0, 40, 100, 130, 250][i % 5])),
    );
    const charged = settled.reduce((sum, s) => sum + s.charged, 0);
    const balance = await balanceOf(b, tenantId, userId);
    expect(balance).toBeGreaterThanOrEqual(0);
    expect(balance).toBe(1000 - charged);
    expect(await ledgerSum([a, b], tenantId, userId)).toBe(balance);
  });

  it('the rate limit storage: 3N concurrent hits over both instances, exactly N within the limit', async () => {
    const n = 20;
    const key = `storage-${Date.now()}`;
    const hits = await Promise.all(
      Array.from({ length: 3 * n }, (_, i) =>
        (i % 2 ? a : b).app.get(StoreThrottlerStorage).hit(key, 60_000),
      ),
    );
    expect(hits.filter((h) => h.hits <= n)).toHaveLength(n);
    expect(hits.map((h) => h.hits).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 3 * n }, (_, i) => i + 1),
    );
  });

  it('the rate limit guard: 3N concurrent requests of one tenant over both instances, exactly N pass', async () => {
    const n = 10;
    const { tenantId, userId } = await createQuotaTenant(a, { rate_limit: { requests: n, window_s: 60 } });
    const results = await Promise.all(
      Array.from({ length: 3 * n }, (_, i) => {
        const t = i % 2 ? a : b;
        return runGuard(t, t.app.get(TenantRateLimitGuard), tenantId, userId);
      }),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(n);
    expect(results.filter((r) => r.error?.code === 'rate_limit_exceeded')).toHaveLength(2 * n);
  });
});

describe.skipIf(!hasRedis)('quota: a store outage', () => {
  let proxy: TcpProxy;
  let t: TestApp;

  beforeAll(async () => {
    proxy = await TcpProxy.start(process.env.REDIS_URL!);
    t = await createTestApp({ REDIS_URL: proxy.url(process.env.REDIS_URL!) });
  });
  afterAll(async () => {
    await proxy?.resume();
    await t?.close();
    await proxy?.stop();
  });

  it('fails closed with 503, charges nothing twice, and recovers by itself', async () => {
    const { tenantId, userId } = await createQuotaTenant(t);
    const ctx = tenantContext(tenantId, userId);
    await topUp(t, tenantId, userId, 100);
    const sut = balances(t);
    const running = await sut.reserve(ctx, 10, 'chatcmpl-before');

    await proxy.stop();
    await expect(sut.reserve(ctx, 10, 'chatcmpl-during')).rejects.toMatchObject({
      status: 503,
      code: 'service_unavailable',
    });
    expect((await runGuard(t, t.app.get(TenantRateLimitGuard), tenantId, userId)).error?.code).toBe(
      'service_unavailable',
    );
    expect((await runGuard(t, t.app.get(TokenBalanceGuard), tenantId, userId)).error?.code).toBe(
      'service_unavailable',
    );
    expectErrorEnvelope(await admin(t).get(balancePath(tenantId, userId)), 503, 'service_unavailable');
    expectErrorEnvelope(
      await admin(t).post(balancePath(tenantId, userId), { delta: 5 }),
      503,
      'service_unavailable',
    );
    // The completion that was running settles once the store is back (it retries meanwhile).
    const settling = sut.settle(running, 4);
    await new Promise((resolve) => setTimeout(resolve, 300));

    await proxy.resume();
    expect(await settling).toMatchObject({ status: 'settled', charged: 4, balance: 96 });
    await expect
      .poll(async () => (await admin(t).get(balancePath(tenantId, userId))).status, { timeout: 5000 })
      .toBe(200);
    const after = await sut.reserve(ctx, 10, 'chatcmpl-after');
    expect(after.reserved).toBe(10);
    expect((await runGuard(t, t.app.get(TenantRateLimitGuard), tenantId, userId)).ok).toBe(true);
    expect(await balanceOf(t, tenantId, userId)).toBe(86);
    expect(await ledgerSum([t], tenantId, userId)).toBe(86);
    expect(t.app.get(TokenLedgerService).pendingCount).toBe(0);
  });
});
