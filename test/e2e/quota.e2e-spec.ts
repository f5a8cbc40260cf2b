import { createServer } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectConforms, expectStreamConforms } from '../utils/conformance.js';
import {
  createTestApp,
  createTestApps,
  hasRedis,
  type TestApp,
  type TestAppGroup,
} from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { addMember, admin, setupTenant, signToken, type TenantSetup } from '../utils/factories.js';
import {
  balanceOf,
  createQuotaTenant,
  ledgerOf,
  ledgerSum,
  setTokenQuota,
  topUp,
  waitForLedgerRows,
  type LedgerRow,
} from '../utils/quota.js';
import { sseRequest } from '../utils/sse-client.js';
import { TcpProxy } from '../utils/tcp-proxy.js';
import { UpstreamSimulator, type SimAnswer } from '../utils/upstream-simulator.js';

/*
 * Issue 5 end to end: the per-tenant rate limit and the per-user token balance on the real
 * completion route, with the upstream simulator as the provider.
 *
 * The reservation a completion makes is "prompt tokens (a bound from the byte length) + the completion
 * budget". Every request here sets `max_tokens`, so one request's reservation is a fixed number for a
 * given body; the tests read it from the ledger (the `reservation` row) where they need it exactly.
 */

const MAX_TOKENS = 100;
const COMPLETIONS = '/v1/chat/completions';
const RATE_HEADERS = [
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
] as const;

function ask(extra: Record<string, unknown> = {}, content = 'How many tokens is this?') {
  return { messages: [{ role: 'user', content }], max_tokens: MAX_TOKENS, ...extra };
}

/** A parsed JSON body, as loosely typed as supertest's `res.body`. */
type JsonBody = request.Response['body'];

/** What the client got: the JSON body (JSON answers and errors) or the SSE payloads. */
interface Answer {
  status: number;
  headers: Headers;
  /** Parsed JSON body, when the answer is JSON. */
  body?: JsonBody;
  /** SSE payloads (`[DONE]` kept), when the answer is a stream. */
  payloads?: unknown[];
}

async function post(
  t: TestApp,
  token: string,
  body: Record<string, unknown>,
  path = COMPLETIONS,
): Promise<Answer> {
  const res = await sseRequest(`${t.url}${path}`, { token, body });
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    expectStreamConforms(res.payloads);
    return { status: res.status, headers: res.headers, payloads: res.payloads };
  }
  const json: JsonBody = JSON.parse(res.text);
  if (res.status === 200) expectConforms('CreateChatCompletionResponse', json);
  else expectConforms('ErrorResponse', json);
  return { status: res.status, headers: res.headers, body: json };
}

function expectError(answer: Answer, status: number, code: string, message?: string): void {
  expect(answer.body, JSON.stringify(answer.payloads)).toBeDefined();
  expectErrorEnvelope({ status: answer.status, body: answer.body } as request.Response, status, code);
  if (message !== undefined) expect(answer.body!.error.message).toBe(message);
}

/** The usage the client saw: `usage` of a JSON answer, or of a stream's usage chunk. */
function usageOf(answer: Answer): Record<string, unknown> | undefined {
  if (answer.body) return answer.body.usage as Record<string, unknown> | undefined;
  const chunk = answer.payloads!.find(
    (p): p is { usage: Record<string, unknown> } =>
      typeof p === 'object' && p !== null && 'usage' in p && p.usage != null,
  );
  return chunk?.usage;
}

/** An OpenAI duration (`1m0s`, `59.5s`, `250ms`) in milliseconds; NaN when it is not one. */
function durationMs(value: string | null): number {
  const ms = /^(\d+)ms$/.exec(value ?? '');
  if (ms) return Number(ms[1]);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d+)?)s$/.exec(value ?? '');
  if (!m) return NaN;
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3])) * 1000;
}

