import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectConforms } from '../utils/conformance.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { setupTenant, type TenantSetup } from '../utils/factories.js';
import { UpstreamSimulator } from '../utils/upstream-simulator.js';

// Parley driven by the official SDK, unchanged but for its base URL and key.
describe('the official openai SDK against Parley', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;
  let client: OpenAI;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp();
    tenant = await setupTenant(t, { baseUrl: sim.baseUrl });
    client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: tenant.token, maxRetries: 0 });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('creates a completion without streaming', async () => {
    sim.enqueue({ kind: 'text', text: 'Bonjour!' });
    const completion = await client.chat.completions.create({
      model: 'sim-small',
      messages: [{ role: 'user', content: 'Say hi in French' }],
    });
    expectConforms('CreateChatCompletionResponse', completion);
    expect(completion.choices[0].message.content).toBe('Bonjour!');
    expect(sim.lastRequest()!.body.messages).toEqual([{ role: 'user', content: 'Say hi in French' }]);
  });

  it('creates a streamed completion', async () => {
    sim.enqueue({ kind: 'text', text: 'Streaming works fine' });
    const stream = await client.chat.completions.create({
      model: 'sim-small',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Streaming works fine');
    expect(usage?.total_tokens).toBeGreaterThan(0);
  });

  it("gives the .stream() helper's final completion", async () => {
    sim.enqueue({ kind: 'text', text: 'Final answer.' });
    const runner = client.chat.completions.stream({
      model: 'sim-small',
      messages: [{ role: 'user', content: 'q' }],
    });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0].message.content).toBe('Final answer.');
    expect(final.choices[0].finish_reason).toBe('stop');
  });

  it('round-trips a client-defined tool call', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ];
    sim.enqueue({
      kind: 'tool_calls',
      calls: [
        {
          id: 'call_w',
          name: 'get_weather',
          arguments: '{"city":"Oslo"}',
          fragments: ['{"ci', 'ty":"Os', 'lo"}'],
        },
      ],
    });
    const runner = client.chat.completions.stream({
      model: 'sim-small',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools,
    });
    const first = await runner.finalChatCompletion();
    const call = first.choices[0].message.tool_calls![0];
    expect(first.choices[0].finish_reason).toBe('tool_calls');
    expect(call).toMatchObject({
      id: 'call_w',
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
    });

    sim.enqueue({ kind: 'text', text: 'It is 4°C in Oslo.' });
    const second = await client.chat.completions.create({
      model: 'sim-small',
      tools,
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        first.choices[0].message,
        { role: 'tool', tool_call_id: 'call_w', content: '{"tempC":4}' },
      ],
    });
    expect(second.choices[0].message.content).toBe('It is 4°C in Oslo.');
    const sent = sim.lastRequest()!.body.messages as Array<Record<string, unknown>>;
    expect(sent[1]).toMatchObject({
      role: 'assistant',
      tool_calls: [{ id: 'call_w', function: { name: 'get_weather' } }],
    });
    expect(sent[2]).toEqual({ role: 'tool', tool_call_id: 'call_w', content: '{"tempC":4}' });
  });

  it('surfaces Parley errors as APIError with OpenAI fields', async () => {
    const error = await client.chat.completions
      .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as APIError).code).toBe('model_not_found');
    expect((error as APIError).param).toBe('model');
  });

  it('surfaces an error frame in a stream as an APIError', async () => {
    sim.enqueue({ kind: 'stream_error', afterChunks: 1, message: 'overloaded', text: 'a b c' });
    const stream = await client.chat.completions.create({
      model: 'sim-small',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    const consume = async () => {
      for await (const _chunk of stream) {
        // reading until the error frame
      }
    };
    await expect(consume()).rejects.toBeInstanceOf(OpenAI.APIError);
  });

  it('lists models', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(expect.arrayContaining(['sim-small']));
  });
});
