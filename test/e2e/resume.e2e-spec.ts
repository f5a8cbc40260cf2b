import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenLedgerService } from '../../src/quota/ledger/token-ledger.service.js';
import { expectStreamConforms } from '../utils/conformance.js';
import {
  createTestApp,
  createTestApps,
  hasRedis,
  type TestApp,
  type TestAppGroup,
} from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { addMember, admin, setupTenant, type TenantSetup } from '../utils/factories.js';
import { parseSse, sseRequest, type SseEvent } from '../utils/sse-client.js';
import { UpstreamSimulator, type SimAnswer } from '../utils/upstream-simulator.js';

/**
 * Resumable streams (contract section 8): every frame of a stream goes to a log in the store; a
 * client that lost the connection gets the rest with `GET .../chat/completions/:id/stream` and
 * `Last-Event-ID`, on any instance; a generation nobody resumes is stopped after the grace period.
 */

const GRACE_MS = 2000;
const ENV = {
  RESUME_GRACE_MS: String(GRACE_MS),
  STREAM_FIRST_EVENT_WAIT_MS: '150',
  STREAM_HEARTBEAT_MS: '100',
};
const hi = { messages: [{ role: 'user', content: 'Tell me a long story' }], stream: true };

/** About 3.5 s of answer: longer than the grace period, so resuming readers must keep it alive. */
const WORDS = Array.from({ length: 35 }, (_v, i) => `w${i + 1}`);
const slowAnswer = (): SimAnswer => ({ kind: 'text', text: WORDS.join(' '), interChunkDelayMs: 100 });

interface Chunk {
  id: string;
  choices: Array<{ delta: Record<string, unknown>; finish_reason: string | null }>;
  _conversation?: { id: string };
  error?: { code: string };
}

const payload = (e: SseEvent): Chunk | '[DONE]' =>
  e.data === '[DONE]' ? '[DONE]' : (JSON.parse(e.data) as Chunk);

/** What two runs of the same scripted answer share (chunk ids, `created` and conversation ids differ). */
function shape(events: SseEvent[]): unknown[] {
  return events.map((e) => {
    const p = payload(e);
    if (p === '[DONE]') return { id: e.id, done: true };
    if (p.error) return { id: e.id, error: p.error.code };
    return {
      id: e.id,
      conversation: p._conversation !== undefined,
      choices: p.choices.map((c) => ({ delta: c.delta, finish_reason: c.finish_reason })),
    };
  });
}

const contentOf = (events: SseEvent[]): string =>
  events
    .map(payload)
    .map((p) => {
      const content = p === '[DONE]' ? undefined : p.choices?.[0]?.delta.content;
      return typeof content === 'string' ? content : '';
    })
    .join('');

const contentEvents = (events: SseEvent[]): number =>
  events.filter((e) => {
    const p = payload(e);
    return p !== '[DONE]' && typeof p.choices?.[0]?.delta.content === 'string';
  }).length;

function completionIdOf(events: SseEvent[]): string {
  const first = payload(events[0]);
  if (first === '[DONE]') throw new Error('no chunk');
  return first.id;
}

function conversationIdOf(events: SseEvent[]): string {
  for (const e of events) {
    const p = payload(e);
    if (p !== '[DONE]' && p._conversation) return p._conversation.id;
  }
  throw new Error('no _conversation frame');
}

/**
 * Starts a stream (or, with `resuming`, resumes one after that event) and reads it until `enough`
 * says so, then drops the connection.
 */
async function readThenDrop(
  url: string,
  token: string,
  enough: (events: SseEvent[]) => boolean,
  resuming?: { id: string; lastEventId: string },
): Promise<SseEvent[]> {
  const abort = new AbortController();
  const res = resuming
    ? await fetch(resumeUrl(url, resuming.id), {
        headers: { Authorization: `Bearer ${token}`, 'Last-Event-ID': resuming.lastEventId },
        signal: abort.signal,
      })
    : await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify(hi),
        signal: abort.signal,
      });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = '';
  while (!enough(events)) {
    const { value, done } = await reader.read();
    if (done) throw new Error('the stream ended before the client meant to drop it');
    buffer += decoder.decode(value, { stream: true });
    const end = buffer.lastIndexOf('\n\n');
    if (end < 0) continue;
    events.push(...parseSse(buffer.slice(0, end + 2)).events);
    buffer = buffer.slice(end + 2);
  }
  abort.abort();
  await reader.cancel().catch(() => undefined);
  return events;
}