function expectRateHeaders(answer: Answer, limit: number, remaining: number, windowS: number): void {
  expect(answer.headers.get('x-ratelimit-limit-requests')).toBe(String(limit));
  expect(answer.headers.get('x-ratelimit-remaining-requests')).toBe(String(remaining));
  const reset = answer.headers.get('x-ratelimit-reset-requests');
  expect(reset).toMatch(/^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$/);
  expect(durationMs(reset)).toBeGreaterThan(0);
  expect(durationMs(reset)).toBeLessThanOrEqual(windowS * 1000);
}

const byReason = (rows: LedgerRow[], reason: LedgerRow['reason']) => rows.filter((r) => r.reason === reason);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('quota in one instance', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    // A disconnected stream is aborted and settled at once (no resume grace period).
    t = await createTestApp({ RESUME_GRACE_MS: '0' });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  const tenantWith = (options: Partial<Parameters<typeof setupTenant>[1]> = {}) =>
    setupTenant(t, { baseUrl: sim.baseUrl, ...options });

  describe('the admin balance routes', () => {
    const balancePath = (tenantId: string, userId: string) =>
      `/admin/tenants/${tenantId}/users/${userId}/balance`;

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
      const rows = await ledgerOf([t], tenantId, userId);
      expect(rows).toHaveLength(3);
      expect(rows).toEqual(
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
      expectErrorEnvelope(
        await admin(t).get('/admin/tenants/no-such-tenant/users/u/ledger'),
        404,
        'not_found',
      );
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

  describe('the rate limit', () => {
    it('lets ten requests pass and answers the eleventh 429, with the headers on every answer', async () => {
      const tenant = await tenantWith({ tenant: { rate_limit: { requests: 10, window_s: 60 } } });
      const answers: Answer[] = [];
      for (let i = 0; i < 10; i++) {
        // Every other one streamed: the headers ride on the SSE answer too.
        answers.push(await post(t, tenant.token, ask({ stream: i % 2 === 1 })));
      }
      answers.forEach((answer, i) => {
        expect(answer.status).toBe(200);
        expectRateHeaders(answer, 10, 9 - i, 60);
        if (i % 2 === 1) {
          expect(answer.headers.get('content-type')).toMatch(/^text\/event-stream/);
          expect(answer.payloads!.at(-1)).toBe('[DONE]');
        } else {
          expect(answer.body!.object).toBe('chat.completion');
        }
      });
      // One window: the time to its end only goes down.
      const resets = answers.map((a) => durationMs(a.headers.get('x-ratelimit-reset-requests')));
      expect(resets).toEqual([...resets].sort((a, b) => b - a));

      for (const stream of [false, true]) {
        const refused = await post(t, tenant.token, ask({ stream }));
        expectError(refused, 429, 'rate_limit_exceeded', 'Rate limit exceeded');
        expectRateHeaders(refused, 10, 0, 60);
        expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      }
      expect(sim.requestCount).toBe(10);

      // The limit is the tenant's: another member is refused as well...
      const colleague = await addMember(t, tenant.tenantId);
      expectError(await post(t, colleague.token, ask()), 429, 'rate_limit_exceeded', 'Rate limit exceeded');
      // ...also on the tenant-in-path route.
      expectError(
        await post(t, colleague.token, ask(), `/${tenant.tenantId}${COMPLETIONS}`),
        429,
        'rate_limit_exceeded',
      );
      expect(sim.requestCount).toBe(10);

      // ...and another tenant is not affected (it has the default limit).
      const other = await tenantWith();
      const answer = await post(t, other.token, ask());
      expect(answer.status).toBe(200);
      expectRateHeaders(
        answer,
        t.config.defaultRateLimitRequests,
        t.config.defaultRateLimitRequests - 1,
        t.config.defaultRateLimitWindowS,
      );
    });

    it('applies a limit set with PATCH /admin/tenants/:id at once', async () => {
      const tenant = await tenantWith();
      expect((await post(t, tenant.token, ask())).status).toBe(200);
      const patched = await admin(t).patch(`/admin/tenants/${tenant.tenantId}`, {
        rate_limit: { requests: 2, window_s: 30 },
      });
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      // A new window (a new limit), counted from its first request.
      const first = await post(t, tenant.token, ask());
      const second = await post(t, tenant.token, ask({ stream: true }));
      const third = await post(t, tenant.token, ask());
      expect([first.status, second.status]).toEqual([200, 200]);
      expectRateHeaders(first, 2, 1, 30);
      expectRateHeaders(second, 2, 0, 30);
      expectError(third, 429, 'rate_limit_exceeded', 'Rate limit exceeded');
      expect(Number(third.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    });

    it('limits a tenant without a token quota the same way: a refusal beats a bad body and reaches no provider', async () => {
      const tenant = await tenantWith({
        balance: null,
        tenant: { rate_limit: { requests: 2, window_s: 60 }, settings: { token_quota: false } },
      });
      const first = await post(t, tenant.token, ask());
      const second = await post(t, tenant.token, ask({ stream: true }));
      expect([first.status, second.status]).toEqual([200, 200]);
      expectRateHeaders(first, 2, 1, 60);
      expectRateHeaders(second, 2, 0, 60);
      expect(second.payloads!.at(-1)).toBe('[DONE]');

      // Over the limit: a 429 before any SSE frame, and for a body that is also invalid (a 400 alone).
      const overLimit = [
        ask(),
        ask({ stream: true }),
        ask({ temperature: 5 }),
        ask({ model: 'no-such-model' }),
      ];
      for (const body of overLimit) {
        const refused = await post(t, tenant.token, body);
        expectError(refused, 429, 'rate_limit_exceeded', 'Rate limit exceeded');
        expectRateHeaders(refused, 2, 0, 60);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      expect(sim.requestCount).toBe(2);

      // Under the limit, the same bad body is the 400 it always was.
      const other = await tenantWith({ balance: null, tenant: { settings: { token_quota: false } } });
      const invalid = await post(t, other.token, ask({ temperature: 5 }));
      expectError(invalid, 400, 'invalid_value');
      expect(invalid.body!.error.param).toBe('temperature');
      expect(invalid.headers.get('x-ratelimit-remaining-requests')).toBe(
        String(t.config.defaultRateLimitRequests - 1),
      );
    });

    it('answers 401 and 403 before the quota checks, without rate limit headers', async () => {
      const tenant = await tenantWith();
      const anonymous = await request(t.url).post(`/${tenant.tenantId}${COMPLETIONS}`).send(ask());
      expectErrorEnvelope(anonymous, 401, 'invalid_token');
      const stranger = signToken({ sub: 'stranger' });
      const denied = await post(t, stranger, ask(), `/${tenant.tenantId}${COMPLETIONS}`);
      expectError(denied, 403, 'tenant_access_denied');
      for (const name of RATE_HEADERS) expect(denied.headers.get(name)).toBeNull();
      expect(sim.requestCount).toBe(0);
    });
  });

  describe('the token balance', () => {
    it('answers 429 below one token, before the body is validated, and passes once topped up', async () => {
      const tenant = await tenantWith({ balance: null });
      const poor = await post(t, tenant.token, ask());
      expectError(poor, 429, 'insufficient_tokens', 'Insufficient tokens');
      expectRateHeaders(
        poor,
        t.config.defaultRateLimitRequests,
        t.config.defaultRateLimitRequests - 1,
        t.config.defaultRateLimitWindowS,
      );
      // An invalid body is not even looked at, streamed or not.
      expectError(
        await post(t, tenant.token, { messages: 'not a list' }),
        429,
        'insufficient_tokens',
        'Insufficient tokens',
      );
      expectError(await post(t, tenant.token, ask({ stream: true })), 429, 'insufficient_tokens');
      expect(sim.requestCount).toBe(0);

      expect(await topUp(t, tenant.tenantId, tenant.userId, 1000)).toBe(1000);
      sim.enqueue({ kind: 'text', text: 'Paid for.', usage: { prompt_tokens: 9, completion_tokens: 3 } });
      const paid = await post(t, tenant.token, ask());
      expect(paid.status).toBe(200);
      expect(paid.body!.usage).toMatchObject({ total_tokens: 12 });
      // Now the body is validated.
      const invalid = await post(t, tenant.token, { messages: 'not a list' });
      expectError(invalid, 400, 'invalid_value');
      expect(invalid.body!.error.param).toBe('messages');

      await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'settlement', 1);
      expect(await balanceOf(t, tenant.tenantId, tenant.userId)).toBe(988);
    });

    it('goes ahead with what is left, charges the usage without going below zero, then refuses', async () => {
      const tenant = await tenantWith({ balance: 30 });
      sim.enqueue({ kind: 'text', text: 'Costly.', usage: { prompt_tokens: 20, completion_tokens: 55 } });
      const answer = await post(t, tenant.token, ask());
      expect(answer.status).toBe(200);
      expect(answer.body!.usage).toMatchObject({ total_tokens: 75 });

      const rows = await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'settlement', 1);
      expect(await balanceOf(t, tenant.tenantId, tenant.userId)).toBe(0);
      const id = answer.body!.id as string;
      expect(byReason(rows, 'reservation')).toEqual([
        expect.objectContaining({ delta: -30, balance_after: 0, completion_id: id }),
      ]);
      expect(byReason(rows, 'settlement')).toEqual([
        expect.objectContaining({ delta: 0, balance_after: 0, completion_id: id }),
      ]);
      expect(byReason(rows, 'shortfall')).toEqual([
        expect.objectContaining({ delta: 0, shortfall: 45, completion_id: id }),
      ]);
      expect(sum(rows.map((r) => r.delta))).toBe(0);

      expectError(await post(t, tenant.token, ask()), 429, 'insufficient_tokens', 'Insufficient tokens');
      expect(sim.requestCount).toBe(1);
    });

    it('needs no balance when the tenant has no token quota', async () => {
      const tenant = await tenantWith({ balance: null, tenant: { settings: { token_quota: false } } });
      expect((await post(t, tenant.token, ask())).status).toBe(200);
      await setTokenQuota(t, tenant.tenantId, true);
      expectError(await post(t, tenant.token, ask()), 429, 'insufficient_tokens');
      expect(await ledgerOf([t], tenant.tenantId, tenant.userId)).toEqual([]);
    });
  });

  describe('settlement', () => {
    let tenant: TenantSetup;
    const BALANCE = 10_000;

    beforeEach(async () => {
      tenant = await tenantWith({ balance: BALANCE });
    });

    /** Waits for the release of the only completion and checks that the balance is back where it was. */
    async function expectReleased(): Promise<void> {
      const rows = await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'release', 1);
      const [reservation] = byReason(rows, 'reservation');
      expect(reservation.delta).toBeLessThan(-MAX_TOKENS);
      expect(byReason(rows, 'release')).toEqual([
        expect.objectContaining({ delta: -reservation.delta, balance_after: BALANCE }),
      ]);
      expect(byReason(rows, 'settlement')).toEqual([]);
      expect(await balanceOf(t, tenant.tenantId, tenant.userId)).toBe(BALANCE);
      expect(await ledgerSum([t], tenant.tenantId, tenant.userId)).toBe(BALANCE);
    }

    it.each([false, true])(
      'leaves the balance unchanged when the provider answers 500 (stream: %s)',
      async (stream) => {
        sim.enqueue({ kind: 'error', status: 500, message: 'upstream is down' });
        const answer = await post(t, tenant.token, ask({ stream }));
        expectError(answer, 502, 'upstream_error');
        expect(sim.requestCount).toBe(1);
        await expectReleased();
      },
    );

    it.each([false, true])(
      'leaves the balance unchanged when the provider cannot be reached (stream: %s)',
      async (stream) => {
        const unreachable = await admin(t).post(`/admin/tenants/${tenant.tenantId}/providers`, {
          name: 'nowhere',
          kind: 'chat_completions',
          base_url: `http://127.0.0.1:${await closedPort()}/v1`,
          api_key: 'sk-test-key',
          default_model: 'sim-small',
          models: [{ id: 'sim-small', context_length: 8192 }],
        });
        expect(unreachable.status, JSON.stringify(unreachable.body)).toBe(201);
        const answer = await post(t, tenant.token, ask({ stream, provider_id: unreachable.body.id }));
        expectError(answer, 502, 'upstream_error');
        await expectReleased();
      },
    );

    it('charges what the provider reported, streamed or not', async () => {
      sim.enqueue(
        { kind: 'text', text: 'JSON answer.', usage: { prompt_tokens: 14, completion_tokens: 6 } },
        { kind: 'text', text: 'A streamed answer.', usage: { prompt_tokens: 14, completion_tokens: 17 } },
      );
      const json = await post(t, tenant.token, ask());
      // The provider is asked for usage on streams even when the client does not ask for it.
      const streamed = await post(t, tenant.token, ask({ stream: true }));
      expect(usageOf(json)).toMatchObject({ prompt_tokens: 14, completion_tokens: 6, total_tokens: 20 });
      expect(usageOf(streamed)).toBeUndefined();
      expect(sim.requests[1].body).toMatchObject({ stream: true, stream_options: { include_usage: true } });

      const rows = await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'settlement', 2);
      expect(await balanceOf(t, tenant.tenantId, tenant.userId)).toBe(BALANCE - 20 - 31);
      expect(await ledgerSum([t], tenant.tenantId, tenant.userId)).toBe(BALANCE - 51);
      const settled = byReason(rows, 'settlement').map((r) => r.meta?.actual);
      expect(settled.sort((a, b) => Number(a) - Number(b))).toEqual([20, 31]);
    });

    it('reserves for the history of a continued conversation too', async () => {
      const answer = 'A first answer long enough to make the second prompt clearly longer than the first.';
      sim.enqueue(
        { kind: 'text', text: answer, usage: { prompt_tokens: 14, completion_tokens: 16 } },
        { kind: 'text', text: 'Second.', usage: { prompt_tokens: 40, completion_tokens: 2 } },
      );
      const first = await post(t, tenant.token, ask());
      expect(first.status).toBe(200);
      const conversationId = first.body!._conversation.id as string;
      const second = await post(t, tenant.token, ask({ conversation_id: conversationId }));
      expect(second.status).toBe(200);
      expect(second.body!._conversation.id).toBe(conversationId);
      expect(sim.requests[1].body.messages).toHaveLength(3);

      const rows = await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'settlement', 2);
      const reservedFor = (id: string) =>
        -sum(
          byReason(rows, 'reservation')
            .filter((r) => r.completion_id === id)
            .map((r) => r.delta),
        );
      // The same new message, plus the stored history (the first question and answer).
      const [firstReserved, secondReserved] = [reservedFor(first.body!.id), reservedFor(second.body!.id)];
      expect(firstReserved).toBeGreaterThan(MAX_TOKENS);
      expect(secondReserved).toBeGreaterThan(firstReserved + 10);
      expect(await balanceOf(t, tenant.tenantId, tenant.userId)).toBe(BALANCE - 30 - 42);
      expect(await ledgerSum([t], tenant.tenantId, tenant.userId)).toBe(BALANCE - 72);
    });

    it('charges only the partial usage when the client disconnects mid-stream', async () => {
      sim.enqueue({ kind: 'stall', text: 'one two three four five six seven', afterChunks: 3 });
      const abort = new AbortController();
      const res = await fetch(`${t.url}${COMPLETIONS}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${tenant.token}` },
        body: JSON.stringify(ask({ stream: true })),
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit-requests')).toBe(String(t.config.defaultRateLimitRequests));
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!text.includes('three')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      expect(text).toContain('three');
      const during = await balanceOf(t, tenant.tenantId, tenant.userId);
      abort.abort();
      await sim.waitForAborted(1);

      // Settled once the generation is aborted: the balance goes back up from the reservation.
      await expect
        .poll(() => balanceOf(t, tenant.tenantId, tenant.userId), { timeout: 10_000, interval: 50 })
        .toBeGreaterThan(during);
      const rows = await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'settlement', 1);
      const [reservation] = byReason(rows, 'reservation');
      const [settlement] = byReason(rows, 'settlement');
      const debit = BALANCE - (await balanceOf(t, tenant.tenantId, tenant.userId));
      expect(during).toBe(BALANCE + reservation.delta);
      expect(debit).toBeGreaterThan(0);
      expect(debit).toBeLessThan(-reservation.delta);
      // Counted by Parley (the provider reported nothing): the prompt plus "one two three".
      expect(settlement).toMatchObject({ completion_id: reservation.completion_id });
      expect(settlement.meta).toMatchObject({ counted: true, actual: debit });
      expect(await ledgerSum([t], tenant.tenantId, tenant.userId)).toBe(BALANCE - debit);
    });

    it.each([false, true])(
      'charges the prompt when the client leaves before any output (stream: %s)',
      async (stream) => {
        sim.enqueue({ kind: 'stall' });
        const abort = new AbortController();
        const sent = fetch(`${t.url}${COMPLETIONS}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${tenant.token}` },
          body: JSON.stringify(ask({ stream })),
          signal: abort.signal,
        }).catch(() => undefined);
        await sim.waitForRequests(1);
        abort.abort();
        await sent;
        await sim.waitForAborted(1);

        // The provider had the prompt: Parley counts it, rather than releasing the reservation.
        const rows = await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'settlement', 1);
        const [settlement] = byReason(rows, 'settlement');
        const debit = BALANCE - (await balanceOf(t, tenant.tenantId, tenant.userId));
        expect(debit).toBeGreaterThan(0);
        expect(settlement.meta).toMatchObject({ counted: true, actual: debit });
        expect(byReason(rows, 'release')).toEqual([]);
      },
    );
  });
});

