import type { DynamicModule, Type } from '@nestjs/common';
import { expect } from 'vitest';
import { AppModule } from '../../src/app.module.js';
import type { TenantContext } from '../../src/common/context/request-context.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { BalanceService } from '../../src/quota/balance/balance.service.js';
import { TokenLedgerService } from '../../src/quota/ledger/token-ledger.service.js';
import { QuotaModule } from '../../src/quota/quota.module.js';
import type { TestApp } from './create-test-app.js';
import { admin, uniqueId } from './factories.js';

let quotaModuleAdded = false;

/**
 * Makes sure the test apps of this test file include QuotaModule (and `extra` test-only modules).
 * Until AppModule imports QuotaModule (directly, or through CompletionsModule), this adds it to
 * AppModule's imports; once it is wired, the extra import is the same module and Nest keeps one
 * instance, so this is harmless. Call once, before createTestApp(s).
 */
export function withQuotaModule(...extra: Type[]): void {
  if (quotaModuleAdded) throw new Error('withQuotaModule() was already called in this test file');
  quotaModuleAdded = true;
  const forRoot = AppModule.forRoot.bind(AppModule);
  AppModule.forRoot = (config: AppConfig): DynamicModule => {
    const module = forRoot(config);
    return { ...module, imports: [...(module.imports ?? []), QuotaModule, ...extra] };
  };
}

/** Adds (or with a negative delta, deducts) tokens through the admin API; returns the new balance. */
export async function topUp(t: TestApp, tenantId: string, userId: string, delta: number, reason?: string) {
  const res = await admin(t).post(`/admin/tenants/${tenantId}/users/${encodeURIComponent(userId)}/balance`, {
    delta,
    ...(reason === undefined ? {} : { reason }),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.balance as number;
}

/** The balance through the admin API. */
export async function balanceOf(t: TestApp, tenantId: string, userId: string): Promise<number> {
  const res = await admin(t).get(`/admin/tenants/${tenantId}/users/${encodeURIComponent(userId)}/balance`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.balance as number;
}

/** Turns the tenant's token quota on or off (`settings.token_quota`), keeping its other settings. */
export async function setTokenQuota(t: TestApp, tenantId: string, enabled: boolean): Promise<void> {
  const current = await admin(t).get(`/admin/tenants/${tenantId}`);
  expect(current.status).toBe(200);
  const res = await admin(t).patch(`/admin/tenants/${tenantId}`, {
    settings: { ...current.body.settings, token_quota: enabled },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** Writes every instance's queued ledger rows to the database. */
export async function flushLedgers(...apps: TestApp[]): Promise<void> {
  await Promise.all(apps.map((a) => a.app.get(TokenLedgerService).flush()));
}

/** The sum of a user's ledger deltas in the database, after flushing every given instance. */
export async function ledgerSum(apps: TestApp[], tenantId: string, userId: string): Promise<number> {
  await flushLedgers(...apps);
  return apps[0].app.get(TokenLedgerService).sum(tenantId, userId);
}

/** The service-call context of a user in a tenant (as the tenant guard leaves it). */
export function tenantContext(tenantId: string, userId: string): TenantContext {
  return { tenantId, userId, claims: { sub: userId, tenant_id: tenantId }, isAdmin: false };
}

export function balances(t: TestApp): BalanceService {
  return t.app.get(BalanceService);
}

export interface QuotaTenant {
  tenantId: string;
  /** A member of the tenant. */
  userId: string;
}

/** A tenant (no provider needed) with one member, through the admin API. */
export async function createQuotaTenant(
  t: TestApp,
  tenant: { rate_limit?: { requests: number; window_s: number }; settings?: Record<string, unknown> } = {},
): Promise<QuotaTenant> {
  const tenantId = uniqueId('quota');
  const userId = uniqueId('user');
  const created = await admin(t).post('/admin/tenants', {
    id: tenantId,
    name: `Quota ${tenantId}`,
    ...tenant,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const member = await admin(t).put(`/admin/tenants/${tenantId}/members/${userId}`, { role: 'member' });
  expect(member.status, JSON.stringify(member.body)).toBeLessThan(300);
  return { tenantId, userId };
}
