import OpenAI from 'openai';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectConforms, expectStreamConforms } from '../utils/conformance.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { setupTenant, type TenantSetup } from '../utils/factories.js';
import { balanceOf } from '../utils/quota.js';
import { sseRequest, type SseResponse } from '../utils/sse-client.js';
import { EXPLODE_MESSAGE, LOOKUP_ORDER_DESCRIPTION, TestToolsModule } from '../utils/test-tools.module.js';
import {
  UpstreamSimulator,
  type SimAnswer,
  type SimTextAnswer,
  type SimToolCallsAnswer,
} from '../utils/upstream-simulator.js';

// GitHub issue 7: server-side tools through POST /v1/chat/completions, streamed and not.

interface ToolCallDelta {
  index: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

interface ToolOutput {
  tool_call_id: string;
  name: string;
  output: string;
}

interface Delta {
  role?: string;
  content?: string | null;
  tool_calls?: ToolCallDelta[];
  tool_output?: ToolOutput;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface ConversationBlock {
  id: string;
  seq: number;
  assistant_message_id: string;
  user_message_id: string;
  tools_enabled: boolean;
  active_tools: string[];
}

interface Chunk {
  id: string;
  object: string;
  choices: Array<{ index: number; delta: Delta; finish_reason: string | null }>;
  usage?: Usage | null;
  _conversation?: ConversationBlock;
}

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

type ToolEvent =
  | { type: 'text'; value: string }
  | { type: 'tool_call'; value: ToolCall }
  | { type: 'tool_output'; value: ToolOutput };

interface StoredMessage {
  id: string;
  seq: number;
  role: string;
  content: unknown;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
  status: string;
}

type UpstreamMessage = Record<string, unknown>;

const chunksOf = (res: SseResponse): Chunk[] =>
  res.payloads.filter((p): p is Chunk => typeof p === 'object' && p !== null && 'choices' in p);

/** What each frame is, in order: the shape the contract's frame order is written in. */
function frameKinds(res: SseResponse): string[] {
  return res.payloads.map((p) => {
    if (p === '[DONE]') return 'done';
    if (typeof p !== 'object' || p === null) return 'unknown';
    if ('error' in p) return 'error';
    const c = p as Chunk;
    if (c._conversation) return 'conversation';
    const choice = c.choices[0];
    if (!choice) return c.usage ? 'usage' : 'empty';
    if (choice.finish_reason) return `final:${choice.finish_reason}`;
    if (choice.delta.tool_calls) return 'tool_calls';
    if (choice.delta.tool_output) return 'tool_output';
    if (typeof choice.delta.content === 'string') return 'text';
    return 'other';
  });
}

const streamedText = (res: SseResponse): string =>
  chunksOf(res)
    .map((c) => c.choices[0]?.delta.content ?? '')
    .join('');
const toolCallFrames = (res: SseResponse): ToolCallDelta[][] =>
  chunksOf(res).flatMap((c) => (c.choices[0]?.delta.tool_calls ? [c.choices[0].delta.tool_calls] : []));
const toolOutputs = (res: SseResponse): ToolOutput[] =>
  chunksOf(res).flatMap((c) => (c.choices[0]?.delta.tool_output ? [c.choices[0].delta.tool_output] : []));
const conversationOf = (res: SseResponse): ConversationBlock =>
  chunksOf(res).find((c) => c._conversation)!._conversation!;

/** The checks every streamed answer must pass: ids 1..N, valid chunks, one id, [DONE] last. */
function expectWellFormedStream(res: SseResponse): void {
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  expect(res.events.map((e) => e.id)).toEqual(res.events.map((_e, i) => String(i + 1)));
  expect(res.payloads.at(-1)).toBe('[DONE]');
  expectStreamConforms(res.payloads);
  const chunks = chunksOf(res);
  expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  expect(chunks[0].id).toMatch(/^chatcmpl-/);
  // Only the final chunk carries a finish_reason (contract 11).
  expect(chunks.filter((c) => c.choices.some((ch) => ch.finish_reason !== null))).toHaveLength(1);
  // The first chunk with a delta says who speaks; no other does.
  const withDelta = chunks.filter((c) => c.choices.length > 0);
  expect(withDelta[0].choices[0].delta.role).toBe('assistant');
  expect(withDelta.slice(1).every((c) => c.choices[0].delta.role === undefined)).toBe(true);
}

const upstreamMessages = (sim: UpstreamSimulator, i: number): UpstreamMessage[] =>
  sim.requests[i].body.messages as UpstreamMessage[];

const call = (id: string, name: string, args: string): ToolCall => ({
  id,
  type: 'function',
  function: { name, arguments: args },
});

const parseTime = (output: string) =>
  JSON.parse(output) as { timezone: string; iso: string; unix: number; weekday: string; utc_offset: string };

/** get_time's output for that zone, taken just now. */
function expectCurrentTime(output: string, timezone: string): void {
  const time = parseTime(output);
  expect(time.timezone).toBe(timezone);
  expect(time.iso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
  expect(Math.abs(time.unix - Date.now() / 1000)).toBeLessThan(60);
}

const paris = (id = 'call_paris'): SimToolCallsAnswer => ({
  kind: 'tool_calls',
  text: 'Let me check.',
  chunks: ['Let me', ' check.'],
  calls: [
    {
      id,
      name: 'get_time',
      arguments: '{"timezone":"Europe/Paris"}',
      fragments: ['{"time', 'zone":"Eu', 'rope/Par', 'is"}'],
    },
  ],
});
const noon: SimTextAnswer = {
  kind: 'text',
  text: 'It is noon in Paris.',
  chunks: ['It is noon', ' in Paris.'],
};

describe('server-side tools through POST /v1/chat/completions', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;
  const ask = (extra: object = {}) => ({
    messages: [{ role: 'user', content: 'What time is it in Paris?' }],
    tools: ['get_time'],
    ...extra,
  });
  const stream = (body: object, token = tenant.token) =>
    sseRequest(`${t.url}/v1/chat/completions`, { token, body: { ...body, stream: true } });
  const complete = (body: object, token = tenant.token) =>
    request(t.url).post('/v1/chat/completions').set('Authorization', `Bearer ${token}`).send(body);
  const messagesOf = async (conversationId: string, token = tenant.token): Promise<StoredMessage[]> => {
    const res = await request(t.url)
      .get(`/v1/conversations/${conversationId}/messages`)
      .set('Authorization', `Bearer ${token}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.data as StoredMessage[];
  };
  /** The turn's rows are written after the answer: waits until `count` messages are stored. */
  const storedMessages = async (conversationId: string, count: number): Promise<StoredMessage[]> => {
    await expect.poll(async () => (await messagesOf(conversationId)).length, { timeout: 5000 }).toBe(count);
    return messagesOf(conversationId);
  };

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp({}, { extraModules: [TestToolsModule] });
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  describe('get_time end to end', () => {
    it('streams deltas, one consolidated tool_calls chunk, tool_output, the next deltas, final, _conversation, [DONE]', async () => {
      sim.enqueue(paris(), noon);
      const res = await stream(ask());
      expectWellFormedStream(res);
      expect(frameKinds(res)).toEqual([
        'text',
        'text',
        'tool_calls',
        'tool_output',
        'text',
        'text',
        'final:stop',
        'conversation',
        'done',
      ]);
      expect(streamedText(res)).toBe('Let me check.It is noon in Paris.');

      // Whole calls, each with its index: the argument fragments are not forwarded.
      expect(toolCallFrames(res)).toEqual([
        [
          {
            index: 0,
            id: 'call_paris',
            type: 'function',
            function: { name: 'get_time', arguments: '{"timezone":"Europe/Paris"}' },
          },
        ],
      ]);
      const [output] = toolOutputs(res);
      expect(output).toMatchObject({ tool_call_id: 'call_paris', name: 'get_time' });
      expectCurrentTime(output.output, 'Europe/Paris');

      const conversationChunk = chunksOf(res).find((c) => c._conversation)!;
      expect(conversationChunk.choices).toEqual([]);
      expect(conversationChunk._conversation).toMatchObject({
        id: expect.any(String),
        tools_enabled: true,
        active_tools: ['get_time'],
      });

      // The model's second call carries its tool call and the result.
      expect(sim.requestCount).toBe(2);
      const [first, second] = [upstreamMessages(sim, 0), upstreamMessages(sim, 1)];
      expect(first).toEqual([{ role: 'user', content: 'What time is it in Paris?' }]);
      expect(second).toEqual([
        ...first,
        {
          role: 'assistant',
          content: 'Let me check.',
          tool_calls: [call('call_paris', 'get_time', '{"timezone":"Europe/Paris"}')],
        },
        { role: 'tool', tool_call_id: 'call_paris', content: output.output },
      ]);
      for (const r of sim.requests) {
        expect((r.body.tools as Array<{ function: { name: string } }>).map((s) => s.function.name)).toEqual([
          'get_time',
        ]);
      }
    });

    it('answers JSON with the final message, tool_events in order and _conversation', async () => {
      sim.enqueue(paris(), noon);
      const res = await complete(ask());
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expectConforms('CreateChatCompletionResponse', res.body);
      expect(res.body.id).toMatch(/^chatcmpl-/);
      expect(res.body.choices).toEqual([
        {
          index: 0,
          logprobs: null,
          finish_reason: 'stop',
          message: { role: 'assistant', content: 'It is noon in Paris.', refusal: null },
        },
      ]);
      const events = res.body.tool_events as ToolEvent[];
      expect(events.map((e) => e.type)).toEqual(['text', 'tool_call', 'tool_output', 'text']);
      expect(events[0]).toEqual({ type: 'text', value: 'Let me check.' });
      expect(events[1]).toEqual({
        type: 'tool_call',
        value: call('call_paris', 'get_time', '{"timezone":"Europe/Paris"}'),
      });
      const output = events[2].value as ToolOutput;
      expect(output).toMatchObject({ tool_call_id: 'call_paris', name: 'get_time' });
      expectCurrentTime(output.output, 'Europe/Paris');
      expect(events[3]).toEqual({ type: 'text', value: 'It is noon in Paris.' });
      expect(res.body._conversation).toMatchObject({ id: expect.any(String), tools_enabled: true });

      expect(sim.requestCount).toBe(2);
      expect(sim.requests.every((r) => !r.stream)).toBe(true);
      expect(upstreamMessages(sim, 1).slice(1)).toEqual([
        {
          role: 'assistant',
          content: 'Let me check.',
          tool_calls: [call('call_paris', 'get_time', '{"timezone":"Europe/Paris"}')],
        },
        { role: 'tool', tool_call_id: 'call_paris', content: output.output },
      ]);
    });

    it('lets the model answer once the tools have answered, when tool_choice forced a call (streamed and not)', async () => {
      for (const toolChoice of ['required', { type: 'function', function: { name: 'get_time' } }]) {
        for (const stream of [false, true]) {
          sim.reset();
          sim.enqueue(paris(), noon);
          const body = ask({ tool_choice: toolChoice, stream });
          const res = stream
            ? await sseRequest(`${t.url}/v1/chat/completions`, { token: tenant.token, body })
            : await complete(body);
          expect(res.status).toBe(200);
          expect(sim.requests.map((r) => r.body.tool_choice)).toEqual([toolChoice, 'auto']);
        }
      }
    });

    it('runs a call without arguments as {} (streamed and not)', async () => {
      const bare: SimAnswer = {
        kind: 'tool_calls',
        calls: [{ id: 'call_bare', name: 'get_time', arguments: '' }],
      };
      sim.enqueue(bare, noon);
      const streamed = await stream(ask());
      expectWellFormedStream(streamed);
      expect(frameKinds(streamed)).toEqual([
        'tool_calls',
        'tool_output',
        'text',
        'text',
        'final:stop',
        'conversation',
        'done',
      ]);
      expect(toolCallFrames(streamed)[0][0].function).toEqual({ name: 'get_time', arguments: '{}' });
      const [output] = toolOutputs(streamed);
      expectCurrentTime(output.output, 'UTC');
      expect(upstreamMessages(sim, 1).at(-2)).toEqual({
        role: 'assistant',
        content: null,
        tool_calls: [call('call_bare', 'get_time', '{}')],
      });

      sim.reset();
      sim.enqueue(bare, noon);
      const json = await complete(ask());
      expect(json.status).toBe(200);
      expectConforms('CreateChatCompletionResponse', json.body);
      const events = json.body.tool_events as ToolEvent[];
      expect(events[0]).toEqual({ type: 'tool_call', value: call('call_bare', 'get_time', '{}') });
      expectCurrentTime((events[1].value as ToolOutput).output, 'UTC');
      expect(upstreamMessages(sim, 1).at(-2)).toEqual({
        role: 'assistant',
        content: null,
        tool_calls: [call('call_bare', 'get_time', '{}')],
      });
    });

    it('runs two calls of one turn, in order, and numbers the calls of later iterations on', async () => {
      sim.enqueue(
        {
          kind: 'tool_calls',
          calls: [
            { id: 'call_a', name: 'get_time', arguments: '{"timezone":"Asia/Tokyo"}' },
            {
              id: 'call_b',
              name: 'calculator',
              arguments: '{"expression":"6*7"}',
              fragments: ['{"expr', 'ession":"6*7"}'],
            },
          ],
        },
        {
          kind: 'tool_calls',
          calls: [{ id: 'call_c', name: 'calculator', arguments: '{"expression":"42/2"}' }],
        },
        { kind: 'text', text: 'Done.' },
      );
      const res = await stream(ask({ tools: ['get_time', 'calculator'] }));
      expectWellFormedStream(res);
      expect(frameKinds(res)).toEqual([
        'tool_calls',
        'tool_output',
        'tool_output',
        'tool_calls',
        'tool_output',
        'text',
        'final:stop',
        'conversation',
        'done',
      ]);
      const frames = toolCallFrames(res);
      expect(frames[0]).toEqual([
        {
          index: 0,
          id: 'call_a',
          type: 'function',
          function: { name: 'get_time', arguments: '{"timezone":"Asia/Tokyo"}' },
        },
        {
          index: 1,
          id: 'call_b',
          type: 'function',
          function: { name: 'calculator', arguments: '{"expression":"6*7"}' },
        },
      ]);
      // Indexes stay unique over the whole stream, so a client accumulating by index keeps every call.
      expect(frames[1]).toEqual([
        {
          index: 2,
          id: 'call_c',
          type: 'function',
          function: { name: 'calculator', arguments: '{"expression":"42/2"}' },
        },
      ]);
      const outputs = toolOutputs(res);
      expect(outputs.map((o) => [o.tool_call_id, o.name])).toEqual([
        ['call_a', 'get_time'],
        ['call_b', 'calculator'],
        ['call_c', 'calculator'],
      ]);
      expectCurrentTime(outputs[0].output, 'Asia/Tokyo');
      expect(JSON.parse(outputs[1].output)).toEqual({ expression: '6*7', result: 42 });
      expect(JSON.parse(outputs[2].output)).toEqual({ expression: '42/2', result: 21 });

      expect(sim.requestCount).toBe(3);
      expect(upstreamMessages(sim, 2).slice(1)).toEqual([
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            call('call_a', 'get_time', '{"timezone":"Asia/Tokyo"}'),
            call('call_b', 'calculator', '{"expression":"6*7"}'),
          ],
        },
        { role: 'tool', tool_call_id: 'call_a', content: outputs[0].output },
        { role: 'tool', tool_call_id: 'call_b', content: outputs[1].output },
        {
          role: 'assistant',
          content: null,
          tool_calls: [call('call_c', 'calculator', '{"expression":"42/2"}')],
        },
        { role: 'tool', tool_call_id: 'call_c', content: outputs[2].output },
      ]);
    });
  });

  describe('failures the model sees, and the loop goes on', () => {
    it('gives a throwing tool\'s error to the model as "Tool <name> failed: <message>"', async () => {
      const explode: SimAnswer = {
        kind: 'tool_calls',
        calls: [{ id: 'call_x', name: 'explode', arguments: '{}' }],
      };
      const expected = `Tool explode failed: ${EXPLODE_MESSAGE}`;
      sim.enqueue(explode, { kind: 'text', text: 'The tool failed, sorry.' });
      const res = await stream(ask({ tools: ['explode'] }));
      expectWellFormedStream(res);
      expect(toolOutputs(res)).toEqual([{ tool_call_id: 'call_x', name: 'explode', output: expected }]);
      expect(streamedText(res)).toBe('The tool failed, sorry.');
      expect(sim.requestCount).toBe(2);
      expect(upstreamMessages(sim, 1).at(-1)).toEqual({
        role: 'tool',
        tool_call_id: 'call_x',
        content: expected,
      });

      sim.reset();
      sim.enqueue(explode, { kind: 'text', text: 'The tool failed, sorry.' });
      const json = await complete(ask({ tools: ['explode'] }));
      expect(json.status).toBe(200);
      expectConforms('CreateChatCompletionResponse', json.body);
      expect(json.body.choices[0].message.content).toBe('The tool failed, sorry.');
      expect(json.body.tool_events[1]).toEqual({
        type: 'tool_output',
        value: { tool_call_id: 'call_x', name: 'explode', output: expected },
      });
    });

    it('answers an unknown tool name, a tool the request did not enable and invalid JSON arguments with error outputs the model sees', async () => {
      const script = (): SimAnswer[] => [
        {
          kind: 'tool_calls',
          calls: [
            { id: 'call_ghost', name: 'teleport', arguments: '{"to":"Mars"}' },
            // Registered, but this request enabled only get_time.
            { id: 'call_calc', name: 'calculator', arguments: '{"expression":"1+1"}' },
            {
              id: 'call_bad',
              name: 'get_time',
              arguments: '{"timezone": "UTC"',
              fragments: ['{"timezone":', ' "UTC"'],
            },
          ],
        },
        { kind: 'text', text: 'I could not do that.', chunks: ['I could not', ' do that.'] },
      ];
      const expectOutputs = (outputs: ToolOutput[]) => {
        expect(outputs).toHaveLength(3);
        expect(outputs[0]).toEqual({
          tool_call_id: 'call_ghost',
          name: 'teleport',
          output: 'Tool teleport failed: no such tool',
        });
        expect(outputs[1]).toEqual({
          tool_call_id: 'call_calc',
          name: 'calculator',
          output: 'Tool calculator failed: no such tool',
        });
        expect(outputs[2]).toMatchObject({ tool_call_id: 'call_bad', name: 'get_time' });
        expect(outputs[2].output).toMatch(/^Tool get_time failed: arguments are not valid JSON: .+/);
        expect(upstreamMessages(sim, 1).slice(-3)).toEqual([
          { role: 'tool', tool_call_id: 'call_ghost', content: outputs[0].output },
          { role: 'tool', tool_call_id: 'call_calc', content: outputs[1].output },
          { role: 'tool', tool_call_id: 'call_bad', content: outputs[2].output },
        ]);
      };

      sim.enqueue(...script());
      const res = await stream(ask());
      expectWellFormedStream(res);
      expect(frameKinds(res)).toEqual([
        'tool_calls',
        'tool_output',
        'tool_output',
        'tool_output',
        'text',
        'text',
        'final:stop',
        'conversation',
        'done',
      ]);
      expect(sim.requestCount).toBe(2);
      expectOutputs(toolOutputs(res));
      expect(streamedText(res)).toBe('I could not do that.');

      sim.reset();
      sim.enqueue(...script());
      const json = await complete(ask());
      expect(json.status).toBe(200);
      expect(json.body.choices[0]).toMatchObject({
        finish_reason: 'stop',
        message: { content: 'I could not do that.' },
      });
      expect(sim.requestCount).toBe(2);
      expectOutputs(
        (json.body.tool_events as ToolEvent[]).flatMap((e) => (e.type === 'tool_output' ? [e.value] : [])),
      );
    });
  });

  describe('the 10-iteration cap', () => {
    const again: SimAnswer = {
      kind: 'tool_calls',
      text: 'Again. ',
      calls: [{ name: 'get_time', arguments: '{}' }],
    };

    it('stops a stream after exactly 10 upstream calls with [Maximum iterations reached]', async () => {
      sim.setDefault(again);
      const res = await stream(ask());
      expectWellFormedStream(res);
      expect(sim.requestCount).toBe(10);
      // Nine iterations ran their tool; the tenth's call is not run.
      expect(toolCallFrames(res)).toHaveLength(9);
      expect(toolOutputs(res)).toHaveLength(9);
      expect(streamedText(res)).toBe(`${'Again. '.repeat(10)}[Maximum iterations reached]`);
      expect(frameKinds(res).slice(-5)).toEqual(['text', 'text', 'final:stop', 'conversation', 'done']);
      // Each call sees every earlier iteration.
      expect(upstreamMessages(sim, 9)).toHaveLength(1 + 2 * 9);
    });

    it('stops a JSON answer after exactly 10 upstream calls with [Maximum iterations reached]', async () => {
      sim.setDefault(again);
      const res = await complete(ask());
      expect(res.status).toBe(200);
      expectConforms('CreateChatCompletionResponse', res.body);
      expect(sim.requestCount).toBe(10);
      expect(res.body.choices[0].finish_reason).toBe('stop');
      expect(res.body.choices[0].message.content).toMatch(/\[Maximum iterations reached\]$/);
      expect(res.body.choices[0].message).not.toHaveProperty('tool_calls');
      const events = res.body.tool_events as ToolEvent[];
      expect(events.filter((e) => e.type === 'tool_call')).toHaveLength(9);
      expect(events.filter((e) => e.type === 'tool_output')).toHaveLength(9);
      expect(events.at(-1)).toEqual({ type: 'text', value: '[Maximum iterations reached]' });
    });
  });

  describe('which tools run', () => {
    const weatherSpec = {
      type: 'function',
      function: {
        name: 'lookup_weather',
        description: 'Runs on the client',
        parameters: { type: 'object', properties: { city: { type: 'string' } } },
      },
    };
    const weatherCall: SimAnswer = {
      kind: 'tool_calls',
      calls: [
        {
          id: 'call_w',
          name: 'lookup_weather',
          arguments: '{"city":"Oslo"}',
          fragments: ['{"city"', ':"Oslo"}'],
        },
      ],
    };

    it('returns a client-defined tool called inside the loop to the client, not run (stream)', async () => {
      sim.enqueue(paris(), weatherCall);
      const res = await stream(ask({ tools: ['get_time', weatherSpec] }));
      expectWellFormedStream(res);
      expect(frameKinds(res)).toEqual([
        'text',
        'text',
        'tool_calls',
        'tool_output',
        'tool_calls',
        'final:tool_calls',
        'conversation',
        'done',
      ]);
      expect(toolCallFrames(res)[1]).toEqual([
        {
          index: 1,
          id: 'call_w',
          type: 'function',
          function: { name: 'lookup_weather', arguments: '{"city":"Oslo"}' },
        },
      ]);
      expect(toolOutputs(res).map((o) => o.name)).toEqual(['get_time']);
      expect(sim.requestCount).toBe(2);
      // The client's spec went upstream as given, beside the registered one.
      expect(sim.requests[0].body.tools).toEqual([
        expect.objectContaining({ function: expect.objectContaining({ name: 'get_time' }) }),
        weatherSpec,
      ]);
    });

    it('returns a client-defined tool called inside the loop to the client, not run (JSON)', async () => {
      sim.enqueue(paris(), weatherCall);
      const res = await complete(ask({ tools: ['get_time', weatherSpec] }));
      expect(res.status).toBe(200);
      expectConforms('CreateChatCompletionResponse', res.body);
      expect(res.body.choices[0]).toMatchObject({
        finish_reason: 'tool_calls',
        message: { role: 'assistant', tool_calls: [call('call_w', 'lookup_weather', '{"city":"Oslo"}')] },
      });
      expect((res.body.tool_events as ToolEvent[]).map((e) => e.type)).toEqual([
        'text',
        'tool_call',
        'tool_output',
        'tool_call',
      ]);
      expect(sim.requestCount).toBe(2);
    });

    it('discovers and runs a tool a module outside src/tools provides', async () => {
      sim.enqueue(
        {
          kind: 'tool_calls',
          calls: [{ id: 'call_o', name: 'lookup_order', arguments: '{"order_id":"A-17"}' }],
        },
        { kind: 'text', text: 'Your order shipped.' },
      );
      const res = await stream(
        ask({ tools: ['lookup_order'], messages: [{ role: 'user', content: 'Where is A-17?' }] }),
      );
      expectWellFormedStream(res);
      expect(sim.requests[0].body.tools).toEqual([
        {
          type: 'function',
          function: {
            name: 'lookup_order',
            description: LOOKUP_ORDER_DESCRIPTION,
            parameters: {
              type: 'object',
              properties: { order_id: { type: 'string', minLength: 1 } },
              required: ['order_id'],
              additionalProperties: false,
            },
          },
        },
      ]);
      const [output] = toolOutputs(res);
      expect(output.name).toBe('lookup_order');
      expect(JSON.parse(output.output)).toEqual({
        order_id: 'A-17',
        status: 'shipped',
        tenant: tenant.tenantId,
        user: tenant.userId,
      });
      expect(streamedText(res)).toBe('Your order shipped.');
    });

    it('runs a full spec naming a registered tool server-side, with the registered schema', async () => {
      sim.enqueue(
        {
          kind: 'tool_calls',
          calls: [{ id: 'call_k', name: 'calculator', arguments: '{"expression":"2^10"}' }],
        },
        { kind: 'text', text: '1024.' },
      );
      const spoof = {
        type: 'function',
        function: { name: 'calculator', description: 'My own calculator', parameters: { type: 'object' } },
      };
      const res = await complete(ask({ tools: [spoof] }));
      expect(res.status).toBe(200);
      expectConforms('CreateChatCompletionResponse', res.body);
      const sentSpec = (
        sim.requests[0].body.tools as Array<{ function: { description: string; parameters: object } }>
      )[0];
      expect(sentSpec.function.description).not.toBe('My own calculator');
      expect(sentSpec.function.parameters).toMatchObject({ required: ['expression'] });
      expect(res.body.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: '1024.' } });
      expect(res.body.tool_events).toContainEqual({
        type: 'tool_output',
        value: { tool_call_id: 'call_k', name: 'calculator', output: '{"expression":"2^10","result":1024}' },
      });
      expect(sim.requestCount).toBe(2);
    });
  });

  describe('storage', () => {
    it('stores the tool calls, one tool message per call with its status, and the final answer; turn 2 replays them', async () => {
      sim.enqueue(
        {
          kind: 'tool_calls',
          text: 'Checking.',
          calls: [
            { id: 'call_t', name: 'get_time', arguments: '{}' },
            { id: 'call_e', name: 'explode', arguments: '' },
          ],
        },
        { kind: 'text', text: 'It is noon; the other tool failed.' },
      );
      const res = await stream(ask({ tools: ['get_time', 'explode'] }));
      expectWellFormedStream(res);
      const block = conversationOf(res);
      const outputs = toolOutputs(res);

      const stored = await storedMessages(block.id, 5);
      expect(stored.map((m) => [m.seq, m.role, m.status])).toEqual([
        [1, 'user', 'complete'],
        [2, 'assistant', 'complete'],
        [3, 'tool', 'success'],
        [4, 'tool', 'error'],
        [5, 'assistant', 'complete'],
      ]);
      const calls = [call('call_t', 'get_time', '{}'), call('call_e', 'explode', '{}')];
      expect(stored[1]).toMatchObject({ content: 'Checking.', tool_calls: calls });
      expect(stored[2]).toMatchObject({
        tool_call_id: 'call_t',
        name: 'get_time',
        content: outputs[0].output,
      });
      expect(stored[3]).toMatchObject({
        tool_call_id: 'call_e',
        name: 'explode',
        content: `Tool explode failed: ${EXPLODE_MESSAGE}`,
      });
      expect(stored[4]).toMatchObject({ content: 'It is noon; the other tool failed.' });
      expect(stored[4]).not.toHaveProperty('tool_calls');
      // The block announced the final message's id and seq.
      expect(block).toMatchObject({
        assistant_message_id: stored[4].id,
        seq: 5,
        user_message_id: stored[0].id,
      });

      sim.enqueue({ kind: 'text', text: 'You are welcome.' });
      const next = await complete({
        conversation_id: block.id,
        messages: [{ role: 'user', content: 'Thanks' }],
        tools: ['get_time', 'explode'],
      });
      expect(next.status, JSON.stringify(next.body)).toBe(200);
      expect(next.body._conversation).toMatchObject({ id: block.id, seq: 7 });
      expect(upstreamMessages(sim, 2)).toEqual([
        { role: 'user', content: 'What time is it in Paris?' },
        { role: 'assistant', content: 'Checking.', tool_calls: calls },
        { role: 'tool', tool_call_id: 'call_t', content: outputs[0].output },
        { role: 'tool', tool_call_id: 'call_e', content: outputs[1].output },
        { role: 'assistant', content: 'It is noon; the other tool failed.' },
        { role: 'user', content: 'Thanks' },
      ]);
    });

    it('stores the JSON path the same way', async () => {
      sim.enqueue(paris('call_j'), noon);
      const res = await complete(ask());
      expect(res.status).toBe(200);
      const block = res.body._conversation as ConversationBlock;
      const stored = await storedMessages(block.id, 4);
      expect(stored.map((m) => [m.role, m.status])).toEqual([
        ['user', 'complete'],
        ['assistant', 'complete'],
        ['tool', 'success'],
        ['assistant', 'complete'],
      ]);
      expect(stored[1]).toMatchObject({
        content: 'Let me check.',
        tool_calls: [call('call_j', 'get_time', '{"timezone":"Europe/Paris"}')],
      });
      expect(stored[3]).toMatchObject({
        id: block.assistant_message_id,
        seq: block.seq,
        content: 'It is noon in Paris.',
      });
    });
  });

  describe('the official openai SDK', () => {
    it('reads a tool-loop stream with the .stream() helper and gives a sensible final completion', async () => {
      const client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: tenant.token, maxRetries: 0 });
      // The first iteration is tool calls only: the role must still reach the client.
      sim.enqueue(
        { kind: 'tool_calls', calls: [{ id: 'call_s', name: 'get_time', arguments: '{"timezone":"UTC"}' }] },
        noon,
      );
      const runner = client.chat.completions.stream({
        model: 'sim-small',
        messages: [{ role: 'user', content: 'What time is it?' }],
        tools: [{ type: 'function', function: { name: 'get_time' } }],
      });
      let content = '';
      runner.on('content', (delta) => (content += delta));
      const final = await runner.finalChatCompletion();
      expect(content).toBe('It is noon in Paris.');
      expect(final.id).toMatch(/^chatcmpl-/);
      expect(final.choices).toHaveLength(1);
      expect(final.choices[0].finish_reason).toBe('stop');
      expect(final.choices[0].message).toMatchObject({ role: 'assistant', content: 'It is noon in Paris.' });
      expect(final.choices[0].message.tool_calls).toEqual([call('call_s', 'get_time', '{"timezone":"UTC"}')]);
      expect(sim.requestCount).toBe(2);
    });
  });

  describe('on a Responses provider', () => {
    it('runs the loop the same way, streamed and not', async () => {
      const responses = await setupTenant(t, { baseUrl: sim.baseUrl, kind: 'responses' });
      sim.enqueue(paris('call_r'), noon);
      const res = await stream(ask(), responses.token);
      expectWellFormedStream(res);
      expect(frameKinds(res)).toEqual([
        'text',
        'text',
        'tool_calls',
        'tool_output',
        'text',
        'text',
        'final:stop',
        'conversation',
        'done',
      ]);
      expect(toolCallFrames(res)[0][0]).toMatchObject({
        id: 'call_r',
        function: { name: 'get_time', arguments: '{"timezone":"Europe/Paris"}' },
      });
      const [output] = toolOutputs(res);
      expectCurrentTime(output.output, 'Europe/Paris');
      expect(sim.requests.map((r) => r.wire)).toEqual(['responses', 'responses']);
      // The second call carries the call and its output as Responses input items.
      expect(sim.requests[1].body.input).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'function_call', call_id: 'call_r', name: 'get_time' }),
          expect.objectContaining({ type: 'function_call_output', call_id: 'call_r', output: output.output }),
        ]),
      );

      sim.reset();
      sim.enqueue(paris('call_r2'), noon);
      const json = await complete(ask(), responses.token);
      expect(json.status, JSON.stringify(json.body)).toBe(200);
      expectConforms('CreateChatCompletionResponse', json.body);
      expect(json.body.choices[0].message.content).toBe('It is noon in Paris.');
      expect((json.body.tool_events as ToolEvent[]).map((e) => e.type)).toEqual([
        'text',
        'tool_call',
        'tool_output',
        'text',
      ]);
      expect(sim.requestCount).toBe(2);
    });
  });

  describe('quota', () => {
    const scripted = (): SimAnswer[] => [
      { ...paris(), usage: { prompt_tokens: 11, completion_tokens: 7 } },
      { ...noon, usage: { prompt_tokens: 23, completion_tokens: 5 } },
    ];
    const total = 11 + 7 + 23 + 5;

    it('charges the sum of every iteration’s usage (stream)', async () => {
      const before = await balanceOf(t, tenant.tenantId, tenant.userId);
      sim.enqueue(...scripted());
      const res = await stream(ask({ stream_options: { include_usage: true } }));
      expectWellFormedStream(res);
      // The usage chunk reports the sum too, after the final chunk.
      expect(frameKinds(res).slice(-4)).toEqual(['final:stop', 'usage', 'conversation', 'done']);
      expect(chunksOf(res).find((c) => c.usage)!.usage).toMatchObject({
        prompt_tokens: 34,
        completion_tokens: 12,
        total_tokens: total,
      });
      await expect
        .poll(() => balanceOf(t, tenant.tenantId, tenant.userId), { timeout: 5000 })
        .toBe(before - total);
    });

    it('charges the sum of every iteration’s usage (JSON)', async () => {
      const before = await balanceOf(t, tenant.tenantId, tenant.userId);
      sim.enqueue(...scripted());
      const res = await complete(ask());
      expect(res.status).toBe(200);
      expect(res.body.usage).toMatchObject({ prompt_tokens: 34, completion_tokens: 12, total_tokens: total });
      await expect
        .poll(() => balanceOf(t, tenant.tenantId, tenant.userId), { timeout: 5000 })
        .toBe(before - total);
    });
  });
});

describe('the tool loop inactivity guard', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;
  const ask = { messages: [{ role: 'user', content: 'What time is it?' }], tools: ['get_time'] };
  const messagesOf = async (conversationId: string, token: string): Promise<StoredMessage[]> => {
    const res = await request(t.url)
      .get(`/v1/conversations/${conversationId}/messages`)
      .set('Authorization', `Bearer ${token}`);
    return (res.body.data ?? []) as StoredMessage[];
  };

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    // A silent upstream is given up on after 300 ms; the status line is held for up to 5 s.
    t = await createTestApp({ TOOL_INACTIVITY_MS: '300', STREAM_FIRST_EVENT_WAIT_MS: '5000' });
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('answers 504 upstream_timeout in JSON when the upstream stays silent (non-streaming)', async () => {
    sim.enqueue({ kind: 'stall' });
    const res = await request(t.url)
      .post('/v1/chat/completions')
      .set('Authorization', `Bearer ${tenant.token}`)
      .send(ask);
    expect(res.status).toBe(504);
    expectConforms('ErrorResponse', res.body);
    expect(res.body.error).toMatchObject({ code: 'upstream_timeout', type: 'timeout_error' });
    await sim.waitForAborted(1);
  });

  it('answers 504 upstream_timeout before the headers when a stream stays silent from the start', async () => {
    sim.enqueue({ kind: 'stall', afterChunks: 0 });
    const res = await sseRequest(`${t.url}/v1/chat/completions`, {
      token: tenant.token,
      body: { ...ask, stream: true },
    });
    expect(res.status).toBe(504);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(res.text) as unknown;
    expectConforms('ErrorResponse', body);
    expect(body).toMatchObject({ error: { code: 'upstream_timeout' } });
    await sim.waitForAborted(1);
  });

  it('ends with an error frame and [DONE] when the upstream falls silent after the headers', async () => {
    sim.enqueue({ kind: 'stall', afterChunks: 2, text: 'Partial answer here' });
    const res = await sseRequest(`${t.url}/v1/chat/completions`, {
      token: tenant.token,
      body: { ...ask, stream: true },
    });
    expect(res.status).toBe(200);
    expectStreamConforms(res.payloads);
    expect(res.events.map((e) => e.id)).toEqual(res.events.map((_e, i) => String(i + 1)));
    expect(frameKinds(res)).toEqual(['text', 'text', 'error', 'done']);
    expect(res.payloads.at(-2)).toMatchObject({ error: { code: 'upstream_timeout', type: 'timeout_error' } });
    await sim.waitForAborted(1);
  });

  it('guards the later iterations too: an error frame after the tool output, and the turn kept as incomplete', async () => {
    sim.enqueue(
      { kind: 'tool_calls', calls: [{ id: 'call_g', name: 'get_time', arguments: '{}' }] },
      { kind: 'stall', afterChunks: 1, text: 'It is noon', chunks: ['It is', ' noon'] },
    );
    // A tenant of its own: its only conversation is this one.
    const own = await setupTenant(t, { baseUrl: sim.baseUrl });
    const res = await sseRequest(`${t.url}/v1/chat/completions`, {
      token: own.token,
      body: { ...ask, stream: true },
    });
    expect(res.status).toBe(200);
    expectStreamConforms(res.payloads);
    expect(frameKinds(res)).toEqual(['tool_calls', 'tool_output', 'text', 'error', 'done']);
    expect(res.payloads.at(-2)).toMatchObject({ error: { code: 'upstream_timeout' } });
    expect(sim.requestCount).toBe(2);
    await sim.waitForAborted(1);

    // No _conversation frame was sent; the user's message shows which conversation it was.
    let conversationId: string | undefined;
    await expect
      .poll(async () => {
        const list = await request(t.url)
          .get('/v1/conversations')
          .set('Authorization', `Bearer ${own.token}`);
        conversationId = (list.body.data as Array<{ id: string }>)[0]?.id;
        return conversationId ? (await messagesOf(conversationId, own.token)).length : 0;
      })
      .toBe(4);
    const stored = await messagesOf(conversationId!, own.token);
    expect(stored.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['tool', 'success'],
      ['assistant', 'incomplete'],
    ]);
    expect(stored[3].content).toBe('It is');
  });
});
