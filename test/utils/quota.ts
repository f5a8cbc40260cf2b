import { expect } from 'vitest';
import { TokenLedgerService } from '../../src/quota/ledger/token-ledger.service.js';
import type { TestApp } from './create-test-app.js';
import { admin, uniqueId } from './factories.js';

const userPath = (tenantId: string, userId: string) =>
  `/admin/tenants/${tenantId}/users/${encodeURIComponent(userId)}`;

/** Adds (or with a negative delta, deducts) tokens through the admin API; returns the new balance. */
export async function topUp(t: TestApp, tenantId: string, userId: string, delta: number, reason?: string) {
  const res = await admin(t).post(`${userPath(tenantId, userId)}/balance`, {
    delta,
    ...(reason === undefined ? {} : { reason }),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.balance as number;
}

/** The balance through the admin API. */
export async function balanceOf(t: TestApp, tenantId: string, userId: string): Promise<number> {
  const res = await admin(t).get(`${userPath(tenantId, userId)}/balance`);
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

/** A ledger row as the admin API shows it. */
export interface LedgerRow {
  id: string;
  delta: number;
  balance_after: number;
  reason: 'admin_adjustment' | 'reservation' | 'settlement' | 'release' | 'shortfall';
  shortfall: number;
  completion_id: string | null;
  actor: string | null;
  note: string | null;
  meta: Record<string, unknown> | null;
  created_at: string;
}

/**
 * A user's ledger (newest first, up to 1000 rows) through the admin API, after flushing every given
 * instance's queue (each instance writes its own rows).
 */
export async function ledgerOf(apps: TestApp[], tenantId: string, userId: string): Promise<LedgerRow[]> {
  await flushLedgers(...apps);
  const res = await admin(apps[0]).get(`${userPath(tenantId, userId)}/ledger?limit=1000`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.has_more).toBe(false);
  return res.body.data as LedgerRow[];
}

/**
 * Waits until the user's ledger holds `count` rows of `reason` (settlements and releases are written
 * after the answer went out) and returns the whole ledger.
 */
export async function waitForLedgerRows(
  apps: TestApp[],
  tenantId: string,
  userId: string,
  reason: LedgerRow['reason'],
  count: number,
  timeout = 10_000,
): Promise<LedgerRow[]> {
  let rows: LedgerRow[] = [];
  await expect
    .poll(
      async () => {
        rows = await ledgerOf(apps, tenantId, userId);
        return rows.filter((r) => r.reason === reason).length;
      },
      { timeout, interval: 50 },
    )
    .toBe(count);
  return rows;
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