const resumeUrl = (url: string, id: string, tenantId?: string) =>
  `${url}${tenantId ? `/${tenantId}` : ''}/v1/chat/completions/${id}/stream`;

function resume(url: string, id: string, token: string, lastEventId?: string) {
  return sseRequest(resumeUrl(url, id), {
    method: 'GET',
    token,
    headers: lastEventId === undefined ? {} : { 'Last-Event-ID': lastEventId },
  });
}

/**
 * Drops a slow stream on `first` after three content deltas, resumes it on `second` from the last
 * event seen, and checks the two parts make exactly the reference run: no gap, no duplicate.
 */
async function dropAndResume(sim: UpstreamSimulator, first: TestApp, second: TestApp, tenant: TenantSetup) {
  sim.enqueue(slowAnswer());
  const reference = await sseRequest(`${first.url}/v1/chat/completions`, { token: tenant.token, body: hi });
  expect(reference.status).toBe(200);
  expect(reference.payloads.at(-1)).toBe('[DONE]');

  sim.enqueue(slowAnswer());
  const before = await readThenDrop(first.url, tenant.token, (events) => contentEvents(events) >= 3);
  const id = completionIdOf(before);
  const resumed = await resume(second.url, id, tenant.token, before.at(-1)!.id);
  expect(resumed.status).toBe(200);
  expect(resumed.headers.get('content-type')).toMatch(/^text\/event-stream/);
  expectStreamConforms(resumed.payloads);

  const all = [...before, ...resumed.events];
  expect(all.map((e) => e.id)).toEqual(all.map((_e, i) => String(i + 1)));
  expect(shape(all)).toEqual(shape(reference.events));
  expect(all.at(-1)!.data).toBe('[DONE]');
  expect(contentOf(all)).toBe(WORDS.join(' '));
  // One completion throughout.
  for (const p of all.map(payload)) if (p !== '[DONE]') expect(p.id).toBe(id);
  return { id, all };
}

