import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions/completions';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SIM_TEXT, UpstreamSimulator, type RecordedRequest } from './utils/upstream-simulator.js';

let sim: UpstreamSimulator;
let client: OpenAI;

beforeAll(async () => {
  sim = await UpstreamSimulator.start();
  client = new OpenAI({ baseURL: sim.baseUrl, apiKey: 'x', maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  await sim.stop();
});

beforeEach(() => {
  sim.reset();
});

const messages = [{ role: 'user' as const, content: 'Say hello to the simulator please' }];

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** POSTs JSON with fetch and returns the status, headers and raw text. */
async function rawPost(
  path: string,
  body: unknown,
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${sim.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('UpstreamSimulator: lifecycle and routing', () => {
  it('listens on 127.0.0.1 with a /v1 base URL', () => {
    expect(sim.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  it('lists the configured models', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['sim-small', 'sim-large']);
    expect(page.data[0]).toMatchObject({ object: 'model', owned_by: 'simulator' });
    sim.models = ['only-one'];
    const again = await client.models.list();
    expect(again.data.map((m) => m.id)).toEqual(['only-one']);
    sim.models = ['sim-small', 'sim-large'];
  });

  it('answers unknown routes with a 404 OpenAI error envelope', async () => {
    const res = await rawPost('/nope', { model: 'sim-small' });
    expect(res.status).toBe(404);
    const json = JSON.parse(res.text);
    expect(json).toEqual({
      error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'unknown_url' },
    });
  });

  it('accepts routes without the /v1 prefix', async () => {
    const root = sim.baseUrl.slice(0, -'/v1'.length);
    const res = await fetch(`${root}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim-small', messages }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { object: string }).object).toBe('chat.completion');
    expect(sim.lastRequest()!.path).toBe('/chat/completions');
  });

  it('rejects an invalid JSON body with a 400 envelope', async () => {
    const res = await rawPost('/chat/completions', '{not json');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error).toMatchObject({ type: 'invalid_request_error' });
    expect(sim.lastRequest()!.rawBody).toBe('{not json');
  });

  it('stop() does not hang on a stalled stream', async () => {
    const other = await UpstreamSimulator.start();
    other.enqueue({ kind: 'stall', afterChunks: 1 });
    const c = new OpenAI({ baseURL: other.baseUrl, apiKey: 'x', maxRetries: 0 });
    const stream = await c.chat.completions.create({ model: 'sim-small', messages, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    expect(other.activeStreams).toBe(1);
    const started = Date.now();
    await other.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    const drain = async () => {
      while (!(await iterator.next()).done) {
        // the buffered delta, then the connection reset
      }
    };
    await expect(drain()).rejects.toThrow();
    expect(other.aborted).toBe(0);
  });
});

describe('UpstreamSimulator: Chat Completions wire', () => {
  it('answers a non-stream request with the default text and deterministic usage', async () => {
    const completion = await client.chat.completions.create({ model: 'sim-large', messages });
    expect(completion).toMatchObject({
      object: 'chat.completion',
      model: 'sim-large',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: DEFAULT_SIM_TEXT, refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
    });
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.choices[0].message.tool_calls).toBeUndefined();
    const usage = completion.usage!;
    expect(usage.prompt_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBe(Math.ceil(DEFAULT_SIM_TEXT.length / 4));
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    const again = await client.chat.completions.create({ model: 'sim-large', messages });
    expect(again.usage).toEqual(usage);
  });

  it('honours scripted text, usage, finish reason, reasoning tokens and model', async () => {
    sim.enqueue({
      kind: 'text',
      text: 'Cut short',
      usage: { prompt_tokens: 11, completion_tokens: 7 },
      finishReason: 'length',
      reasoningTokens: 3,
      model: 'sim-large-2025',
    });
    const completion = await client.chat.completions.create({ model: 'sim-large', messages });
    expect(completion.model).toBe('sim-large-2025');
    expect(completion.choices[0]).toMatchObject({
      finish_reason: 'length',
      message: { content: 'Cut short' },
    });
    expect(completion.usage).toMatchObject({
      prompt_tokens: 11,
      completion_tokens: 7,
      total_tokens: 18,
      completion_tokens_details: { reasoning_tokens: 3 },
    });
  });

  it('consumes the queue in order then falls back to the default', async () => {
    sim.enqueue({ kind: 'text', text: 'one' }, { kind: 'text', text: 'two' });
    sim.setDefault({ kind: 'text', text: 'fallback' });
    const texts: (string | null)[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await client.chat.completions.create({ model: 'sim-small', messages });
      texts.push(c.choices[0].message.content);
    }
    expect(texts).toEqual(['one', 'two', 'fallback', 'fallback']);
    expect(sim.pending).toBe(0);
  });

  it('lets a script function answer from the request', async () => {
    sim.enqueue((req: RecordedRequest) => ({ kind: 'text', text: `model was ${String(req.body.model)}` }));
    const c = await client.chat.completions.create({ model: 'sim-small', messages });
    expect(c.choices[0].message.content).toBe('model was sim-small');
  });

  it('streams text with include_usage exactly as OpenAI does', async () => {
    sim.enqueue({
      kind: 'text',
      text: 'Hello streaming world',
      usage: { prompt_tokens: 5, completion_tokens: 3 },
    });
    const stream = await client.chat.completions.create({
      model: 'sim-small',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = await collect(stream);
    expect(chunks[0].choices[0]).toEqual({
      index: 0,
      delta: { role: 'assistant', content: '', refusal: null },
      logprobs: null,
      finish_reason: null,
    });
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(content).toBe('Hello streaming world');
    expect(chunks.slice(1, 4).map((c) => c.choices[0].delta.content)).toEqual([
      'Hello ',
      'streaming ',
      'world',
    ]);
    const finish = chunks[chunks.length - 2];
    expect(finish.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    for (const c of chunks.slice(0, -1)) {
      expect(c.usage).toBeNull();
      expect(c.object).toBe('chat.completion.chunk');
      expect(c.id).toBe(chunks[0].id);
    }
  });

  it('streams explicit chunks without usage when include_usage is not set, ending with [DONE]', async () => {
    sim.enqueue({ kind: 'text', text: 'abc', chunks: ['a', 'b', 'c'] });
    const res = await rawPost('/chat/completions', { model: 'sim-small', messages, stream: true });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const frames = res.text.split('\n\n').filter((f) => f !== '');
    expect(frames.every((f) => f.startsWith('data: '))).toBe(true);
    expect(frames[frames.length - 1]).toBe('data: [DONE]');
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.slice(6)) as ChatCompletionChunk);
    expect(chunks.map((c) => c.choices[0].delta.content)).toEqual(['', 'a', 'b', 'c', undefined]);
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
  });

  it('streams tool calls with argument fragments that the SDK reassembles', async () => {
    sim.enqueue({
      kind: 'tool_calls',
      calls: [
        {
          id: 'call_weather',
          name: 'get_weather',
          arguments: '{"city":"Paris"}',
          fragments: ['{"ci', 'ty":"Pa', 'ris"}'],
        },
        { name: 'get_time', arguments: '{"tz":"CET"}' },
      ],
    });
    const runner = client.chat.completions.stream({ model: 'sim-small', messages, stream: true });
    const raw: ChatCompletionChunk[] = [];
    runner.on('chunk', (c) => raw.push(c));
    const final = await runner.finalChatCompletion();
    const choice = final.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(2);
    expect(choice.message.tool_calls![0]).toMatchObject({
      id: 'call_weather',
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
    });
    expect(choice.message.tool_calls![1]).toMatchObject({
      id: expect.stringMatching(/^call_/),
      function: { name: 'get_time', arguments: '{"tz":"CET"}' },
    });
    // Wire shape: first delta of a call carries id/type/name, the fragments only index + arguments.
    const toolDeltas = raw.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(toolDeltas[0]).toEqual({
      index: 0,
      id: 'call_weather',
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    expect(toolDeltas.slice(1, 4)).toEqual([
      { index: 0, function: { arguments: '{"ci' } },
      { index: 0, function: { arguments: 'ty":"Pa' } },
      { index: 0, function: { arguments: 'ris"}' } },
    ]);
    expect(raw[0].choices[0].delta).toEqual({ role: 'assistant', content: null, refusal: null });
  });

  it('answers tool calls without streaming', async () => {
    sim.enqueue({ kind: 'tool_calls', text: 'Let me check.', calls: [{ name: 'lookup', arguments: '{}' }] });
    const c = await client.chat.completions.create({ model: 'sim-small', messages });
    expect(c.choices[0].finish_reason).toBe('tool_calls');
    expect(c.choices[0].message.content).toBe('Let me check.');
    expect(c.choices[0].message.tool_calls![0]).toMatchObject({
      type: 'function',
      function: { name: 'lookup', arguments: '{}' },
    });
  });

  it('surfaces scripted HTTP errors as OpenAI.APIError with status, code and headers', async () => {
    sim.enqueue(
      { kind: 'error', status: 429, headers: { 'retry-after': '7' } },
      { kind: 'error', status: 500, message: 'boom' },
      { kind: 'error', status: 400, message: 'bad thing', code: 'bad_code', param: 'messages' },
    );
    const err429 = await client.chat.completions
      .create({ model: 'sim-small', messages })
      .catch((e: unknown) => e);
    expect(err429).toBeInstanceOf(OpenAI.APIError);
    expect(err429).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err429 as InstanceType<typeof OpenAI.APIError>;
    expect(e.status).toBe(429);
    expect(e.code).toBe('rate_limit_exceeded');
    expect(e.headers?.get('retry-after')).toBe('7');

    const err500 = await client.chat.completions
      .create({ model: 'sim-small', messages, stream: true })
      .catch((e: unknown) => e);
    expect(err500).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err500 as InstanceType<typeof OpenAI.APIError>).message).toContain('boom');

    const err400 = await client.responses
      .create({ model: 'sim-small', input: 'hi' })
      .catch((e: unknown) => e);
    expect(err400).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err400).toMatchObject({ status: 400, code: 'bad_code', param: 'messages' });
  });

  it('sends garbage bodies verbatim', async () => {
    sim.enqueue(
      { kind: 'garbage', body: '<html>oops</html>' },
      { kind: 'garbage', status: 502, body: 'Bad Gateway' },
    );
    const a = await rawPost('/chat/completions', { model: 'sim-small', messages });
    expect(a).toMatchObject({ status: 200, text: '<html>oops</html>' });
    expect(a.headers.get('content-type')).toContain('text/html');
    const b = await rawPost('/chat/completions', { model: 'sim-small', messages });
    expect(b).toMatchObject({ status: 502, text: 'Bad Gateway' });
  });

  it('truncates a stream: no finish chunk and no [DONE]', async () => {
    sim.enqueue({ kind: 'truncate', afterChunks: 2, text: 'one two three four' });
    const res = await rawPost('/chat/completions', { model: 'sim-small', messages, stream: true });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('[DONE]');
    const chunks = res.text
      .split('\n\n')
      .filter((f) => f !== '')
      .map((f) => JSON.parse(f.slice(6)) as ChatCompletionChunk);
    expect(chunks.map((c) => c.choices[0].delta.content)).toEqual(['', 'one ', 'two ']);
    expect(chunks.every((c) => c.choices[0].finish_reason === null)).toBe(true);

    sim.enqueue({ kind: 'truncate', afterChunks: 1, text: 'one two' });
    const sdkChunks = await collect(
      await client.chat.completions.create({ model: 'sim-small', messages, stream: true }),
    );
    expect(sdkChunks).toHaveLength(2);
  });

  it('truncates a non-stream body', async () => {
    sim.enqueue({ kind: 'truncate', afterChunks: 0, text: 'whatever' });
    const res = await rawPost('/chat/completions', { model: 'sim-small', messages });
    expect(res.status).toBe(200);
    expect(() => JSON.parse(res.text) as unknown).toThrow();
  });

  it('emits an in-stream error frame that the SDK throws', async () => {
    sim.enqueue({ kind: 'stream_error', afterChunks: 1, message: 'overloaded mid-stream' });
    const stream = await client.chat.completions.create({ model: 'sim-small', messages, stream: true });
    const seen: ChatCompletionChunk[] = [];
    const err = await (async () => {
      for await (const c of stream) seen.push(c);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toContain('overloaded mid-stream');
    expect(seen).toHaveLength(2);
  });

  it('honours delayMs and interChunkDelayMs', async () => {
    sim.enqueue({ kind: 'text', text: 'a b c', delayMs: 80, interChunkDelayMs: 40 });
    const started = Date.now();
    const stream = await client.chat.completions.create({ model: 'sim-small', messages, stream: true });
    const times: number[] = [];
    for await (const _chunk of stream) times.push(Date.now() - started);
    expect(times[0]).toBeGreaterThanOrEqual(75);
    expect(times[times.length - 1]).toBeGreaterThanOrEqual(75 + 2 * 35);
  });
});

describe('UpstreamSimulator: recording and aborts', () => {
  it('records the method, path, headers and parsed body', async () => {
    await client.chat.completions.create({ model: 'sim-small', messages, temperature: 0.2 });
    expect(sim.requests).toHaveLength(1);
    const req = sim.lastRequest()!;
    expect(req).toMatchObject({ method: 'POST', path: '/v1/chat/completions', wire: 'chat', stream: false });
    expect(req.headers.authorization).toBe('Bearer x');
    expect(req.body).toEqual({ model: 'sim-small', messages, temperature: 0.2 });
    sim.reset();
    expect(sim.requests).toHaveLength(0);
    expect(sim.lastRequest()).toBeUndefined();
  });

  it('counts a client abort of a stalled stream', async () => {
    sim.enqueue({ kind: 'stall', afterChunks: 2, text: 'never finishes this sentence' });
    const stream = await client.chat.completions.create({ model: 'sim-small', messages, stream: true });
    const received: string[] = [];
    for await (const chunk of stream) {
      received.push(chunk.choices[0].delta.content ?? '');
      if (received.length === 3) break; // role chunk + 2 deltas; break aborts the request
    }
    expect(received).toEqual(['', 'never ', 'finishes ']);
    await sim.waitForAborted(1);
    expect(sim.aborted).toBe(1);
    await sim.waitFor(() => sim.activeStreams === 0);
  });

  it('counts an aborted non-stream request that never got an answer', async () => {
    sim.enqueue({ kind: 'stall' });
    const controller = new AbortController();
    const pending = client.chat.completions.create(
      { model: 'sim-small', messages },
      { signal: controller.signal },
    );
    await sim.waitForRequests(1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await sim.waitForAborted(1);
    expect(sim.aborted).toBe(1);
  });

  it('emits an aborted event with the recorded request', async () => {
    sim.enqueue({ kind: 'stall', afterChunks: 0 });
    const aborted = new Promise<RecordedRequest | undefined>((resolve) => sim.once('aborted', resolve));
    const stream = await client.chat.completions.create({ model: 'sim-small', messages, stream: true });
    expect(sim.activeStreams).toBe(1);
    stream.controller.abort();
    const req = await aborted;
    expect(req?.path).toBe('/v1/chat/completions');
  });
});

describe('UpstreamSimulator: Responses wire', () => {
  it('answers a non-stream request with a complete response object', async () => {
    const res = await client.responses.create({
      model: 'sim-small',
      input: 'Hello there',
      instructions: 'Be brief',
      previous_response_id: 'resp_previous',
    });
    expect(res).toMatchObject({
      object: 'response',
      status: 'completed',
      model: 'sim-small',
      error: null,
      incomplete_details: null,
      instructions: 'Be brief',
      previous_response_id: 'resp_previous',
    });
    expect(res.id).toMatch(/^resp_/);
    expect(res.output_text).toBe(DEFAULT_SIM_TEXT);
    expect(res.output).toEqual([
      {
        id: expect.stringMatching(/^msg_/),
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: DEFAULT_SIM_TEXT, annotations: [], logprobs: [] }],
      },
    ]);
    const usage = res.usage!;
    expect(usage.input_tokens).toBeGreaterThan(0);
    expect(usage.output_tokens_details.reasoning_tokens).toBe(0);
    expect(usage.input_tokens_details.cached_tokens).toBe(0);
    expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens);
    expect(sim.lastRequest()).toMatchObject({ path: '/v1/responses', wire: 'responses' });
  });

  it('maps finishReason length to an incomplete response', async () => {
    sim.enqueue({ kind: 'text', text: 'partial', finishReason: 'length' });
    const res = await client.responses.create({ model: 'sim-small', input: 'Hello' });
    expect(res.status).toBe('incomplete');
    expect(res.incomplete_details).toEqual({ reason: 'max_output_tokens' });
  });

  it('answers function calls without streaming', async () => {
    sim.enqueue({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'lookup', arguments: '{"q":1}' }] });
    const res = await client.responses.create({ model: 'sim-small', input: 'Hello' });
    expect(res.output).toEqual([
      {
        id: expect.stringMatching(/^fc_/),
        type: 'function_call',
        status: 'completed',
        call_id: 'call_1',
        name: 'lookup',
        arguments: '{"q":1}',
      },
    ]);
  });

  it('streams text events in OpenAI order, ending with response.completed', async () => {
    sim.enqueue({ kind: 'text', text: 'Hi there you', usage: { prompt_tokens: 4, completion_tokens: 3 } });
    const events = await collect(
      await client.responses.create({ model: 'sim-small', input: 'Hello', stream: true }),
    );
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    expect(deltas.map((d) => d.delta).join('')).toBe('Hi there you');
    expect(deltas[0]).toMatchObject({
      output_index: 0,
      content_index: 0,
      item_id: expect.stringMatching(/^msg_/),
    });
    const created = events[0] as Extract<ResponseStreamEvent, { type: 'response.created' }>;
    expect(created.response).toMatchObject({ status: 'in_progress', output: [] });
    const completed = events[events.length - 1] as Extract<
      ResponseStreamEvent,
      { type: 'response.completed' }
    >;
    expect(completed.response.status).toBe('completed');
    expect(completed.response.usage).toMatchObject({ input_tokens: 4, output_tokens: 3, total_tokens: 7 });
    expect(completed.response.output[0]).toMatchObject({
      type: 'message',
      content: [{ type: 'output_text', text: 'Hi there you' }],
    });
  });

  it('sends both event and data lines and no [DONE]', async () => {
    const res = await rawPost('/responses', { model: 'sim-small', input: 'Hello', stream: true });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const frames = res.text.split('\n\n').filter((f) => f !== '');
    for (const frame of frames) {
      const [eventLine, dataLine] = frame.split('\n');
      expect(eventLine).toMatch(/^event: /);
      expect(JSON.parse(dataLine.slice('data: '.length)).type).toBe(eventLine.slice('event: '.length));
    }
    expect(res.text).not.toContain('[DONE]');
  });

  it('streams function calls with argument deltas', async () => {
    sim.enqueue({
      kind: 'tool_calls',
      calls: [
        {
          id: 'call_9',
          name: 'get_weather',
          arguments: '{"city":"Oslo"}',
          fragments: ['{"city"', ':"Oslo"}'],
        },
      ],
    });
    const stream = client.responses.stream({ model: 'sim-small', input: 'Weather?' });
    const types: string[] = [];
    stream.on('event', (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(final.output[0]).toMatchObject({
      type: 'function_call',
      call_id: 'call_9',
      name: 'get_weather',
      arguments: '{"city":"Oslo"}',
    });
  });

  it('truncates a Responses stream before response.completed', async () => {
    sim.enqueue({ kind: 'truncate', afterChunks: 1, text: 'one two three' });
    const events = await collect(
      await client.responses.create({ model: 'sim-small', input: 'Hello', stream: true }),
    );
    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
    ]);
  });

  it('emits error and response.failed events for a stream error', async () => {
    sim.enqueue({ kind: 'stream_error', afterChunks: 0, message: 'upstream exploded' });
    const events = await collect(
      await client.responses.create({ model: 'sim-small', input: 'Hello', stream: true }),
    );
    expect(events.map((e) => e.type)).toEqual(['error', 'response.failed']);
    expect(events[0]).toMatchObject({
      code: 'server_error',
      message: 'upstream exploded',
      sequence_number: 0,
    });
    expect(events[1]).toMatchObject({
      sequence_number: 1,
      response: { status: 'failed', error: { code: 'server_error', message: 'upstream exploded' } },
    });
  });

  it('counts an abort of a stalled Responses stream', async () => {
    sim.enqueue({ kind: 'stall', afterChunks: 1 });
    const stream = await client.responses.create({ model: 'sim-small', input: 'Hello', stream: true });
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') break;
    }
    await sim.waitForAborted(1);
    expect(sim.activeStreams).toBe(0);
  });
});
