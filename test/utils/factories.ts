import jwt from 'jsonwebtoken';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { expect } from 'vitest';
import { TEST_ADMIN_TOKEN, TEST_JWT_SECRET, type TestApp } from './create-test-app.js';

export interface TokenClaims {
  sub: string;
  tenant_id?: string;
  tenants?: string[];
  role?: string;
}

/** An HS256 token signed with the test secret, valid for an hour unless told otherwise. */
export function signToken(claims: TokenClaims, options: jwt.SignOptions = {}): string {
  return jwt.sign(claims, TEST_JWT_SECRET, { algorithm: 'HS256', expiresIn: '1h', ...options });
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface ModelSpec {
  id: string;
  context_length?: number;
  capabilities?: Partial<{
    tools: boolean;
    vision: boolean;
    audio: boolean;
    reasoning: boolean;
    verbosity: boolean;
  }>;
}

export interface TenantSetup {
  tenantId: string;
  providerId: string;
  userId: string;
  /** A token for `userId` with `tenant_id` set. */
  token: string;
}

export interface TenantSetupOptions {
  baseUrl: string;
  kind?: 'chat_completions' | 'responses';
  models?: ModelSpec[];
  defaultModel?: string;
  apiKey?: string | null;
  tenant?: Record<string, unknown>;
  provider?: Record<string, unknown>;
  /** The member's token balance (balances are enforced by default); null: none given. */
  balance?: number | null;
}

export const DEFAULT_TEST_BALANCE = 10_000_000;

/** Gives a user tokens through the admin API. */
export async function topUpBalance(
  t: TestApp,
  tenantId: string,
  userId: string,
  delta: number,
): Promise<number> {
  const res = await admin(t).post(`/admin/tenants/${tenantId}/users/${userId}/balance`, {
    delta,
    reason: 'test',
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.balance as number;
}

export function admin(t: TestApp) {
  const auth = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  return {
    post: (path: string, body: object) => request(t.url).post(path).set(auth).send(body),
    put: (path: string, body: object) => request(t.url).put(path).set(auth).send(body),
    patch: (path: string, body: object) => request(t.url).patch(path).set(auth).send(body),
    get: (path: string) => request(t.url).get(path).set(auth),
    delete: (path: string) => request(t.url).delete(path).set(auth),
  };
}

/** A tenant with one provider (pointing at the simulator) and one member, through the admin API. */
export async function setupTenant(t: TestApp, options: TenantSetupOptions): Promise<TenantSetup> {
  const tenantId = uniqueId('tenant');
  const userId = uniqueId('user');
  const models = options.models ?? [
    { id: 'sim-small', context_length: 8192 },
    { id: 'sim-large', context_length: 128000 },
  ];
  const api = admin(t);
  const tenant = await api.post('/admin/tenants', {
    id: tenantId,
    name: `Tenant ${tenantId}`,
    ...options.tenant,
  });
  expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
  const provider = await api.post(`/admin/tenants/${tenantId}/providers`, {
    name: 'simulator',
    kind: options.kind ?? 'chat_completions',
    base_url: options.baseUrl,
    ...(options.apiKey === null ? {} : { api_key: options.apiKey ?? 'sk-test-key' }),
    default_model: options.defaultModel ?? models[0].id,
    models: models.map((m) => ({ context_length: 8192, ...m })),
    ...options.provider,
  });
  expect(provider.status, JSON.stringify(provider.body)).toBe(201);
  const member = await api.put(`/admin/tenants/${tenantId}/members/${userId}`, { role: 'member' });
  expect(member.status, JSON.stringify(member.body)).toBeLessThan(300);
  if (options.balance !== null)
    await topUpBalance(t, tenantId, userId, options.balance ?? DEFAULT_TEST_BALANCE);
  return {
    tenantId,
    providerId: provider.body.id,
    userId,
    token: signToken({ sub: userId, tenant_id: tenantId }),
  };
}

/** Adds another member to a tenant and returns a token for them. */
export async function addMember(
  t: TestApp,
  tenantId: string,
  claims: Partial<TokenClaims> = {},
): Promise<{ userId: string; token: string }> {
  const userId = uniqueId('user');
  const res = await admin(t).put(`/admin/tenants/${tenantId}/members/${userId}`, { role: 'member' });
  expect(res.status).toBeLessThan(300);
  await topUpBalance(t, tenantId, userId, DEFAULT_TEST_BALANCE);
  return { userId, token: signToken({ sub: userId, tenant_id: tenantId, ...claims }) };
}
