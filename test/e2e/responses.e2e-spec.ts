import OpenAI, { APIError } from 'openai';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectConforms, expectStreamConforms } from '../utils/conformance.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { admin, setupTenant, type TenantSetup } from '../utils/factories.js';
import { balanceOf } from '../utils/quota.js';
import { sseRequest, type SseResponse } from '../utils/sse-client.js';
import { UpstreamSimulator, type RecordedRequest } from '../utils/upstream-simulator.js';

// Issue 8: a tenant whose provider speaks the Responses wire (POST /v1/responses) is used exactly
// like any other through POST /v1/chat/completions.

interface Chunk {
  id: string;
  object: string;
  choices: Array<{ index: number; delta: Record<string, unknown>; finish_reason: string | null }>;
  usage?: Record<string, unknown> | null;
  _conversation?: ConversationBlock;
}

interface ConversationBlock {
  id: string;
  assistant_message_id: string;
}

interface ToolCallDelta {
  index: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

const chunks = (payloads: unknown[]) =>
  payloads.filter((p): p is Chunk => typeof p === 'object' && p !== null && 'choices' in p);
/** The chunks that carry a choice (not `_conversation`, not the usage chunk). */
const choiceChunks = (payloads: unknown[]) => chunks(payloads).filter((c) => c.choices.length > 0);
const streamedText = (payloads: unknown[]) =>
  choiceChunks(payloads)
    .map((c) => (typeof c.choices[0].delta.content === 'string' ? c.choices[0].delta.content : ''))
    .join('');
const conversationOf = (res: SseResponse) =>
  chunks(res.payloads).find((c) => c._conversation)!._conversation!;

/** A user message as the Responses wire carries it. */
const userItem = (text: string) => ({
  type: 'message',
  role: 'user',
  content: [{ type: 'input_text', text }],
});

const MODELS = [
  { id: 'sim-small', context_length: 8192, capabilities: { reasoning: false } },
  { id: 'sim-reasoner', context_length: 128000, capabilities: { reasoning: true } },
];

describe('a Responses API provider (POST /v1/responses upstream)', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;

  const post = (body: object, token = tenant.token) =>
    request(t.url).post('/v1/chat/completions').set('Authorization', `Bearer ${token}`).send(body);
  const stream = (body: object, token = tenant.token) =>
    sseRequest(`${t.url}/v1/chat/completions`, { token, body: { ...body, stream: true } });
  const hi = { model: 'sim-small', messages: [{ role: 'user', content: 'Hello there' }] };
  const upstream = (i: number): RecordedRequest => sim.requests[i];

  /** Waits until the turn's assistant message is stored (the write is off the answer's path). */
  const stored = async (block: ConversationBlock, token = tenant.token) => {
    await expect
      .poll(
        async () => {
          const res = await request(t.url)
            .get(`/v1/conversations/${block.id}/messages`)
            .set('Authorization', `Bearer ${token}`);
          return (res.body as { data: Array<{ id: string }> }).data.some(
            (m) => m.id === block.assistant_message_id,
          );
        },
        { timeout: 5_000, interval: 20 },
      )
      .toBe(true);
  };

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp();
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl, kind: 'responses', models: MODELS });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  describe('answers', () => {
    it('answers plain text as a chat.completion (JSON)', async () => {
      sim.enqueue({
        kind: 'text',
        text: 'Hello from Responses.',
        usage: { prompt_tokens: 12, completion_tokens: 4 },
      });
      const res = await post(hi);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expectConforms('CreateChatCompletionResponse', res.body);
      expect(res.body).toMatchObject({
        object: 'chat.completion',
        model: 'sim-small',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'Hello from Responses.', refusal: null },
            finish_reason: 'stop',
            logprobs: null,
          },
        ],
        usage: {
          prompt_tokens: 12,
          completion_tokens: 4,
          total_tokens: 16,
          completion_tokens_details: { reasoning_tokens: 0 },
        },
        _conversation: { id: expect.any(String) },
      });
      expect(res.body.id).toMatch(/^chatcmpl-/);

      expect(sim.requestCount).toBe(1);
      const sent = upstream(0);
      expect(sent).toMatchObject({ method: 'POST', path: '/v1/responses', wire: 'responses', stream: false });
      expect(sent.body).toMatchObject({ model: 'sim-small', input: [userItem('Hello there')] });
      expect(sent.body).not.toHaveProperty('messages');
      expect(sent.body).not.toHaveProperty('previous_response_id');
    });

    it('streams role, deltas, the final chunk, the usage chunk and [DONE]; every frame conforms', async () => {
      sim.enqueue({
        kind: 'text',
        text: 'One two three',
        chunks: ['One', ' two', ' three'],
        usage: { prompt_tokens: 9, completion_tokens: 3 },
      });
      const res = await stream({ ...hi, stream_options: { include_usage: true } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expectStreamConforms(res.payloads);
      expect(res.events.map((e) => e.id)).toEqual(res.events.map((_e, i) => String(i + 1)));
      expect(res.payloads.at(-1)).toBe('[DONE]');

      const all = chunks(res.payloads);
      expect(all[0]).toMatchObject({ choices: [], _conversation: { id: expect.any(String) } });
      const body = all.slice(1);
      expect(body[0].choices[0].delta.role).toBe('assistant');
      expect(streamedText(res.payloads)).toBe('One two three');
      expect(body.map((c) => c.choices[0]?.delta.content).filter((c) => c)).toEqual([
        'One',
        ' two',
        ' three',
      ]);
      const final = body.at(-2)!;
      expect(final.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
      expect(body.slice(0, -2).every((c) => c.choices[0].finish_reason === null)).toBe(true);
      const usage = body.at(-1)!;
      expect(usage.choices).toEqual([]);
      expect(usage.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
      expect(new Set(all.map((c) => c.id)).size).toBe(1);
      expect(all[0].id).toMatch(/^chatcmpl-/);

      const sent = upstream(0);
      expect(sent).toMatchObject({ path: '/v1/responses', stream: true });
      // A Responses stream always ends with its usage: there is nothing to ask for.
      expect(sent.body).not.toHaveProperty('stream_options');
    });

    it('leaves the usage chunk out of a stream that did not ask for it', async () => {
      sim.enqueue({ kind: 'text', text: 'No usage here' });
      const res = await stream(hi);
      expectStreamConforms(res.payloads);
      expect(chunks(res.payloads).every((c) => !('usage' in c))).toBe(true);
      expect(choiceChunks(res.payloads).at(-1)!.choices[0].finish_reason).toBe('stop');
      expect(res.payloads.at(-1)).toBe('[DONE]');
    });

    it('reports reasoning tokens in usage.completion_tokens_details, JSON and streamed', async () => {
      const answer = {
        kind: 'text' as const,
        text: 'Thought it through.',
        usage: { prompt_tokens: 20, completion_tokens: 50 },
        reasoningTokens: 42,
      };
      sim.enqueue(answer, answer);
      const json = await post({ ...hi, model: 'sim-reasoner' });
      expect(json.status).toBe(200);
      expectConforms('CreateChatCompletionResponse', json.body);
      expect(json.body.usage).toMatchObject({
        prompt_tokens: 20,
        completion_tokens: 50,
        total_tokens: 70,
        completion_tokens_details: { reasoning_tokens: 42 },
      });

      const streamed = await stream({
        ...hi,
        model: 'sim-reasoner',
        stream_options: { include_usage: true },
      });
      expectStreamConforms(streamed.payloads);
      expect(chunks(streamed.payloads).at(-1)!.usage).toMatchObject({
        total_tokens: 70,
        completion_tokens_details: { reasoning_tokens: 42 },
      });
    });
  });

  describe('tool calls', () => {
    const lookup = {
      type: 'function',
      function: {
        name: 'lookup',
        description: 'Looks a city up.',
        parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
      },
    };

    it('returns a client tool call in the message with finish_reason tool_calls (JSON)', async () => {
      sim.enqueue({
        kind: 'tool_calls',
        calls: [{ id: 'call_c1', name: 'lookup', arguments: '{"q":"paris"}' }],
      });
      const res = await post({ ...hi, tools: [lookup], tool_choice: 'auto' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expectConforms('CreateChatCompletionResponse', res.body);
      expect(res.body.choices[0]).toMatchObject({
        finish_reason: 'tool_calls',
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_c1', type: 'function', function: { name: 'lookup', arguments: '{"q":"paris"}' } },
          ],
        },
      });
      expect(upstream(0).body).toMatchObject({
        tools: [
          {
            type: 'function',
            name: 'lookup',
            description: 'Looks a city up.',
            parameters: lookup.function.parameters,
            strict: false,
          },
        ],
        tool_choice: 'auto',
      });
    });

    it('streams client tool call deltas with a stable index per call', async () => {
      sim.enqueue({
        kind: 'tool_calls',
        calls: [
          { id: 'call_a', name: 'lookup', arguments: '{"q":"paris"}', fragments: ['{"q"', ':"par', 'is"}'] },
          { id: 'call_b', name: 'lookup', arguments: '{"q":"rome"}', fragments: ['{"q":', '"rome"}'] },
        ],
      });
      const res = await stream({ ...hi, tools: [lookup] });
      expect(res.status).toBe(200);
      expectStreamConforms(res.payloads);
      const deltas = choiceChunks(res.payloads).flatMap(
        (c) => (c.choices[0].delta.tool_calls as ToolCallDelta[] | undefined) ?? [],
      );
      const byIndex = new Map<number, ToolCallDelta[]>();
      for (const d of deltas) byIndex.set(d.index, [...(byIndex.get(d.index) ?? []), d]);
      expect([...byIndex.keys()]).toEqual([0, 1]);
      for (const [index, expected] of [
        [0, { id: 'call_a', args: '{"q":"paris"}' }],
        [1, { id: 'call_b', args: '{"q":"rome"}' }],
      ] as const) {
        const [first, ...rest] = byIndex.get(index)!;
        // The first delta of a call names it; the others carry only argument pieces.
        expect(first).toMatchObject({ id: expected.id, type: 'function', function: { name: 'lookup' } });
        expect(rest.every((d) => d.id === undefined && d.function?.name === undefined)).toBe(true);
        expect(
          byIndex
            .get(index)!
            .map((d) => d.function?.arguments ?? '')
            .join(''),
        ).toBe(expected.args);
      }
      const finals = choiceChunks(res.payloads).filter((c) => c.choices[0].finish_reason !== null);
      expect(finals.map((c) => c.choices[0].finish_reason)).toEqual(['tool_calls']);
      expect(res.payloads.at(-1)).toBe('[DONE]');
    });

    it('runs the server tool loop: the second request carries the function_call and its output', async () => {
      sim.enqueue(
        { kind: 'tool_calls', calls: [{ id: 'call_t1', name: 'get_time', arguments: '{"timezone":"UTC"}' }] },
        { kind: 'text', text: 'It is noon in UTC.' },
      );
      const res = await post({
        ...hi,
        messages: [{ role: 'user', content: 'What time is it?' }],
        tools: ['get_time'],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expectConforms('CreateChatCompletionResponse', res.body);
      expect(res.body.choices[0]).toMatchObject({
        finish_reason: 'stop',
        message: { content: 'It is noon in UTC.' },
      });
      expect(res.body.tool_events.map((e: { type: string }) => e.type)).toEqual([
        'tool_call',
        'tool_output',
        'text',
      ]);

      expect(sim.requestCount).toBe(2);
      expect(upstream(0).body.tools).toEqual([
        expect.objectContaining({ type: 'function', name: 'get_time' }),
      ]);
      const input = upstream(1).body.input as Array<Record<string, unknown>>;
      expect(upstream(1).path).toBe('/v1/responses');
      expect(input[0]).toEqual(userItem('What time is it?'));
      expect(input[1]).toEqual({
        type: 'function_call',
        call_id: 'call_t1',
        name: 'get_time',
        arguments: '{"timezone":"UTC"}',
      });
      expect(input[2]).toMatchObject({ type: 'function_call_output', call_id: 'call_t1' });
      expect(input[2].output).toEqual(expect.any(String));
      expect(input[2].output).toBe(res.body.tool_events[1].value.output);
      expect(input).toHaveLength(3);
    });

    it('streams the server tool loop: tool_calls chunk, tool_output, final chunk, _conversation', async () => {
      sim.enqueue(
        { kind: 'tool_calls', calls: [{ id: 'call_s1', name: 'get_time', arguments: '{}' }] },
        { kind: 'text', text: 'Done.' },
      );
      const res = await stream({ ...hi, tools: ['get_time'] });
      expect(res.status).toBe(200);
      expectStreamConforms(res.payloads);
      const body = choiceChunks(res.payloads);
      expect(
        body.some(
          (c) => (c.choices[0].delta.tool_calls as ToolCallDelta[] | undefined)?.[0]?.id === 'call_s1',
        ),
      ).toBe(true);
      expect(body.some((c) => c.choices[0].delta.tool_output)).toBe(true);
      expect(
        body.filter((c) => c.choices[0].finish_reason !== null).map((c) => c.choices[0].finish_reason),
      ).toEqual(['stop']);
      expect(chunks(res.payloads).at(-1)!._conversation).toBeDefined();
      expect(res.payloads.at(-1)).toBe('[DONE]');
      const input = upstream(1).body.input as Array<Record<string, unknown>>;
      expect(input.map((i) => i.type)).toEqual(['message', 'function_call', 'function_call_output']);
    });
  });

  describe('request mapping', () => {
    it('maps response_format json_schema into text.format with name, schema and strict', async () => {
      const schema = {
        type: 'object',
        properties: { name: { type: 'string' }, age: { type: 'integer' } },
        required: ['name', 'age'],
        additionalProperties: false,
      };
      sim.enqueue({ kind: 'text', text: '{"name":"Ada","age":36}' });
      const res = await post({
        ...hi,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'person', description: 'A person.', schema, strict: true },
        },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.choices[0].message.content).toBe('{"name":"Ada","age":36}');
      expect(upstream(0).body.text).toEqual({
        format: { type: 'json_schema', name: 'person', description: 'A person.', schema, strict: true },
      });
      expect(upstream(0).body).not.toHaveProperty('response_format');
    });

    it('maps reasoning_effort into reasoning.effort (and drops it for a model without reasoning)', async () => {
      sim.enqueue({ kind: 'text', text: 'ok' }, { kind: 'text', text: 'ok' });
      expect((await post({ ...hi, model: 'sim-reasoner', reasoning_effort: 'high' })).status).toBe(200);
      expect(upstream(0).body.reasoning).toEqual({ effort: 'high' });
      expect(upstream(0).body).not.toHaveProperty('reasoning_effort');

      expect((await post({ ...hi, reasoning_effort: 'high' })).status).toBe(200);
      expect(upstream(1).body).not.toHaveProperty('reasoning');
    });

    it('sends system and developer messages as instructions, the rest as input', async () => {
      sim.enqueue({ kind: 'text', text: 'Bonjour.' });
      const res = await post({
        ...hi,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: 'Answer in French.' },
          { role: 'user', content: 'Hello' },
        ],
      });
      expect(res.status).toBe(200);
      const body = upstream(0).body;
      expect(body.instructions).toEqual(expect.stringContaining('Be brief.'));
      expect(body.instructions).toEqual(expect.stringContaining('Answer in French.'));
      expect(body.input).toEqual([userItem('Hello')]);
    });

    it('maps the other common fields: max_completion_tokens, temperature, top_p, user, metadata', async () => {
      sim.enqueue({ kind: 'text', text: 'ok' });
      const res = await post({
        ...hi,
        max_completion_tokens: 100,
        temperature: 0.2,
        top_p: 0.9,
        user: 'end-user-1',
        metadata: { k: 'v' },
        n: 1,
        logprobs: false,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(upstream(0).body).toMatchObject({
        max_output_tokens: 100,
        temperature: 0.2,
        top_p: 0.9,
        user: 'end-user-1',
        metadata: { k: 'v' },
      });
      for (const key of ['max_completion_tokens', 'n', 'logprobs'])
        expect(upstream(0).body).not.toHaveProperty(key);
    });

    it.each([
      ['n', { n: 2 }],
      ['logprobs', { logprobs: true }],
      ['stop', { stop: ['END'] }],
      ['seed', { seed: 7 }],
      ['frequency_penalty', { frequency_penalty: 0.5 }],
    ])(
      'answers 400 naming `%s` when it has no Responses mapping, with no upstream call',
      async (param, extra) => {
        const json = await post({ ...hi, ...extra });
        expectErrorEnvelope(json, 400, 'unsupported_parameter', param);
        expectConforms('ErrorResponse', json.body);
        expect(json.body.error.message).toContain(param);

        const streamed = await stream({ ...hi, ...extra });
        expect(streamed.status).toBe(400);
        expect(streamed.headers.get('content-type')).toMatch(/^application\/json/);
        expect(JSON.parse(streamed.text)).toMatchObject({ error: { code: 'unsupported_parameter', param } });
        expect(sim.requestCount).toBe(0);
      },
    );

    it('stores no conversation for a request rejected for an unmappable field', async () => {
      const marker = `never stored ${Date.now()}`;
      const res = await post({ ...hi, messages: [{ role: 'user', content: marker }], n: 3 });
      expect(res.status).toBe(400);
      const list = await request(t.url)
        .get('/v1/conversations?limit=100')
        .set('Authorization', `Bearer ${tenant.token}`);
      expect(list.status).toBe(200);
      for (const c of list.body.data as Array<{ id: string }>) {
        const messages = await request(t.url)
          .get(`/v1/conversations/${c.id}/messages`)
          .set('Authorization', `Bearer ${tenant.token}`);
        expect(JSON.stringify(messages.body)).not.toContain(marker);
      }
    });
  });

  describe('upstream failures', () => {
    it('ends a stream whose upstream sends an error event with one error frame, then [DONE]', async () => {
      sim.enqueue({
        kind: 'stream_error',
        afterChunks: 2,
        message: 'model overloaded',
        text: 'partial answer here',
      });
      const res = await stream(hi);
      expect(res.status).toBe(200);
      expectStreamConforms(res.payloads);
      expect(streamedText(res.payloads)).toBe('partial answer ');
      const [errorFrame, done] = res.payloads.slice(-2);
      expect(done).toBe('[DONE]');
      expect(errorFrame).toMatchObject({
        error: { type: 'upstream_error', code: 'upstream_error', param: null },
      });
      expect((errorFrame as { error: { message: string } }).error.message).toContain('model overloaded');
      expect(res.payloads.filter((p) => typeof p === 'object' && p !== null && 'error' in p)).toHaveLength(1);
    });

    it('answers an upstream error before the first event with its real status (stream and JSON)', async () => {
      sim.enqueue(
        { kind: 'error', status: 429, message: 'Upstream busy' },
        { kind: 'error', status: 400, message: 'Bad thing', code: 'invalid_value', param: 'input' },
        { kind: 'error', status: 503, message: 'down' },
      );
      const busy = await stream(hi);
      expect(busy.status).toBe(429);
      expect(busy.headers.get('content-type')).toMatch(/^application\/json/);
      expectConforms('ErrorResponse', JSON.parse(busy.text));
      expect(JSON.parse(busy.text).error.message).toBe('Upstream busy');

      const bad = await post(hi);
      expect(bad.status).toBe(400);
      expectConforms('ErrorResponse', bad.body);
      expect(bad.body.error.message).toBe('Bad thing');

      const down = await stream(hi);
      expect(down.status).toBe(502);
      expect(JSON.parse(down.text).error.code).toBe('upstream_error');
    });

    it('ends a stream the upstream cut short with an upstream_stream_truncated error frame', async () => {
      sim.enqueue({ kind: 'truncate', afterChunks: 2, text: 'cut off right here' });
      const res = await stream(hi);
      expect(res.status).toBe(200);
      expectStreamConforms(res.payloads);
      expect(streamedText(res.payloads)).toBe('cut off ');
      const [errorFrame, done] = res.payloads.slice(-2);
      expect(errorFrame).toMatchObject({ error: { code: 'upstream_stream_truncated' } });
      expect(done).toBe('[DONE]');
      expect(choiceChunks(res.payloads).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    });

    it("ends a stream whose upstream falls silent with upstream_timeout after the provider's timeout", async () => {
      const slow = await setupTenant(t, {
        baseUrl: sim.baseUrl,
        kind: 'responses',
        models: MODELS,
        provider: { timeout_ms: 300 },
      });
      sim.enqueue({ kind: 'stall', afterChunks: 2, text: 'silent right here' });
      const res = await stream(hi, slow.token);
      expect(res.status).toBe(200);
      expectStreamConforms(res.payloads);
      expect(streamedText(res.payloads)).toBe('silent right ');
      const [errorFrame, done] = res.payloads.slice(-2);
      expect(errorFrame).toMatchObject({ error: { code: 'upstream_timeout', type: 'timeout_error' } });
      expect(done).toBe('[DONE]');
      await sim.waitForAborted(1);
    });
  });

  describe('chaining turns with previous_response_id', () => {
    it('sends previous_response_id and only the new turn, with the instructions resent', async () => {
      sim.enqueue({ kind: 'text', text: 'Noted, Ada.' }, { kind: 'text', text: 'Your name is Ada.' });
      const first = await stream({
        ...hi,
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'My name is Ada.' },
        ],
      });
      expect(first.status).toBe(200);
      const conversation = conversationOf(first);
      await stored(conversation);
      expect(upstream(0).body).not.toHaveProperty('previous_response_id');

      const second = await post({
        ...hi,
        conversation_id: conversation.id,
        messages: [{ role: 'user', content: 'What is my name?' }],
      });
      expect(second.status, JSON.stringify(second.body)).toBe(200);
      expect(second.body.choices[0].message.content).toBe('Your name is Ada.');
      expect(second.body._conversation.id).toBe(conversation.id);
      expect(upstream(1).body.previous_response_id).toBe(upstream(0).answerId);
      expect(upstream(1).body.previous_response_id).toMatch(/^resp_/);
      expect(upstream(1).body.input).toEqual([userItem('What is my name?')]);
      expect(upstream(1).body.instructions).toBe('You are terse.');
      expect(upstream(1).body.store).not.toBe(false);

      // The JSON answer's id chains the third turn in turn.
      sim.enqueue({ kind: 'text', text: 'Bye.' });
      await stored(second.body._conversation);
      const third = await stream({
        ...hi,
        conversation_id: conversation.id,
        messages: [{ role: 'user', content: 'Bye' }],
      });
      expect(third.status).toBe(200);
      expect(upstream(2).body.previous_response_id).toBe(upstream(1).answerId);
      expect(upstream(2).body.input).toEqual([userItem('Bye')]);
      expect(upstream(2).body.instructions).toBe('You are terse.');
    });

    it('chains from the last response of a server tool loop', async () => {
      sim.enqueue(
        { kind: 'tool_calls', calls: [{ id: 'call_l1', name: 'get_time', arguments: '{}' }] },
        { kind: 'text', text: 'It is noon.' },
        { kind: 'text', text: 'You are welcome.' },
      );
      const first = await post({
        ...hi,
        messages: [{ role: 'user', content: 'Time?' }],
        tools: ['get_time'],
      });
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      await stored(first.body._conversation);
      const second = await post({
        ...hi,
        conversation_id: first.body._conversation.id,
        messages: [{ role: 'user', content: 'Thanks' }],
      });
      expect(second.status, JSON.stringify(second.body)).toBe(200);
      expect(upstream(2).body.previous_response_id).toBe(upstream(1).answerId);
      expect(upstream(2).body.input).toEqual([userItem('Thanks')]);
    });

    it('sends only the tool result after a client tool call', async () => {
      sim.enqueue(
        { kind: 'tool_calls', calls: [{ id: 'call_w', name: 'weather', arguments: '{"city":"Oslo"}' }] },
        { kind: 'text', text: 'It is 4°C in Oslo.' },
      );
      const tools = [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }];
      const first = await post({ ...hi, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools });
      expect(first.body.choices[0].finish_reason).toBe('tool_calls');
      await stored(first.body._conversation);
      const second = await post({
        ...hi,
        tools,
        conversation_id: first.body._conversation.id,
        messages: [{ role: 'tool', tool_call_id: 'call_w', content: '{"tempC":4}' }],
      });
      expect(second.status, JSON.stringify(second.body)).toBe(200);
      expect(second.body.choices[0].message.content).toBe('It is 4°C in Oslo.');
      expect(upstream(1).body.previous_response_id).toBe(upstream(0).answerId);
      expect(upstream(1).body.input).toEqual([
        { type: 'function_call_output', call_id: 'call_w', output: '{"tempC":4}' },
      ]);
    });

    it('sends the whole history again after a turn that failed midway', async () => {
      sim.enqueue(
        { kind: 'text', text: 'Fine.' },
        { kind: 'stream_error', afterChunks: 1, message: 'overloaded', text: 'Half an answer' },
        { kind: 'text', text: 'Recovered.' },
      );
      const first = await post({ ...hi, messages: [{ role: 'user', content: 'One' }] });
      expect(first.status).toBe(200);
      const conversation = first.body._conversation as ConversationBlock;
      await stored(conversation);
      const failed = await stream({
        ...hi,
        conversation_id: conversation.id,
        messages: [{ role: 'user', content: 'Two' }],
      });
      expect(failed.payloads.at(-2)).toMatchObject({ error: { code: 'upstream_error' } });
      await stored(conversationOf(failed));
      expect(upstream(1).body.previous_response_id).toBe(upstream(0).answerId);

      const third = await post({
        ...hi,
        conversation_id: conversation.id,
        messages: [{ role: 'user', content: 'Three' }],
      });
      expect(third.status, JSON.stringify(third.body)).toBe(200);
      // The failed response is no base to continue from: the stored turns (the cut answer too) go again.
      expect(upstream(2).body).not.toHaveProperty('previous_response_id');
      expect(upstream(2).body.input).toEqual([
        userItem('One'),
        { type: 'message', role: 'assistant', content: 'Fine.' },
        userItem('Two'),
        { type: 'message', role: 'assistant', content: 'Half ' },
        userItem('Three'),
      ]);
    });

    it('forwards a client-supplied previous_response_id as is', async () => {
      sim.enqueue({ kind: 'text', text: 'ok' }, { kind: 'text', text: 'ok' });
      const json = await post({ ...hi, previous_response_id: 'resp_client_123' });
      expect(json.status).toBe(200);
      expect(upstream(0).body.previous_response_id).toBe('resp_client_123');
      expect(upstream(0).body.input).toEqual([userItem('Hello there')]);

      const streamed = await stream({ ...hi, previous_response_id: 'resp_client_456' });
      expect(streamed.status).toBe(200);
      expect(upstream(1).body.previous_response_id).toBe('resp_client_456');
    });

    it('does not chain after a turn that went to another provider', async () => {
      const other = await admin(t).post(`/admin/tenants/${tenant.tenantId}/providers`, {
        name: 'second',
        kind: 'responses',
        base_url: sim.baseUrl,
        api_key: 'sk-second',
        default_model: 'sim-small',
        models: [{ id: 'sim-small', context_length: 8192 }],
      });
      expect(other.status, JSON.stringify(other.body)).toBe(201);
      const otherId = other.body.id as string;
      try {
        sim.enqueue(
          { kind: 'text', text: 'A1' },
          { kind: 'text', text: 'B2' },
          { kind: 'text', text: 'A3' },
          { kind: 'text', text: 'A4' },
        );
        const turn = async (content: string, conversationId?: string, providerId?: string) => {
          const res = await post({
            ...hi,
            messages: [{ role: 'user', content }],
            ...(conversationId ? { conversation_id: conversationId } : {}),
            ...(providerId ? { provider_id: providerId } : {}),
          });
          expect(res.status, JSON.stringify(res.body)).toBe(200);
          await stored(res.body._conversation);
          return res.body._conversation as ConversationBlock;
        };
        const conversation = await turn('one', undefined, tenant.providerId);
        await turn('two', conversation.id, otherId);
        await turn('three', conversation.id, tenant.providerId);
        await turn('four', conversation.id, tenant.providerId);

        expect(upstream(1).headers.authorization).toBe('Bearer sk-second');
        // Provider B never saw provider A's responses: the whole history goes, no id.
        expect(upstream(1).body).not.toHaveProperty('previous_response_id');
        expect((upstream(1).body.input as unknown[]).length).toBe(3);
        // Back on A, its last response does not hold B's turn: the whole history again.
        expect(upstream(2).body).not.toHaveProperty('previous_response_id');
        expect((upstream(2).body.input as unknown[]).length).toBe(5);
        // Then A chains from its own last response.
        expect(upstream(3).body.previous_response_id).toBe(upstream(2).answerId);
        expect(upstream(3).body.input).toEqual([userItem('four')]);
      } finally {
        await admin(t).delete(`/admin/tenants/${tenant.tenantId}/providers/${otherId}`);
      }
    });
  });

  describe('store', () => {
    it('asks a provider with store_responses off not to store, and never chains on it', async () => {
      const noStore = await setupTenant(t, {
        baseUrl: sim.baseUrl,
        kind: 'responses',
        models: MODELS,
        provider: { store_responses: false },
      });
      sim.enqueue({ kind: 'text', text: 'First.' }, { kind: 'text', text: 'Second.' });
      const first = await post(hi, noStore.token);
      expect(first.status).toBe(200);
      expect(upstream(0).body.store).toBe(false);
      await stored(first.body._conversation, noStore.token);
      const second = await post(
        {
          ...hi,
          conversation_id: first.body._conversation.id,
          messages: [{ role: 'user', content: 'Again' }],
        },
        noStore.token,
      );
      expect(second.status).toBe(200);
      expect(upstream(1).body.store).toBe(false);
      expect(upstream(1).body).not.toHaveProperty('previous_response_id');
      expect(upstream(1).body.input).toEqual([
        userItem('Hello there'),
        { type: 'message', role: 'assistant', content: 'First.' },
        userItem('Again'),
      ]);
    });

    it('honours a client store: false, and does not chain from the response it kept no copy of', async () => {
      sim.enqueue({ kind: 'text', text: 'Unstored.' }, { kind: 'text', text: 'Next.' });
      const first = await post({ ...hi, store: false });
      expect(first.status).toBe(200);
      expect(upstream(0).body.store).toBe(false);
      await stored(first.body._conversation);
      const second = await post({
        ...hi,
        conversation_id: first.body._conversation.id,
        messages: [{ role: 'user', content: 'Again' }],
      });
      expect(second.status).toBe(200);
      expect(upstream(1).body).not.toHaveProperty('previous_response_id');
      expect((upstream(1).body.input as unknown[]).length).toBe(3);
    });
  });

  describe('quota', () => {
    it('settles the balance to the usage the provider reported (JSON and streamed)', async () => {
      const quota = await setupTenant(t, {
        baseUrl: sim.baseUrl,
        kind: 'responses',
        models: MODELS,
        balance: 100_000,
      });
      sim.enqueue(
        { kind: 'text', text: 'Counted.', usage: { prompt_tokens: 30, completion_tokens: 12 } },
        { kind: 'text', text: 'Counted again.', usage: { prompt_tokens: 50, completion_tokens: 8 } },
      );
      expect((await post(hi, quota.token)).status).toBe(200);
      await expect
        .poll(() => balanceOf(t, quota.tenantId, quota.userId), { timeout: 5_000 })
        .toBe(100_000 - 42);
      // No usage asked for by the client: Parley still charges what the provider reported.
      const res = await stream(hi, quota.token);
      expect(res.payloads.at(-1)).toBe('[DONE]');
      await expect
        .poll(() => balanceOf(t, quota.tenantId, quota.userId), { timeout: 5_000 })
        .toBe(100_000 - 42 - 58);
    });
  });

  describe('the official openai SDK', () => {
    let client: OpenAI;
    beforeAll(() => {
      client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: tenant.token, maxRetries: 0 });
    });

    it('creates a completion without streaming', async () => {
      sim.enqueue({ kind: 'text', text: 'Bonjour!' });
      const completion = await client.chat.completions.create({
        model: 'sim-small',
        messages: [{ role: 'user', content: 'Say hi in French' }],
      });
      expectConforms('CreateChatCompletionResponse', completion);
      expect(completion.choices[0].message.content).toBe('Bonjour!');
      expect(upstream(0).path).toBe('/v1/responses');
    });

    it('surfaces an unmappable field as a BadRequestError naming it', async () => {
      const error = await client.chat.completions
        .create({ model: 'sim-small', messages: [{ role: 'user', content: 'x' }], n: 2 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as APIError).code).toBe('unsupported_parameter');
      expect((error as APIError).param).toBe('n');
      expect(sim.requestCount).toBe(0);
    });

    it('creates a streamed completion', async () => {
      sim.enqueue({
        kind: 'text',
        text: 'Streaming works fine',
        usage: { prompt_tokens: 5, completion_tokens: 3 },
      });
      const stream = await client.chat.completions.create({
        model: 'sim-small',
        messages: [{ role: 'user', content: 'stream please' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined;
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text).toBe('Streaming works fine');
      expect(finish).toBe('stop');
      expect(usage?.total_tokens).toBe(8);
      expect(upstream(0)).toMatchObject({ path: '/v1/responses', stream: true });
    });
  });
});

