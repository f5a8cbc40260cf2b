import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { APIConnectionTimeoutError, APIUserAbortError } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpFetch } from './http-fetch.js';
import { LeanOpenAI } from './lean-openai.js';
import { OpenAiClientFactory } from './openai-client.factory.js';
import type { ResolvedProvider } from './provider.types.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const completion = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
};
const chunk = {
  ...completion,
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta: { content: 'hel' } }],
};
const hi = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }] };

describe(LeanOpenAI.name, () => {
  let server: Server;
  let base: string;
  const received: Received[] = [];
  /** What the client handed to fetch as `init.headers`, per call. */
  const fetched: unknown[] = [];
  const httpFetch = createHttpFetch();
  const spyFetch: typeof fetch = (input, init) => {
    fetched.push(init?.headers);
    return httpFetch(input, init);
  };

  const options = (): ConstructorParameters<typeof OpenAI>[0] => ({
    apiKey: 'sk-test',
    baseURL: `${base}/v1`,
    maxRetries: 0,
    defaultHeaders: { 'X-Provider': 'p', 'X-Replaced': 'provider' },
    defaultQuery: { 'api-version': '2024' },
    fetch: spyFetch,
  });
  const last = (): Received => received[received.length - 1];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (req.url?.startsWith('/v1/slow')) return; // never answers
        if (req.url?.startsWith('/v1/models')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ object: 'list', data: [] }));
        }
        if ((JSON.parse(body) as { stream?: boolean }).stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          return res.end(`data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`);
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completion));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    received.length = 0;
    fetched.length = 0;
  });

  it('sends the key, JSON, the client headers, the body and the query', async () => {
    const client = new LeanOpenAI(options());
    const result = await client.chat.completions.create(hi, { query: { extra: '1' } });

    expect(result.choices[0].message.content).toBe('hello');
    const req = last();
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/chat/completions?api-version=2024&extra=1');
    expect(req.headers).toMatchObject({
      authorization: 'Bearer sk-test',
      'content-type': 'application/json',
      accept: 'application/json',
      'x-provider': 'p',
      'x-replaced': 'provider',
    });
    expect(req.headers['user-agent']).toMatch(/^OpenAI\/JS \d/);
    expect(JSON.parse(req.body)).toEqual(hi);
    // The point of the class: no `Headers` object per call.
    expect(fetched[0]).not.toBeInstanceOf(Headers);
  });

  it('sends what the stock client sends, less its telemetry headers', async () => {
    const call = (client: OpenAI) => client.chat.completions.create(hi, { query: { extra: '1' } });
    await call(new OpenAI(options()));
    const stock = last();
    await call(new LeanOpenAI(options()));
    const lean = last();

    const withoutTelemetry = (headers: IncomingHttpHeaders) =>
      Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith('x-stainless-')));
    expect(Object.keys(stock.headers).some((name) => name.startsWith('x-stainless-'))).toBe(true);
    expect(lean.headers).toEqual(withoutTelemetry(stock.headers));
    expect(lean.url).toBe(stock.url);
    expect(lean.body).toBe(stock.body);
  });

  it('streams through the same request', async () => {
    const client = new LeanOpenAI(options());
    const stream = await client.chat.completions.create({ ...hi, stream: true });
    const chunks: unknown[] = [];
    for await (const c of stream) chunks.push(c);

    expect(chunks).toEqual([chunk]);
    expect(last().headers).toMatchObject({ authorization: 'Bearer sk-test', 'x-provider': 'p' });
    expect(JSON.parse(last().body)).toMatchObject({ stream: true });
    expect(fetched[0]).not.toBeInstanceOf(Headers);
  });

  it('leaves a call with headers of its own to the stock path, which merges them', async () => {
    const client = new LeanOpenAI(options());
    await client.chat.completions.create(hi, { headers: { 'X-Call': 'c', 'X-Provider': null } });

    expect(last().headers).toMatchObject({ authorization: 'Bearer sk-test', 'x-call': 'c' });
    expect(last().headers).not.toHaveProperty('x-provider');
    expect(fetched[0]).toBeInstanceOf(Headers);
  });

  it('leaves default headers other than a record of strings to the stock path', async () => {
    const client = new LeanOpenAI({ ...options(), defaultHeaders: new Headers({ 'X-Provider': 'h' }) });
    await client.chat.completions.create(hi);

    expect(last().headers).toMatchObject({ authorization: 'Bearer sk-test', 'x-provider': 'h' });
    expect(fetched[0]).toBeInstanceOf(Headers);
  });

  it('honours the call signal and timeout', async () => {
    const client = new LeanOpenAI(options());
    const abort = new AbortController();
    const pending = client.chat.completions.create(hi, { signal: abort.signal, path: '/slow' });
    setTimeout(() => abort.abort(), 20);
    await expect(pending).rejects.toBeInstanceOf(APIUserAbortError);

    await expect(client.chat.completions.create(hi, { path: '/slow', timeout: 20 })).rejects.toBeInstanceOf(
      APIConnectionTimeoutError,
    );
  });

  it('leaves requests it does not cover (no body here) to the stock path', async () => {
    const client = new LeanOpenAI(options());
    await client.models.list();
    expect(last().headers).toMatchObject({ authorization: 'Bearer sk-test', 'x-provider': 'p' });
    expect(fetched[0]).toBeInstanceOf(Headers);
  });

  it('is the client the factory builds', () => {
    const provider = {
      id: 'p1',
      version: '1',
      apiKey: 'sk-test',
      baseUrl: `${base}/v1`,
      timeoutMs: 1000,
      headers: {},
    } as Partial<ResolvedProvider> as ResolvedProvider;
    expect(new OpenAiClientFactory().clientFor(provider)).toBeInstanceOf(LeanOpenAI);
  });
});