describe('resumable streams, one instance (embedded defaults)', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp(ENV);
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('resumes a dropped stream from Last-Event-ID: the rest, live, with no gap or duplicate', async () => {
    const { id, all } = await dropAndResume(sim, t, t, tenant);

    // The stored answer is complete: the resumed generation was not stopped.
    const conversationId = conversationIdOf(all);
    await expect
      .poll(async () => {
        const res = await request(t.url)
          .get(`/v1/conversations/${conversationId}/messages`)
          .set('Authorization', `Bearer ${tenant.token}`);
        return (res.body as { data?: Array<{ role: string; status: string; content: string }> }).data?.at(-1);
      })
      .toMatchObject({ role: 'assistant', status: 'complete', content: WORDS.join(' ') });

    // Once finished, the whole log replays (no Last-Event-ID, or 0), ids and data as they were sent.
    for (const lastEventId of [undefined, '0']) {
      const replay = await resume(t.url, id, tenant.token, lastEventId);
      expect(replay.status).toBe(200);
      expect(replay.events).toEqual(all);
    }
  });

  it('replays a finished stream after ?after=N, on the tenant-scoped route too; Last-Event-ID wins', async () => {
    sim.enqueue({ kind: 'text', text: 'one two three four', chunks: ['one', ' two', ' three', ' four'] });
    const live = await sseRequest(`${t.url}/v1/chat/completions`, { token: tenant.token, body: hi });
    expect(live.payloads.at(-1)).toBe('[DONE]');
    const id = completionIdOf(live.events);

    const after = await sseRequest(`${resumeUrl(t.url, id)}?after=3`, { method: 'GET', token: tenant.token });
    expect(after.status).toBe(200);
    expect(after.events).toEqual(live.events.slice(3));

    const scoped = await sseRequest(`${resumeUrl(t.url, id, tenant.tenantId)}?after=1`, {
      method: 'GET',
      token: tenant.token,
      headers: { 'Last-Event-ID': '4' },
    });
    expect(scoped.status).toBe(200);
    expect(scoped.events).toEqual(live.events.slice(4));

    // After `[DONE]` there is nothing left: 204, which also tells EventSource to stop reconnecting.
    const done = await request(t.url)
      .get(`/v1/chat/completions/${id}/stream`)
      .set('Authorization', `Bearer ${tenant.token}`)
      .set('Last-Event-ID', live.events.at(-1)!.id!);
    expect(done.status).toBe(204);
    expect(done.text).toBe('');
  });

  it('replays an error frame and [DONE] with the ids the client saw', async () => {
    sim.enqueue({ kind: 'stream_error', afterChunks: 2, message: 'upstream broke', text: 'a b c d' });
    const live = await sseRequest(`${t.url}/v1/chat/completions`, { token: tenant.token, body: hi });
    expect(live.status).toBe(200);
    expect(live.payloads.at(-2)).toMatchObject({ error: { code: expect.any(String) } });
    expect(live.payloads.at(-1)).toBe('[DONE]');
    const replay = await resume(t.url, completionIdOf(live.events), tenant.token, '1');
    expect(replay.events).toEqual(live.events.slice(1));
    expectStreamConforms(replay.payloads);
  });

  it("answers 404 for someone else's completion, another tenant's and unknown ids", async () => {
    sim.enqueue({ kind: 'text', text: 'private words' });
    const live = await sseRequest(`${t.url}/v1/chat/completions`, { token: tenant.token, body: hi });
    const id = completionIdOf(live.events);
    const get = (path: string, token: string) =>
      request(t.url).get(path).set('Authorization', `Bearer ${token}`).set('Last-Event-ID', '1');

    // Another member of the same tenant.
    const colleague = await addMember(t, tenant.tenantId);
    expectErrorEnvelope(await get(`/v1/chat/completions/${id}/stream`, colleague.token), 404, 'not_found');
    expectErrorEnvelope(
      await get(`/${tenant.tenantId}/v1/chat/completions/${id}/stream`, colleague.token),
      404,
      'not_found',
    );

    // The same user, through another tenant they belong to.
    const other = await setupTenant(t, { baseUrl: sim.baseUrl });
    const member = await admin(t).put(`/admin/tenants/${other.tenantId}/members/${tenant.userId}`, {
      role: 'member',
    });
    expect(member.status).toBeLessThan(300);
    expectErrorEnvelope(
      await get(`/${other.tenantId}/v1/chat/completions/${id}/stream`, tenant.token),
      404,
      'not_found',
    );
    // ...while the owner still gets it.
    expect((await get(`/${tenant.tenantId}/v1/chat/completions/${id}/stream`, tenant.token)).status).toBe(
      200,
    );

    for (const unknown of ['chatcmpl-doesnotexist', 'not-a-completion-id', id.slice(0, -1)]) {
      expectErrorEnvelope(
        await get(`/v1/chat/completions/${unknown}/stream`, tenant.token),
        404,
        'not_found',
      );
    }
  });

  it('answers 400 invalid_value for a Last-Event-ID or ?after= that is not an event id', async () => {
    const base = `/v1/chat/completions/chatcmpl-whatever/stream`;
    const auth = `Bearer ${tenant.token}`;
    expectErrorEnvelope(
      await request(t.url).get(base).set('Authorization', auth).set('Last-Event-ID', 'abc'),
      400,
      'invalid_value',
      'Last-Event-ID',
    );
    expectErrorEnvelope(
      await request(t.url).get(`${base}?after=-2`).set('Authorization', auth),
      400,
      'invalid_value',
      'after',
    );
    expectErrorEnvelope(
      await request(t.url).get(`${base}?after=1&after=2`).set('Authorization', auth),
      400,
      'invalid_value',
      'after',
    );
  });

  it('answers 400 before any frame for a position past the end of a running stream', async () => {
    sim.enqueue(slowAnswer());
    const before = await readThenDrop(t.url, tenant.token, (events) => contentEvents(events) >= 2);
    const past = String(Number(before.at(-1)!.id) + 500);
    const res = await request(t.url)
      .get(`/v1/chat/completions/${completionIdOf(before)}/stream?after=${past}`)
      .set('Authorization', `Bearer ${tenant.token}`);
    expectErrorEnvelope(res, 400, 'invalid_value', 'Last-Event-ID');
    expect(res.body.error.message).toBe('Last-Event-ID is past the end of the stream.');
    // The generation goes on for a client that asks from where it really was.
    const resumed = await resume(t.url, completionIdOf(before), tenant.token, before.at(-1)!.id);
    expect(resumed.status).toBe(200);
    expect(resumed.payloads.at(-1)).toBe('[DONE]');
  });

  it('stops a stream nobody resumes after the grace period, storing the partial answer and settling usage', async () => {
    const user = await addMember(t, tenant.tenantId);
    const balancePath = `/admin/tenants/${tenant.tenantId}/users/${user.userId}/balance`;
    const balance = async () => (await admin(t).get(balancePath)).body.balance as number;
    const initial = await balance();

    const long = Array.from({ length: 100 }, (_v, i) => `x${i + 1}`).join(' '); // about 10 s
    sim.enqueue({ kind: 'text', text: long, interChunkDelayMs: 100 });
    const abortedBefore = sim.aborted;
    const before = await readThenDrop(t.url, user.token, (events) => contentEvents(events) >= 2);
    const dropped = Date.now();
    const id = completionIdOf(before);
    const reserved = initial - (await balance());
    expect(reserved).toBeGreaterThan(0);

    // Still running within the grace period, stopped after it.
    await sim.waitForAborted(abortedBefore + 1, GRACE_MS + 4000);
    expect(Date.now() - dropped).toBeGreaterThanOrEqual(GRACE_MS - 100);

    // What was generated until then is in the log, closed by an error frame and [DONE].
    const replay = await resume(t.url, id, user.token);
    expect(replay.status).toBe(200);
    expect(replay.events.slice(0, before.length)).toEqual(before);
    expect(replay.payloads.at(-2)).toMatchObject({ error: { code: 'stream_abandoned' } });
    expect(replay.payloads.at(-1)).toBe('[DONE]');
    expectStreamConforms(replay.payloads);
    const partial = contentOf(replay.events);
    expect(long.startsWith(partial)).toBe(true);
    expect(partial.length).toBeGreaterThan(contentOf(before).length);
    expect(partial.length).toBeLessThan(long.length);

    // The partial answer is stored as incomplete...
    const conversationId = conversationIdOf(before);
    await expect
      .poll(async () => {
        const res = await request(t.url)
          .get(`/v1/conversations/${conversationId}/messages`)
          .set('Authorization', `Bearer ${user.token}`);
        return (res.body as { data?: unknown[] }).data?.at(-1);
      })
      .toMatchObject({ role: 'assistant', status: 'incomplete', content: partial });

    // ...and usage settled: charged something, less than the reservation; the ledger agrees.
    await expect.poll(balance).not.toBe(initial - reserved);
    const final = await balance();
    expect(final).toBeLessThan(initial);
    expect(final).toBeGreaterThan(initial - reserved);
    await t.app.get(TokenLedgerService).flush();
    const ledger = await admin(t).get(`/admin/tenants/${tenant.tenantId}/users/${user.userId}/ledger`);
    expect(ledger.status).toBe(200);
    const rows = ledger.body.data as Array<{ delta: number; reason: string; completion_id: string | null }>;
    expect(rows.reduce((sum, r) => sum + r.delta, 0)).toBe(final);
    const mine = rows.filter((r) => r.completion_id === id);
    expect(mine.map((r) => r.reason).sort()).toEqual(['reservation', 'settlement']);
    expect(mine.reduce((sum, r) => sum + r.delta, 0)).toBe(final - initial);
  });
});