describe('the rate limit on the gateway path (no persistence, no token quota)', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    // Nothing is stored, so a refused request gets as far as its upstream call, which is held back.
    t = await createTestApp({ PERSISTENCE: 'off' });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });

  it('refuses over the limit with a real 429, streamed or not, without calling the provider', async () => {
    const tenant = await setupTenant(t, {
      baseUrl: sim.baseUrl,
      balance: null,
      tenant: { rate_limit: { requests: 1, window_s: 60 }, settings: { token_quota: false } },
    });
    expect((await post(t, tenant.token, ask({ stream: true }))).status).toBe(200);
    for (const body of [ask({ stream: true }), ask(), ask({ temperature: 5 })]) {
      const refused = await post(t, tenant.token, body);
      expectError(refused, 429, 'rate_limit_exceeded', 'Rate limit exceeded');
      expectRateHeaders(refused, 1, 0, 60);
    }
    expect(sim.requestCount).toBe(1);
  });
});

describe(`quota across ${hasRedis ? 'two instances on one Redis' : 'one instance (no Redis)'}`, () => {
  let group: TestAppGroup;
  let apps: TestApp[];
  let sim: UpstreamSimulator;
  const on = (i: number) => apps[i % apps.length];

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    group = await createTestApps(hasRedis ? 2 : 1);
    apps = group.apps;
  });
  afterAll(async () => {
    await group?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('lets exactly N of 3N concurrent requests of one tenant through', async () => {
    const n = 10;
    const tenant = await setupTenant(apps[0], {
      baseUrl: sim.baseUrl,
      tenant: { rate_limit: { requests: n, window_s: 60 } },
    });
    const answers = await Promise.all(
      Array.from({ length: 3 * n }, (_, i) => post(on(i), tenant.token, ask({ stream: i % 3 === 0 }))),
    );
    const passed = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    expect(passed).toHaveLength(n);
    expect(refused).toHaveLength(2 * n);
    for (const a of refused) expectError(a, 429, 'rate_limit_exceeded', 'Rate limit exceeded');
    const remaining = passed.map((a) => Number(a.headers.get('x-ratelimit-remaining-requests')));
    expect(remaining.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(sim.requestCount).toBe(n);
  });

  /**
   * A user's balance of exactly ten reservations, 50 concurrent requests (half of them streamed) over
   * every instance, and the provider reporting `usage(stream)` for each.
   */
  async function fiftyAtOnce(usage: (stream: boolean, reservation: number) => number) {
    const tenant = await setupTenant(apps[0], { baseUrl: sim.baseUrl, balance: null });
    // The reservation of one such request (prompt bound + max_tokens), as another member's ledger shows it.
    const probe = await addMember(apps[0], tenant.tenantId);
    expect((await post(apps[0], probe.token, ask())).status).toBe(200);
    expect((await post(on(1), probe.token, ask({ stream: true }))).status).toBe(200);
    const probeRows = await waitForLedgerRows(apps, tenant.tenantId, probe.userId, 'settlement', 2);
    const reservations = byReason(probeRows, 'reservation').map((r) => -r.delta);
    expect(reservations[0]).toBe(reservations[1]);
    const reservation = reservations[0];
    expect(reservation).toBeGreaterThan(MAX_TOKENS);
    expect(reservation).toBeLessThan(MAX_TOKENS + 64);

    const balance = 10 * reservation;
    await topUp(on(1), tenant.tenantId, tenant.userId, balance);
    sim.reset();
    const promptTokens = reservation - MAX_TOKENS;
    sim.onRequest = (req): SimAnswer => ({
      kind: 'text',
      text: 'Part of the fifty.',
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: usage(req.stream, reservation) - promptTokens,
      },
    });

    // The balance, sampled while the requests run, never leaves [0, balance].
    const samples: number[] = [];
    let running = true;
    const sampler = (async () => {
      while (running)
        samples.push(await balanceOf(apps[samples.length % apps.length], tenant.tenantId, tenant.userId));
    })();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        post(
          on(i),
          tenant.token,
          ask({ stream: i % 2 === 1, stream_options: i % 2 ? { include_usage: true } : undefined }),
        ),
      ),
    );
    running = false;
    await sampler;

    const passed = answers.filter((a) => a.status === 200);
    for (const a of answers.filter((x) => x.status !== 200)) {
      expectError(a, 429, 'insufficient_tokens', 'Insufficient tokens');
    }
    // What the client saw is what the provider reported.
    for (const a of passed) {
      const stream = a.payloads !== undefined;
      expect(usageOf(a)).toMatchObject({ total_tokens: usage(stream, reservation) });
    }
    expect(sim.requestCount).toBe(passed.length);
    // A refused request leaves nothing behind: the user has one conversation per answer.
    const conversations = await request(on(1).url)
      .get('/v1/conversations?limit=100')
      .set('Authorization', `Bearer ${tenant.token}`);
    expect(conversations.status).toBe(200);
    expect(conversations.body.data).toHaveLength(passed.length);

    const rows = await waitForLedgerRows(apps, tenant.tenantId, tenant.userId, 'settlement', passed.length);
    // Every change to the balance is in the ledger with the balance after it: never below zero.
    expect(Math.min(...rows.map((r) => r.balance_after))).toBeGreaterThanOrEqual(0);
    const final = await balanceOf(apps[0], tenant.tenantId, tenant.userId);
    samples.push(final);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThanOrEqual(balance);
    expect(sum(rows.map((r) => r.delta))).toBe(final);
    expect(await ledgerSum(apps, tenant.tenantId, tenant.userId)).toBe(final);
    const settled = byReason(rows, 'settlement').map((r) => r.meta?.actual as number);
    const reported = passed.map((a) => usageOf(a)!.total_tokens as number);
    expect(settled.sort((a, b) => a - b)).toEqual(reported.sort((a, b) => a - b));
    const shortfall = sum(byReason(rows, 'shortfall').map((r) => r.shortfall));
    const spent = balance - final;
    expect(spent).toBe(sum(reported) - shortfall);
    return { passed: passed.length, spent, shortfall, balance, final, reservation };
  }

  it('50 concurrent requests that each use their whole budget: exactly 10 pass, the balance is spent', async () => {
    const outcome = await fiftyAtOnce((_stream, reservation) => reservation);
    expect(outcome).toMatchObject({ passed: 10, final: 0, shortfall: 0, spent: outcome.balance });
  });

  it('50 concurrent requests that use less: never below zero, only the reported usage is spent', async () => {
    const outcome = await fiftyAtOnce((stream, reservation) => reservation - (stream ? 30 : 50));
    expect(outcome.passed).toBeGreaterThanOrEqual(10);
    expect(outcome.spent).toBeLessThanOrEqual(outcome.balance);
    expect(outcome.final).toBeGreaterThanOrEqual(0);
  });
});

