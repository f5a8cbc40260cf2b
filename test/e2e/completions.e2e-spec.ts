import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectConforms } from '../utils/conformance.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { admin, setupTenant, signToken, type TenantSetup } from '../utils/factories.js';
import { UpstreamSimulator } from '../utils/upstream-simulator.js';

describe('POST /v1/chat/completions (JSON)', () => {
  let t: TestApp;
  let sim: UpstreamSimulator;
  let tenant: TenantSetup;

  const post = (body: unknown, token = tenant.token, path = '/v1/chat/completions') =>
    request(t.url)
      .post(path)
      .set('Authorization', `Bearer ${token}`)
      .send(body as object);
  const hi = { messages: [{ role: 'user', content: 'Hello there' }] };

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp();
    tenant = await setupTenant(t, {
      baseUrl: sim.baseUrl,
      models: [
        { id: 'sim-small', context_length: 1000, capabilities: { reasoning: false, verbosity: false } },
        { id: 'sim-large', context_length: 128000 },
      ],
    });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('answers a complete chat.completion with Parley’s id and the upstream usage', async () => {
    sim.enqueue({
      kind: 'text',
      text: 'Hi! How can I help?',
      usage: { prompt_tokens: 11, completion_tokens: 6 },
    });
    const res = await post({ ...hi, model: 'sim-large' });
    expect(res.status).toBe(200);
    expectConforms('CreateChatCompletionResponse', res.body);
    expect(res.body).toMatchObject({
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hi! How can I help?', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 },
    });
    expect(res.body.id).toMatch(/^chatcmpl-[A-Za-z0-9_-]{10,}$/);
    expect(sim.lastRequest()!.body).toMatchObject({ model: 'sim-large', messages: hi.messages });
    expect(sim.lastRequest()!.stream).toBe(false);
  });

  it('defaults to a JSON answer when stream is left out, as OpenAI does', async () => {
    const res = await post(hi);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });

  it('logs the processing line exactly once, with the completion id', async () => {
    const res = await post(hi);
    const lines = t.logs.filter((l) =>
      l.includes(`Processing chat completion for ${tenant.tenantId}:${res.body.id}`),
    );
    expect(lines).toEqual([`[INFO] Processing chat completion for ${tenant.tenantId}:${res.body.id}`]);
  });

  it("strips Parley's fields and forwards OpenAI's", async () => {
    await post({
      ...hi,
      temperature: 0.3,
      seed: 42,
      user: 'end-user-1',
      conversation_id: 'c',
      provider_stream: true,
      providerStream: true,
      streamingEnabled: true,
      toolsEnabled: true,
      qualityLevel: 'max',
      researchMode: false,
      active_system_prompt_id: null,
      previous_response_id: 'resp_1',
    });
    const body = sim.lastRequest()!.body;
    expect(body).toMatchObject({ temperature: 0.3, seed: 42, user: 'end-user-1' });
    for (const key of [
      'conversation_id',
      'provider_stream',
      'providerStream',
      'streamingEnabled',
      'toolsEnabled',
      'qualityLevel',
      'researchMode',
      'active_system_prompt_id',
      'previous_response_id',
      'provider_id',
      'system_prompt',
    ]) {
      expect(body).not.toHaveProperty(key);
    }
  });

  it('uses the tenant default model when the request names none', async () => {
    await post(hi);
    expect(sim.lastRequest()!.body.model).toBe('sim-small');
  });

  it('answers 400 model_not_found for an unknown model without calling the provider', async () => {
    const res = await post({ ...hi, model: 'gpt-9' });
    expectErrorEnvelope(res, 400, 'model_not_found', 'model');
    expectConforms('ErrorResponse', res.body);
    expect(sim.requestCount).toBe(0);
  });

  it('replaces a leading system message with system_prompt', async () => {
    await post({
      messages: [
        { role: 'system', content: 'old' },
        { role: 'user', content: 'x' },
      ],
      system_prompt: 'new',
    });
    expect(sim.lastRequest()!.body.messages).toEqual([
      { role: 'system', content: 'new' },
      { role: 'user', content: 'x' },
    ]);
  });

  it('inserts system_prompt as the first message when there is none', async () => {
    await post({ ...hi, system_prompt: 'be brief' });
    expect(sim.lastRequest()!.body.messages).toEqual([
      { role: 'system', content: 'be brief' },
      ...hi.messages,
    ]);
  });

  it('drops reasoning controls the model does not support and keeps them where it does', async () => {
    await post({ ...hi, model: 'sim-small', reasoning_effort: 'high', verbosity: 'low' });
    expect(sim.lastRequest()!.body).not.toHaveProperty('reasoning_effort');
    expect(sim.lastRequest()!.body).not.toHaveProperty('verbosity');
    await post({ ...hi, model: 'sim-large', reasoning_effort: 'high', verbosity: 'low' });
    expect(sim.lastRequest()!.body).toMatchObject({ reasoning_effort: 'high', verbosity: 'low' });
  });

  it('answers 400 listing the allowed values for an invalid reasoning_effort', async () => {
    const res = await post({ ...hi, reasoning_effort: 'extreme' });
    expectErrorEnvelope(res, 400, 'invalid_value', 'reasoning_effort');
    expect(res.body.error.message).toContain('none, minimal, low, medium, high, xhigh');
  });

  it('answers 400 context_length_exceeded without calling the provider', async () => {
    const res = await post({
      model: 'sim-small',
      messages: [{ role: 'user', content: 'lorem ipsum '.repeat(800) }],
    });
    expectErrorEnvelope(res, 400, 'context_length_exceeded', 'messages');
    expect(sim.requestCount).toBe(0);
  });

  it.each([
    ['a non-object body', [1, 2, 3], null],
    ['a string body', '"hello"', null],
    ['empty messages', { messages: [] }, 'messages'],
    ['a bad role', { messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    [
      'an image in a system message',
      {
        messages: [
          { role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
        ],
      },
      'messages[0].content',
    ],
    [
      'audio in ogg',
      {
        messages: [
          { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'ogg' } }] },
        ],
      },
      'messages[0].content[0].input_audio.format',
    ],
    [
      'json_schema without its schema object',
      { ...hi, response_format: { type: 'json_schema' } },
      'response_format.json_schema',
    ],
    [
      'a json_schema name with spaces',
      { ...hi, response_format: { type: 'json_schema', json_schema: { name: 'my schema' } } },
      'response_format.json_schema.name',
    ],
    ['temperature 2.5', { ...hi, temperature: 2.5 }, 'temperature'],
    ['n 0', { ...hi, n: 0 }, 'n'],
    ['top_logprobs 30', { ...hi, top_logprobs: 30 }, 'top_logprobs'],
    ['messages as an object', { messages: { role: 'user' } }, 'messages'],
  ])('answers 400 for %s, naming the field', async (_name, body, param) => {
    const res =
      typeof body === 'string'
        ? await request(t.url)
            .post('/v1/chat/completions')
            .set('Authorization', `Bearer ${tenant.token}`)
            .set('Content-Type', 'application/json')
            .send(body)
        : await post(body);
    expect(res.status).toBe(400);
    expectConforms('ErrorResponse', res.body);
    expect(res.body.error.param).toBe(param);
    expect(sim.requestCount).toBe(0);
  });

  it('drops an image over 8 MB, keeps the other parts in order, and logs a warning', async () => {
    const big = `data:image/png;base64,${'A'.repeat(11_300_000)}`;
    const content = [
      { type: 'text', text: 'what is this?' },
      { type: 'image_url', image_url: { url: big } },
      { type: 'image_url', image_url: { url: 'https://example.com/small.png', detail: 'low' } },
    ];
    const res = await post({ model: 'sim-large', messages: [{ role: 'user', content }] });
    expect(res.status).toBe(200);
    expect(sim.lastRequest()!.body.messages).toEqual([{ role: 'user', content: [content[0], content[2]] }]);
    expect(t.logs.some((l) => l.startsWith('[WARN]') && l.includes('messages[0].content[1]'))).toBe(true);
  });

  it('returns client tool calls with finish_reason tool_calls', async () => {
    sim.enqueue({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' }] });
    const res = await post({
      ...hi,
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
    });
    expect(res.status).toBe(200);
    expectConforms('CreateChatCompletionResponse', res.body);
    expect(res.body.choices[0].finish_reason).toBe('tool_calls');
    expect(res.body.choices[0].message.tool_calls).toEqual([
      { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } },
    ]);
  });

  it('serves the tenant-path route for a member', async () => {
    const res = await post(hi, tenant.token, `/${tenant.tenantId}/v1/chat/completions`);
    expect(res.status).toBe(200);
  });

  describe('upstream failures', () => {
    it('passes an upstream 4xx through with its status and message', async () => {
      sim.enqueue({
        kind: 'error',
        status: 400,
        message: 'Unsupported value: temperature',
        code: 'unsupported_value',
        type: 'invalid_request_error',
      });
      const res = await post(hi);
      expect(res.status).toBe(400);
      expectConforms('ErrorResponse', res.body);
      expect(res.body.error.message).toBe('Unsupported value: temperature');
    });

    it('passes an upstream 429 through with Retry-After', async () => {
      sim.enqueue({ kind: 'error', status: 429, message: 'Slow down', headers: { 'retry-after': '7' } });
      const res = await post(hi);
      expect(res.status).toBe(429);
      expect(res.body.error.message).toBe('Slow down');
      expect(res.headers['retry-after']).toBe('7');
    });

    it('answers 502 for an upstream 5xx', async () => {
      sim.enqueue({ kind: 'error', status: 500, message: 'boom' });
      const res = await post(hi);
      expectErrorEnvelope(res, 502, 'upstream_error');
    });

    it('answers 502 for garbage', async () => {
      sim.enqueue({ kind: 'garbage', status: 200, body: '<html>oops</html>', contentType: 'text/html' });
      const res = await post(hi);
      expectErrorEnvelope(res, 502, 'upstream_error');
    });

    it('answers 502 for malformed JSON from the provider', async () => {
      sim.enqueue({ kind: 'garbage', status: 200, body: '{"choices": [', contentType: 'application/json' });
      const res = await post(hi);
      expectErrorEnvelope(res, 502, 'upstream_error');
    });
  });

  describe('provider selection', () => {
    it('answers 502 when the provider is unreachable and 504 when it times out', async () => {
      const api = admin(t);
      const dead = await api.post(`/admin/tenants/${tenant.tenantId}/providers`, {
        name: 'dead',
        kind: 'chat_completions',
        base_url: 'http://127.0.0.1:9/v1',
        api_key: 'sk-x',
        default_model: 'dead-model',
        models: [{ id: 'dead-model', context_length: 8000 }],
      });
      expect(dead.status).toBe(201);
      const unreachable = await post({ ...hi, model: 'dead-model' });
      expectErrorEnvelope(unreachable, 502, 'upstream_error');

      const slow = await api.post(`/admin/tenants/${tenant.tenantId}/providers`, {
        name: 'slow',
        kind: 'chat_completions',
        base_url: sim.baseUrl,
        api_key: 'sk-x',
        default_model: 'slow-model',
        models: [{ id: 'slow-model', context_length: 8000 }],
        timeout_ms: 300,
      });
      expect(slow.status).toBe(201);
      sim.enqueue({ kind: 'stall' });
      const timedOut = await post({ ...hi, model: 'slow-model' });
      expectErrorEnvelope(timedOut, 504, 'upstream_timeout');
    });

    it("sends the provider's key and its own headers upstream, and no SDK telemetry", async () => {
      const created = await admin(t).post(`/admin/tenants/${tenant.tenantId}/providers`, {
        name: 'with-headers',
        kind: 'chat_completions',
        base_url: sim.baseUrl,
        api_key: 'sk-with-headers',
        default_model: 'headed-model',
        models: [{ id: 'headed-model', context_length: 8000 }],
        headers: { 'X-Team': 'search', 'OpenAI-Organization': 'org-7' },
      });
      expect(created.status).toBe(201);
      sim.enqueue({ kind: 'text', text: 'ok' });
      const res = await post({ ...hi, model: 'headed-model' });
      expect(res.status).toBe(200);
      const { headers } = sim.lastRequest()!;
      expect(headers).toMatchObject({
        authorization: 'Bearer sk-with-headers',
        'content-type': 'application/json',
        'x-team': 'search',
        'openai-organization': 'org-7',
      });
      expect(Object.keys(headers).filter((name) => name.startsWith('x-stainless-'))).toEqual([]);
    });

    it('uses provider_id or x-provider-id, and refuses another tenant’s provider', async () => {
      const other = await setupTenant(t, { baseUrl: sim.baseUrl });
      const mine = await post({ ...hi, provider_id: tenant.providerId });
      expect(mine.status).toBe(200);
      const header = await request(t.url)
        .post('/v1/chat/completions')
        .set('Authorization', `Bearer ${tenant.token}`)
        .set('x-provider-id', other.providerId)
        .send(hi);
      expectErrorEnvelope(header, 404, 'not_found');
      const body = await post({ ...hi, provider_id: other.providerId });
      expectErrorEnvelope(body, 404, 'not_found');
    });

    it('answers 403 missing_api_key_configuration for a provider without a key', async () => {
      const keyless = await setupTenant(t, { baseUrl: sim.baseUrl, apiKey: null });
      const res = await post(hi, keyless.token);
      expectErrorEnvelope(res, 403, 'missing_api_key_configuration');
      expect(sim.requestCount).toBe(0);
    });
  });

  describe('GET /v1/models', () => {
    it("lists the tenant's models in OpenAI's list shape", async () => {
      const res = await request(t.url).get('/v1/models').set('Authorization', `Bearer ${tenant.token}`);
      expect(res.status).toBe(200);
      expectConforms('ListModelsResponse', res.body);
      const ids = (res.body.data as Array<{ id: string }>).map((m) => m.id);
      expect(ids).toEqual(expect.arrayContaining(['sim-small', 'sim-large']));
      expect(new Set(ids).size).toBe(ids.length);
    });

    it('answers the tenant-path form and refuses a non-member', async () => {
      const ok = await request(t.url)
        .get(`/${tenant.tenantId}/v1/models`)
        .set('Authorization', `Bearer ${tenant.token}`);
      expect(ok.status).toBe(200);
      const stranger = signToken({ sub: 'stranger' });
      const denied = await request(t.url)
        .get(`/${tenant.tenantId}/v1/models`)
        .set('Authorization', `Bearer ${stranger}`);
      expectErrorEnvelope(denied, 403, 'tenant_access_denied');
    });
  });
});