describe('resumable streams: the grace period after a resumed client left', () => {
  const LONG_GRACE_MS = 8000;
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp({ ...ENV, RESUME_GRACE_MS: String(LONG_GRACE_MS) });
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });

  it('runs on for the whole grace period from when the last reader left, not from the first drop', async () => {
    const long = Array.from({ length: 200 }, (_v, i) => `x${i + 1}`).join(' '); // about 20 s
    sim.enqueue({ kind: 'text', text: long, interChunkDelayMs: 100 });
    const before = await readThenDrop(t.url, tenant.token, (events) => contentEvents(events) >= 2);
    const dropped = Date.now();
    // A client that comes back at once, reads a little and drops again (its lease then expires
    // long before the grace period that started with the first drop is over).
    const again = await readThenDrop(t.url, tenant.token, (events) => contentEvents(events) >= 5, {
      id: completionIdOf(before),
      lastEventId: before.at(-1)!.id!,
    });
    expect(again.length).toBeGreaterThan(0);
    const left = Date.now();
    await new Promise((resolve) => setTimeout(resolve, dropped + LONG_GRACE_MS + 1500 - Date.now()));
    // Past the grace period of the first drop, within the one of the second: still generating.
    expect(left - dropped).toBeLessThan(1500);
    expect(sim.aborted).toBe(0);
  }, 30_000);
});

