import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

/**
 * A `fetch` for the OpenAI SDK over node:http with keep-alive agents. Node's global fetch (undici)
 * costs several times more per call on loopback, which is most of what a gateway adds; the SDK
 * itself is unchanged (it takes a `fetch` option). Bodies other than strings and bytes (forms,
 * streams) go to the global fetch.
 */
export function createHttpFetch(options: { maxSockets?: number } = {}): typeof fetch {
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 1024,
    scheduling: 'lifo' as const,
  };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };

  return (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const { body } = init;
    const plainBody =
      body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    if (input instanceof Request || !plainBody) return fetch(input, init);
    const url = typeof input === 'string' ? new URL(input) : input;
    const transport = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!transport) return fetch(input, init);

    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    return new Promise<Response>((resolve, reject) => {
      const request = transport.request(
        url,
        {
          method: init.method ?? 'GET',
          headers,
          agent: agents[url.protocol as 'http:' | 'https:'],
          signal: init.signal ?? undefined,
        },
        (res) => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined)
              responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          const status = res.statusCode ?? 502;
          const meta = { status, statusText: res.statusMessage, headers: responseHeaders };
          // A Response may not carry a body for these statuses.
          if (status === 204 || status === 205 || status === 304 || init.method === 'HEAD') {
            res.resume();
            resolve(new Response(null, meta));
            return;
          }
          if (/^text\/event-stream/i.test(res.headers['content-type'] ?? '')) {
            resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, meta));
            return;
          }
          // A whole answer is read here and handed over as bytes: wrapping it in a web stream only
          // for the SDK to read it back whole costs more than the read.
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.once('end', () => resolve(new Response(Buffer.concat(chunks), meta)));
          res.once('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body ?? undefined);
    });
  };
}
