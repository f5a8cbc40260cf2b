import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectConforms, expectStreamConforms } from '../utils/conformance.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { setupTenant, type TenantSetup } from '../utils/factories.js';
import { sseRequest } from '../utils/sse-client.js';
import { UpstreamSimulator } from '../utils/upstream-simulator.js';

interface Chunk {
  id: string;
  object: string;
  choices: Array<{ index: number; delta: Record<string, unknown>; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

const chunks = (payloads: unknown[]) =>
  payloads.filter((p): p is Chunk => typeof p === 'object' && p !== null && 'choices' in p);
const text = (payloads: unknown[]) =>
  chunks(payloads)
    .map((c) => (typeof c.choices[0]?.delta.content === 'string' ? c.choices[0].delta.content : ''))
    .join('');

describe('POST /v1/chat/completions (SSE)', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;
  const hi = { messages: [{ role: 'user', content: 'Hello there' }], stream: true };
  const stream = (body: object, token = tenant.token) =>
    sseRequest(`${t.url}/v1/chat/completions`, { token, body });

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    // No resume grace period here: a client going away stops the generation at once (test/e2e/
    // resume.e2e-spec.ts covers the grace period).
    t = await createTestApp({
      STREAM_FIRST_EVENT_WAIT_MS: '150',
      STREAM_HEARTBEAT_MS: '100',
      RESUME_GRACE_MS: '0',
    });
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('streams role, deltas, the final chunk and [DONE], numbered from 1, with SSE headers', async () => {
    sim.enqueue({ kind: 'text', text: 'One two three', chunks: ['One', ' two', ' three'] });
    const res = await stream(hi);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('connection')).toBe('keep-alive');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(res.events.map((e) => e.id)).toEqual(res.events.map((_e, i) => String(i + 1)));
    expect(res.payloads.at(-1)).toBe('[DONE]');
    expectStreamConforms(res.payloads);

    // The contract's plain order: `_conversation` (a chunk with no choices), deltas, final, [DONE].
    const [first] = chunks(res.payloads);
    expect(first).toMatchObject({
      object: 'chat.completion.chunk',
      choices: [],
      _conversation: { id: expect.any(String) },
    });
    const body = chunks(res.payloads).slice(1);
    expect(body[0].choices[0].delta.role).toBe('assistant');
    expect(text(res.payloads)).toBe('One two three');
    expect(body.at(-1)!.choices[0].finish_reason).toBe('stop');
    expect(body.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    expect(new Set(body.map((c) => c.id)).size).toBe(1);
    expect(body[0].id).toMatch(/^chatcmpl-/);
    // No usage for a client that did not ask, though Parley asks the provider for it.
    expect(body.every((c) => !('usage' in c))).toBe(true);
    expect(sim.lastRequest()!.body.stream_options).toEqual({ include_usage: true });
  });

  it('ends with a usage chunk with empty choices when include_usage is set', async () => {
    sim.enqueue({ kind: 'text', text: 'Hi', usage: { prompt_tokens: 9, completion_tokens: 1 } });
    const res = await stream({ ...hi, stream_options: { include_usage: true } });
    expectStreamConforms(res.payloads);
    const last = chunks(res.payloads).at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 });
    expect(res.payloads.at(-1)).toBe('[DONE]');
  });

  it('streams tool call deltas as OpenAI does, with finish_reason tool_calls', async () => {
    sim.enqueue({
      kind: 'tool_calls',
      calls: [
        { id: 'call_9', name: 'lookup', arguments: '{"q":"paris"}', fragments: ['{"q"', ':"par', 'is"}'] },
      ],
    });
    const res = await stream({ ...hi, tools: [{ type: 'function', function: { name: 'lookup' } }] });
    expectStreamConforms(res.payloads);
    const calls = chunks(res.payloads).flatMap(
      (c) => (c.choices[0]?.delta.tool_calls as Array<{ function: { arguments: string } }>) ?? [],
    );
    expect(calls.map((c) => c.function.arguments).join('')).toBe('{"q":"paris"}');
    expect(chunks(res.payloads).at(-1)!.choices[0].finish_reason).toBe('tool_calls');
  });

  it('streams to the client with provider_stream false, calling the provider without streaming', async () => {
    sim.enqueue({ kind: 'text', text: 'Whole answer', usage: { prompt_tokens: 4, completion_tokens: 2 } });
    const res = await stream({ ...hi, provider_stream: false, stream_options: { include_usage: true } });
    expect(sim.lastRequest()!.stream).toBe(false);
    expectStreamConforms(res.payloads);
    expect(text(res.payloads)).toBe('Whole answer');
    expect(chunks(res.payloads)[1].choices[0].delta.role).toBe('assistant');
    expect(chunks(res.payloads).at(-1)!.usage).toMatchObject({ total_tokens: 6 });
    expect(res.payloads.at(-1)).toBe('[DONE]');
  });