describe('resumable streams at shutdown', () => {
  // A longer timeout: the test starts its own app, and the embedded database alone can take 10 s to
  // start on a loaded machine.
  it('stops a generation nobody reads at once instead of waiting out its grace period', async () => {
    const sim = await UpstreamSimulator.start();
    const t = await createTestApp({ ...ENV, RESUME_GRACE_MS: '60000', SHUTDOWN_GRACE_MS: '20000' });
    let closed = false;
    try {
      const tenant = await setupTenant(t, { baseUrl: sim.baseUrl });
      sim.enqueue({ kind: 'text', text: WORDS.join(' '), interChunkDelayMs: 500 });
      await readThenDrop(t.url, tenant.token, (events) => contentEvents(events) >= 1);
      // The server has seen the client go (the request is counted when its connection closes).
      await expect
        .poll(async () => (await request(t.url).get('/metrics')).text)
        .toMatch(/parley_http_requests_total\{method="POST",route="[^"]*chat\/completions",status="200"\} 1/);
      const started = Date.now();
      await t.close();
      closed = true;
      await sim.waitForAborted(1, 1000);
      // Neither the grace period (60 s) nor the shutdown bound (20 s) was waited for.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      if (!closed) await t.close();
      await sim.stop();
    }
  }, 60_000);
});

describe.skipIf(!hasRedis)('resumable streams across instances (Redis)', () => {
  let group: TestAppGroup;
  let a: TestApp;
  let b: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    group = await createTestApps(2, ENV);
    [a, b] = group.apps;
    tenant = await setupTenant(a, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await group?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('resumes on instance B a stream dropped on instance A, with no gap or duplicate', async () => {
    const { id, all } = await dropAndResume(sim, a, b, tenant);
    // Either instance replays the finished log.
    for (const app of [a, b]) expect((await resume(app.url, id, tenant.token, '0')).events).toEqual(all);
  });

  it("answers 404 on B for someone else's completion from A", async () => {
    sim.enqueue({ kind: 'text', text: 'private words' });
    const live = await sseRequest(`${a.url}/v1/chat/completions`, { token: tenant.token, body: hi });
    const colleague = await addMember(a, tenant.tenantId);
    const res = await request(b.url)
      .get(`/v1/chat/completions/${completionIdOf(live.events)}/stream`)
      .set('Authorization', `Bearer ${colleague.token}`);
    expectErrorEnvelope(res, 404, 'not_found');
  });
});
