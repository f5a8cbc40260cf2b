import type { lookup, LookupOptions } from 'node:dns';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpFetch, type HeldRequestInit } from './http-fetch.js';

describe(createHttpFetch.name, () => {
  let server: Server;
  let base: string;
  /** Requests whose connection closed before their answer ended, by path. */
  const cut: string[] = [];
  /** Requests that reached the server. */
  let received = 0;
  const sut = createHttpFetch();

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {
    '/stream': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      setTimeout(() => res.end('data: 2\n\n'), 20);
    },
    // Writes until the connection goes away.
    '/endless': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const timer = setInterval(() => res.write('data: x\n\n'), 5);
      res.once('close', () => clearInterval(timer));
    },
    '/broken-stream': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      setTimeout(() => res.destroy(), 20);
    },
    '/broken': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"a":');
      setTimeout(() => res.destroy(), 20);
    },
    '/slow': () => undefined, // never answers
    '/empty': (_req, res) => res.writeHead(204).end(),
    '/bom': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"bom":"é"}')]));
    },
    '/many-headers': (_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('x-twice', ['1', '2']);
      res.writeHead(400, 'Nope', { 'content-type': 'text/plain' });
      res.end('bad');
    },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      received++;
      let body = '';
      res.once('close', () => {
        if (!res.writableFinished) cut.push(req.url ?? '');
      });
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const route = routes[req.url ?? ''];
        if (route) return route(req, res, body);
        res.writeHead(201, { 'content-type': 'application/json', 'x-echo': req.headers['x-test'] ?? '' });
        res.end(JSON.stringify({ method: req.method, body }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
    let text = '';
    for await (const chunk of stream) text += Buffer.from(chunk).toString();
    return text;
  }

  const until = async (check: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('sends the method, headers and body, and reads status, headers and JSON', async () => {
    const res = await sut(`${base}/echo`, { method: 'POST', headers: { 'x-test': 'yes' }, body: '{"a":1}' });
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(201);
    expect(res.ok).toBe(true);
    expect(res.headers.get('x-echo')).toBe('yes');
    expect(await res.json()).toEqual({ method: 'POST', body: '{"a":1}' });
  });

  it('takes request headers as a Headers, an array or a record', async () => {
    const forms: RequestInit['headers'][] = [
      new Headers({ 'X-Test': 'h' }),
      [['X-Test', 'h']],
      { 'X-Test': 'h' },
    ];
    for (const headers of forms) {
      const res = await sut(`${base}/echo`, { headers });
      expect(res.headers.get('x-echo')).toBe('h');
    }
  });

  it('reads a body once, whichever way, as a Response does', async () => {
    const res = await sut(`${base}/echo`);
    expect(res.bodyUsed).toBe(false);
    expect(await res.text()).toBe('{"method":"GET","body":""}');
    expect(res.bodyUsed).toBe(true);
    await expect(res.json()).rejects.toBeInstanceOf(TypeError);
    await expect(res.arrayBuffer()).rejects.toBeInstanceOf(TypeError);
    expect(() => res.clone()).toThrow(TypeError);
    expect(res.body).not.toBeNull();
  });

  it('serves the body as bytes, a blob, a stream or a clone', async () => {
    const expected = '{"method":"GET","body":""}';
    const bytes = await (await sut(`${base}/echo`)).arrayBuffer();
    expect(Buffer.from(bytes).toString()).toBe(expected);

    const blob = await (await sut(`${base}/echo`)).blob();
    expect(blob.type).toBe('application/json');
    expect(await blob.text()).toBe(expected);

    const streamed = await sut(`${base}/echo`);
    expect(await readAll(streamed.body!)).toBe(expected);
    expect(streamed.bodyUsed).toBe(true);
    await expect(streamed.text()).rejects.toBeInstanceOf(TypeError);

    const original = await sut(`${base}/echo`);
    const copy = original.clone();
    expect(await copy.json()).toEqual({ method: 'GET', body: '' });
    expect(await original.json()).toEqual({ method: 'GET', body: '' });
  });

  it('decodes text as a Response does: UTF-8 without a leading BOM', async () => {
    expect(await (await sut(`${base}/bom`)).json()).toEqual({ bom: 'é' });
  });

  it('keeps every header line, the status text and an error body', async () => {
    const res = await sut(`${base}/many-headers`);
    expect(res.status).toBe(400);
    expect(res.ok).toBe(false);
    expect(res.statusText).toBe('Nope');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(res.headers.get('x-twice')).toBe('1, 2');
    expect(await res.text()).toBe('bad');
  });

  it("gives an answer's headers as fetch does: sorted, joined, set-cookie apart, immutable", async () => {
    const res = await sut(`${base}/many-headers`);
    const fetched = await fetch(`${base}/many-headers`);
    // The same view as undici's, whichever way it is read.
    expect(res.headers).toBeInstanceOf(Headers);
    expect([...res.headers]).toEqual([...fetched.headers]);
    expect([...res.headers.entries()]).toEqual([...fetched.headers.entries()]);
    expect([...res.headers.keys()]).toEqual([...fetched.headers.keys()]);
    expect([...res.headers.values()]).toEqual([...fetched.headers.values()]);
    const seen: string[] = [];
    res.headers.forEach((value, name) => seen.push(`${name}=${value}`));
    expect(seen).toEqual([...fetched.headers].map(([name, value]) => `${name}=${value}`));
    expect(res.headers.get('Set-Cookie')).toBe(fetched.headers.get('set-cookie'));
    expect(res.headers.get('x-missing')).toBeNull();
    expect(res.headers.has('Content-Type')).toBe(true);
    expect(new Headers(res.headers).get('x-twice')).toBe('1, 2');
    expect(() => res.headers.set('x-new', '1')).toThrow(TypeError);
    expect(() => res.headers.append('x-new', '1')).toThrow(TypeError);
    expect(() => res.headers.delete('x-twice')).toThrow(TypeError);
    // The standard Response built for other reads carries them too.
    expect(res.clone().headers.getSetCookie()).toEqual(['a=1', 'b=2']);
  });

  it('streams the body as it arrives', async () => {
    const res = await sut(`${base}/stream`);
    expect(res.bodyUsed).toBe(false);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(res.bodyUsed).toBe(true);
    expect(Buffer.from(first.value as Uint8Array).toString()).toBe('data: 1\n\n');
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += Buffer.from(r.value).toString();
    expect(rest).toBe('data: 2\n\n');
  });

  it('streams the body to an async iteration, as the SDK reads it; leaving early drops the connection', async () => {
    cut.length = 0;
    const res = await sut(`${base}/endless`);
    expect(res.bodyUsed).toBe(false);
    let seen = 0;
    for await (const chunk of res.body!) {
      expect(res.bodyUsed).toBe(true);
      expect(Buffer.from(chunk).toString()).toMatch(/^(data: x\n\n)+$/);
      if (++seen === 2) break;
    }
    await until(() => cut.includes('/endless'));
    expect(cut).toContain('/endless');
  });

  it("offers the rest of ReadableStream's API on a streamed body", async () => {
    const piped = (await sut(`${base}/stream`)).body!.pipeThrough(new TextDecoderStream());
    let text = '';
    for await (const part of piped) text += part;
    expect(text).toBe('data: 1\n\ndata: 2\n\n');

    const [a, b] = (await sut(`${base}/stream`)).body!.tee();
    expect(await Promise.all([readAll(a), readAll(b)])).toEqual([
      'data: 1\n\ndata: 2\n\n',
      'data: 1\n\ndata: 2\n\n',
    ]);
  });

  it('reads a stream whole through text()', async () => {
    expect(await (await sut(`${base}/stream`)).text()).toBe('data: 1\n\ndata: 2\n\n');
  });

  it('drops the connection when the stream is cancelled', async () => {
    const res = await sut(`${base}/endless`);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await until(() => cut.includes('/endless'));
    expect(cut).toContain('/endless');
  });

  it('errors the stream with the abort reason and drops the connection when the signal aborts', async () => {
    cut.length = 0;
    const abort = new AbortController();
    const res = await sut(`${base}/endless`, { signal: abort.signal });
    const reader = res.body!.getReader();
    await reader.read();
    abort.abort();
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return;
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await until(() => cut.includes('/endless'));
    expect(cut).toContain('/endless');
  });

  it('errors the stream when the connection breaks mid-body', async () => {
    const res = await sut(`${base}/broken-stream`);
    await expect(readAll(res.body!)).rejects.toThrow();
  });

  it('keeps a break that happens before the stream is read for the reader', async () => {
    const res = await sut(`${base}/broken-stream`);
    await new Promise((r) => setTimeout(r, 60));
    await expect(readAll(res.body!)).rejects.toThrow();
  });

  it('errors an unread stream with the abort reason', async () => {
    const abort = new AbortController();
    const res = await sut(`${base}/endless`, { signal: abort.signal });
    abort.abort();
    await expect(readAll(res.body!)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects when the connection breaks before a whole answer is read', async () => {
    await expect(sut(`${base}/broken`)).rejects.toThrow();
  });

  it('answers a bodiless status without a body', async () => {
    const res = await sut(`${base}/empty`);
    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
    expect(await res.text()).toBe('');
  });

  it('rejects with an AbortError when the signal aborts', async () => {
    const abort = new AbortController();
    const pending = sut(`${base}/slow`, { signal: abort.signal });
    abort.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects with the reason of a signal aborted before the call', async () => {
    const reason = new Error('gone');
    await expect(sut(`${base}/echo`, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  describe('a request held back (sendAfter)', () => {
    function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      return { promise, resolve, reject };
    }
    const post = (init: HeldRequestInit) => sut(`${base}/echo`, { method: 'POST', body: 'held', ...init });

    it('is sent once it may go', async () => {
      const gate = deferred();
      const before = received;
      const pending = post({ sendAfter: gate.promise });
      await new Promise((r) => setTimeout(r, 30));
      expect(received).toBe(before);
      gate.resolve();
      const res = await pending;
      expect(await res.json()).toEqual({ method: 'POST', body: 'held' });
      expect(received).toBe(before + 1);
    });

    it('is never sent when it may not, and fails with the reason', async () => {
      const gate = deferred();
      const before = received;
      const pending = post({ sendAfter: gate.promise });
      const refusal = new Error('refused');
      gate.reject(refusal);
      await expect(pending).rejects.toBe(refusal);
      await new Promise((r) => setTimeout(r, 30));
      expect(received).toBe(before);
    });

    it('fails, rather than hangs, when node:http refuses it once it may go', async () => {
      const pending = post({ sendAfter: Promise.resolve(), headers: { 'x-bad': 'line\nbreak' } });
      await expect(pending).rejects.toThrow(/Invalid character in header/);
    });

    it('is not sent when the signal aborts meanwhile', async () => {
      const gate = deferred();
      const abort = new AbortController();
      const before = received;
      const pending = post({ sendAfter: gate.promise, signal: abort.signal });
      const reason = new Error('client gone');
      abort.abort(reason);
      gate.resolve();
      await expect(pending).rejects.toBe(reason);
      expect(received).toBe(before);
    });
  });

  it('rejects a status a Response cannot carry', async () => {
    const odd = createTcpServer((socket) =>
      socket.once('data', () => socket.end('HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n')),
    );
    await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = odd.address() as AddressInfo;
      await expect(sut(`http://127.0.0.1:${port}/`)).rejects.toBeInstanceOf(RangeError);
    } finally {
      await new Promise((resolve) => odd.close(resolve));
    }
  });

  it('takes the URL as a string or a URL, and rejects one it cannot parse as fetch does', async () => {
    expect((await sut(new URL(`${base}/echo`))).status).toBe(201);
    expect((await sut(`${base}/echo?again`)).status).toBe(201);
    await expect(sut('not a url')).rejects.toBeInstanceOf(TypeError);
  });

  it('rejects when nothing listens', async () => {
    await expect(sut('http://127.0.0.1:9/')).rejects.toThrow();
  });

  describe('names that resolve to a metadata address', () => {
    /** A resolver: `*.rebound.test` names resolve to a metadata address, anything else to loopback. */
    const resolver = (metadata: string, family: number) =>
      ((hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void) => {
        const address = hostname.endsWith('.rebound.test') ? metadata : family === 6 ? '::1' : '127.0.0.1';
        if (options.all) callback(null, [{ address, family }]);
        else callback(null, address, family);
      }) as unknown as typeof lookup;
    const port = () => (server.address() as AddressInfo).port;

    it('are refused when the connection is made; other names connect through the same resolver', async () => {
      const guarded = createHttpFetch({ lookup: resolver('169.254.169.254', 4) });
      expect((await guarded(`http://fine.test:${port()}/echo`)).status).toBe(201);
      await expect(guarded(`http://metadata.rebound.test:${port()}/echo`)).rejects.toMatchObject({
        code: 'EADDRNOTAVAIL',
        message: expect.stringMatching(/metadata\.rebound\.test resolves to a cloud metadata/),
      });
    });

    it('are refused over IPv6 too, mapped IPv4 included', async () => {
      for (const address of ['fd00:ec2::254', '::ffff:169.254.169.254', 'fe80::1']) {
        const guarded = createHttpFetch({ lookup: resolver(address, 6) });
        await expect(guarded(`http://x.rebound.test:${port()}/echo`)).rejects.toMatchObject({
          code: 'EADDRNOTAVAIL',
        });
      }
    });
  });
});