describe.skipIf(!hasRedis)('quota: a store outage', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  let sim: UpstreamSimulator;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    proxy = await TcpProxy.start(process.env.REDIS_URL!);
    t = await createTestApp({ REDIS_URL: proxy.url(process.env.REDIS_URL!) });
  });
  afterAll(async () => {
    await proxy?.resume();
    await t?.close();
    await proxy?.stop();
    await sim?.stop();
  });

  it('answers 503 while the store is down, charges nothing twice, and recovers by itself', async () => {
    const balance = 1000;
    const tenant = await setupTenant(t, { baseUrl: sim.baseUrl, balance });
    const usage = { prompt_tokens: 10, completion_tokens: 5 };
    // A completion running when the store goes away: it ends during the outage.
    sim.enqueue({ kind: 'text', text: 'Finished during the outage.', usage, delayMs: 500 });
    const running = post(t, tenant.token, ask({ stream: true, stream_options: { include_usage: true } }));
    await sim.waitForRequests(1);
    await proxy.stop();

    const finished = await running;
    expect(finished.status).toBe(200);
    expect(usageOf(finished)).toMatchObject({ total_tokens: 15 });

    for (const stream of [false, true]) {
      const refused = await post(t, tenant.token, ask({ stream }));
      expectError(refused, 503, 'service_unavailable');
      expect(refused.headers.get('retry-after')).toBe('1');
    }
    expectErrorEnvelope(
      await admin(t).get(`/admin/tenants/${tenant.tenantId}/users/${tenant.userId}/balance`),
      503,
      'service_unavailable',
    );
    expect(sim.requestCount).toBe(1);

    await proxy.resume();
    sim.setDefault({ kind: 'text', text: 'Back.', usage });
    await expect
      .poll(async () => (await post(t, tenant.token, ask())).status, { timeout: 10_000, interval: 100 })
      .toBe(200);
    expect(sim.requestCount).toBe(2);

    // Both completions settled exactly once, the first after the store came back.
    const rows = await waitForLedgerRows([t], tenant.tenantId, tenant.userId, 'settlement', 2);
    expect(byReason(rows, 'reservation')).toHaveLength(2);
    expect(byReason(rows, 'release')).toEqual([]);
    expect(await balanceOf(t, tenant.tenantId, tenant.userId)).toBe(balance - 30);
    expect(await ledgerSum([t], tenant.tenantId, tenant.userId)).toBe(balance - 30);
  });
});