describe('a Chat Completions provider and previous_response_id', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp();
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl, kind: 'chat_completions' });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  const post = (body: object) =>
    request(t.url).post('/v1/chat/completions').set('Authorization', `Bearer ${tenant.token}`).send(body);

  it('never forwards previous_response_id, given or from a stored conversation', async () => {
    sim.enqueue(
      { kind: 'text', text: 'First.' },
      { kind: 'text', text: 'Second.' },
      { kind: 'text', text: 'Third.' },
    );
    const first = await post({
      messages: [{ role: 'user', content: 'One' }],
      previous_response_id: 'resp_x',
    });
    expect(first.status).toBe(200);
    expect(sim.requests[0].path).toBe('/v1/chat/completions');
    expect(sim.requests[0].body).not.toHaveProperty('previous_response_id');

    const conversationId = first.body._conversation.id as string;
    await expect
      .poll(
        async () => {
          const res = await request(t.url)
            .get(`/v1/conversations/${conversationId}/messages`)
            .set('Authorization', `Bearer ${tenant.token}`);
          return (res.body as { data: unknown[] }).data.length;
        },
        { timeout: 5_000, interval: 20 },
      )
      .toBe(2);
    const second = await post({
      conversation_id: conversationId,
      messages: [{ role: 'user', content: 'Two' }],
    });
    expect(second.status).toBe(200);
    expect(sim.requests[1].body).not.toHaveProperty('previous_response_id');
    expect(sim.requests[1].body.messages).toEqual([
      { role: 'user', content: 'One' },
      { role: 'assistant', content: 'First.' },
      { role: 'user', content: 'Two' },
    ]);

    const streamed = await sseRequest(`${t.url}/v1/chat/completions`, {
      token: tenant.token,
      body: { messages: [{ role: 'user', content: 'Three' }], stream: true, previous_response_id: 'resp_y' },
    });
    expect(streamed.status).toBe(200);
    expect(sim.requests[2].body).not.toHaveProperty('previous_response_id');
  });
});