  it('answers an upstream failure before the first event with its real status', async () => {
    sim.enqueue({ kind: 'error', status: 429, message: 'Upstream busy', headers: { 'retry-after': '3' } });
    const res = await stream(hi);
    expect(res.status).toBe(429);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expectConforms('ErrorResponse', JSON.parse(res.text));
    expect(JSON.parse(res.text).error.message).toBe('Upstream busy');
  });

  it('answers an upstream 5xx before the first event with 502', async () => {
    sim.enqueue({ kind: 'error', status: 503, message: 'down' });
    const res = await stream(hi);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.code).toBe('upstream_error');
  });

  it('ends a stream that fails after it started with one error frame and [DONE]', async () => {
    sim.enqueue({
      kind: 'stream_error',
      afterChunks: 2,
      message: 'model overloaded',
      text: 'partial answer here',
    });
    const res = await stream(hi);
    expect(res.status).toBe(200);
    expectStreamConforms(res.payloads);
    const [errorFrame, done] = res.payloads.slice(-2);
    expect(done).toBe('[DONE]');
    expect(errorFrame).toMatchObject({ error: { type: 'upstream_error', code: 'upstream_error' } });
    expect((errorFrame as { error: { message: string } }).error.message).toContain('model overloaded');
    expect(res.events.map((e) => e.id)).toEqual(res.events.map((_e, i) => String(i + 1)));
  });

  it('turns a stream the upstream cut short into upstream_stream_truncated', async () => {
    sim.enqueue({ kind: 'truncate', afterChunks: 2, text: 'this will be cut off' });
    const res = await stream(hi);
    expect(res.status).toBe(200);
    const [errorFrame, done] = res.payloads.slice(-2);
    expect(errorFrame).toMatchObject({ error: { code: 'upstream_stream_truncated' } });
    expect(done).toBe('[DONE]');
  });

  it("ends a stream whose upstream falls silent with upstream_timeout after the provider's timeout", async () => {
    const slow = await setupTenant(t, { baseUrl: sim.baseUrl, provider: { timeout_ms: 300 } });
    sim.enqueue({
      kind: 'stall',
      afterChunks: 2,
      text: 'silent right here',
      chunks: ['silent', ' right', ' here'],
    });
    const started = Date.now();
    const res = await stream(hi, slow.token);
    expect(res.status).toBe(200);
    expectStreamConforms(res.payloads);
    expect(text(res.payloads)).toBe('silent right');
    const [errorFrame, done] = res.payloads.slice(-2);
    expect(errorFrame).toMatchObject({ error: { code: 'upstream_timeout', type: 'timeout_error' } });
    expect(done).toBe('[DONE]');
    expect(Date.now() - started).toBeLessThan(5_000);
    await sim.waitForAborted(1);
  });

  it('sends the headers after the first-event wait and pings while the upstream is silent', async () => {
    sim.enqueue({ kind: 'text', text: 'late', delayMs: 1500 });
    const res = await stream(hi);
    expect(res.status).toBe(200);
    expect(res.comments.length).toBeGreaterThanOrEqual(2);
    expect(res.comments.every((c) => c === ': ping')).toBe(true);
    expect(text(res.payloads)).toBe('late');
  });

  it('answers with an error frame when the upstream fails after the first-event wait', async () => {
    sim.enqueue({ kind: 'error', status: 500, message: 'late failure', delayMs: 1400 });
    const res = await stream(hi);
    expect(res.status).toBe(200);
    expect(res.payloads).toEqual([{ error: expect.objectContaining({ code: 'upstream_error' }) }, '[DONE]']);
  });

  it('aborts the upstream request within 100 ms of the client going away', async () => {
    // One second between upstream chunks: noticing the disconnect only on the next chunk would
    // take about a second. The best of three runs is what is asserted, as other test files share
    // the CPU.
    const delays: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      sim.enqueue({ kind: 'text', text: 'a b c d e f g h', interChunkDelayMs: 1000 });
      const abort = new AbortController();
      const res = await fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${tenant.token}` },
        body: JSON.stringify(hi),
        signal: abort.signal,
      });
      await res.body!.getReader().read();
      const before = sim.aborted;
      const started = Date.now();
      abort.abort();
      const seen = await sim.waitForAborted(before + 1, 900).then(
        () => true,
        () => false,
      );
      delays.push(seen ? Date.now() - started : Infinity);
    }
    expect(Math.min(...delays)).toBeLessThan(100);
  });
});
