import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingMessage, type OutgoingHttpHeaders, type RequestOptions } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { urlToHttpOptions } from 'node:url';
import { isMetadataAddress } from './provider-url.js';

/** What this fetch takes besides RequestInit; the SDK passes it through as a call's `fetchOptions`. */
export interface HeldRequestInit extends RequestInit {
  /**
   * The request is made once this resolves; when it rejects, it is never made and the fetch rejects
   * with its reason. The work before the request (the SDK's, the connection's) is done meanwhile.
   */
  sendAfter?: Promise<unknown>;
}

/**
 * A `fetch` for the OpenAI SDK over node:http with keep-alive agents. Node's global fetch (undici)
 * costs several times more per call on loopback, which is most of what a gateway adds; the SDK
 * itself is unchanged (it takes a `fetch` option). Bodies other than strings and bytes (forms,
 * streams) go to the global fetch.
 *
 * As with fetch, an abort of `init.signal` rejects with the signal's reason, or errors the body
 * stream with it once the answer has started. `init.sendAfter` (HeldRequestInit) holds the request
 * back until it resolves.
 */
export function createHttpFetch(
  options: { maxSockets?: number; lookup?: typeof dnsLookup } = {},
): typeof fetch {
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? 1024,
    scheduling: 'lifo' as const,
    lookup: refusingMetadataAddresses(options.lookup ?? dnsLookup),
  };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };
  // The SDK asks for a handful of URLs (base URL + path). Parsing one into request options costs
  // more than the rest of the request setup, so each is parsed once (a bounded cache).
  const targets = new Map<string, RequestOptions>();
  const targetOf = (input: string | URL): RequestOptions | undefined => {
    if (typeof input !== 'string') return urlToHttpOptions(input);
    let target = targets.get(input);
    if (!target) {
      if (!URL.canParse(input)) return undefined;
      if (targets.size >= 256) targets.clear();
      target = urlToHttpOptions(new URL(input));
      targets.set(input, target);
    }
    return target;
  };

  return (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const { body } = init;
    const plainBody =
      body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    if (input instanceof Request || !plainBody) return fetch(input, init);
    // What this cannot send (other schemes, an unparsable URL) gets fetch's own answer.
    const target = targetOf(input);
    const protocol = target?.protocol;
    if (!target || (protocol !== 'http:' && protocol !== 'https:')) return fetch(input, init);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const method = init.method ?? 'GET';

    // One promise for the answer, held or not: chaining the request after the hold would make its
    // answer pass through a second promise.
    return new Promise<Response>((resolve, reject) => {
      const send = (): void => {
        let response: IncomingMessage | undefined;
        const request = (protocol === 'https:' ? https : http).request({
          ...target,
          method,
          headers: requestHeaders(init.headers),
          agent: agents[protocol],
        });
        // A listener of our own rather than http.request's `signal` option: that one also watches the
        // request's end with a stream helper, which costs more than this whole handler.
        const onAbort = (): void => {
          const reason = (signal as AbortSignal).reason as Error;
          response?.destroy(reason);
          request.destroy(reason);
        };
        const done = (): void => signal?.removeEventListener('abort', onAbort);
        signal?.addEventListener('abort', onAbort, { once: true });
        request.on('error', (e) => {
          done();
          reject(e);
        });

        request.once('response', (res: IncomingMessage) => {
          response = res;
          res.once('close', done);
          const status = res.statusCode ?? 502;
          const meta = { status, statusText: res.statusMessage ?? '', rawHeaders: res.rawHeaders };
          const answer = (source: Uint8Array | StreamedBody | null): void => {
            // The Response constructor refuses some statuses and texts (e.g. 101): a rejection, not a throw.
            try {
              resolve(new IncomingResponse(meta, source));
            } catch (e) {
              res.destroy();
              reject(e instanceof Error ? e : new TypeError(String(e)));
            }
          };
          // A Response may not carry a body for these statuses.
          if (status === 204 || status === 205 || status === 304 || method === 'HEAD') {
            res.resume();
            return answer(null);
          }
          if (isEventStream(res.rawHeaders)) return answer(new StreamedBody(res));
          // A whole answer is read here and handed over as bytes: wrapping it in a web stream only
          // for the SDK to read it back whole costs more than the read.
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.once('end', () => answer(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
          res.on('error', reject);
        });
        request.end(body ?? undefined);
      };
      const held = (init as HeldRequestInit).sendAfter;
      if (!held) return send();
      held.then(() => {
        if (signal?.aborted) return reject(signal.reason as Error);
        // Outside the executor a throw (node:http refusing a header) is no rejection by itself.
        try {
          send();
        } catch (e) {
          reject(e instanceof Error ? e : new TypeError(String(e)));
        }
      }, reject);
    });
  };
}

/**
 * A DNS lookup that fails for names resolving to a cloud metadata or link-local address. The admin
 * API refuses such base URLs when they say so literally; this catches a name that resolves there
 * (or is made to, by DNS rebinding) when the connection is made.
 */
function refusingMetadataAddresses(lookup: typeof dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, options, (err, address: string | LookupAddress[], family?: number) => {
      if (err) return callback(err, address, family);
      const addresses = typeof address === 'string' ? [address] : address.map((a) => a.address);
      if (addresses.some(isMetadataAddress)) {
        const refused: NodeJS.ErrnoException = new Error(
          `${hostname} resolves to a cloud metadata or link-local address, which providers may not use`,
        );
        refused.code = 'EADDRNOTAVAIL';
        return callback(refused, address, family);
      }
      callback(null, address, family);
    });
  };
}

/**
 * `init.headers` as node:http takes them. A record is handed over as it is (node:http validates
 * names and values and does not keep or change the object): the SDK client Parley builds
 * (LeanOpenAI) passes one, and copying it through a `Headers` would cost what that client saves.
 * A `Headers` is iterated without a copy; a list of pairs goes through a `Headers`.
 */
function requestHeaders(init: RequestInit['headers']): OutgoingHttpHeaders {
  if (init === undefined) return {};
  // Its lists are only read, so their `readonly` does not matter.
  if (!(init instanceof Headers) && !Array.isArray(init)) return init as OutgoingHttpHeaders;
  const headers: Record<string, string> = {};
  (init instanceof Headers ? init : new Headers(init)).forEach((value, name) => (headers[name] = value));
  return headers;
}

function isEventStream(rawHeaders: string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length === 12 && rawHeaders[i].toLowerCase() === 'content-type')
      return /^text\/event-stream/i.test(rawHeaders[i + 1]);
  }
  return false;
}

/**
 * An event-stream body, read from the socket only when the reader asks (the connection's own flow
 * control is the backpressure), and so disturbed exactly by a read or a cancel (`bodyUsed`).
 *
 * It is async-iterable over the socket's chunks, which is how the SDK reads a stream. A web
 * ReadableStream costs more to construct on Node 20 than the rest of a streamed call's transport
 * (it is made transferable), so the standard one is built only for a caller that uses the
 * ReadableStream API (`getReader()`, `pipeTo()`, ...); both read the same chunks.
 */
class StreamedBody implements AsyncIterable<Uint8Array> {
  disturbed = false;
  readonly #chunks: AsyncIterator<Buffer, undefined>;
  #stream: ReadableStream<Uint8Array> | undefined;

  constructor(res: IncomingMessage) {
    // Made now, so a connection that breaks before the first read still errors the first read.
    this.#chunks = res[Symbol.asyncIterator]() as AsyncIterator<Buffer, undefined>;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array, undefined> {
    const chunks = this.#chunks;
    return {
      next: () => {
        this.disturbed = true;
        return chunks.next();
      },
      // Ends the iteration, which destroys the response and so drops the connection.
      return: async () => {
        this.disturbed = true;
        await chunks.return?.();
        return { done: true, value: undefined };
      },
    };
  }

  /** The standard web stream over the same chunks, built on first use. */
  get stream(): ReadableStream<Uint8Array> {
    return (this.#stream ??= new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          this.disturbed = true;
          const next = await this.#chunks.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
        cancel: async () => {
          this.disturbed = true;
          await this.#chunks.return?.();
        },
      },
      // Pulls nothing ahead: a pull is a read.
      { highWaterMark: 0 },
    ));
  }

  // ReadableStream's API, on the standard stream.
  get locked(): boolean {
    return this.#stream?.locked ?? false;
  }
  getReader(): ReadableStreamDefaultReader<Uint8Array> {
    return this.stream.getReader();
  }
  cancel(reason?: unknown): Promise<void> {
    return this.stream.cancel(reason);
  }
  pipeTo(...args: Parameters<ReadableStream<Uint8Array>['pipeTo']>): Promise<void> {
    return this.stream.pipeTo(...args);
  }
  readonly pipeThrough: ReadableStream<Uint8Array>['pipeThrough'] = (transform, options) =>
    this.stream.pipeThrough(transform, options);
  tee(): [ReadableStream<Uint8Array>, ReadableStream<Uint8Array>] {
    return this.stream.tee();
  }
  values(options?: { preventCancel?: boolean }): AsyncIterableIterator<Uint8Array> {
    return this.stream.values(options);
  }
}

/**
 * An answer's headers as fetch gives them: immutable, names in lower case, a repeated field's values
 * joined with ", " (set-cookie kept apart), iterated in name order. Built once from node:http's raw
 * list: the SDK reads every answer's headers several times (for a debug log too, even with logging
 * off), and a WHATWG Headers validates each field on the way in and sorts itself on every iteration.
 */
// Extended as a plain class: undici's types declare Headers' methods as fields, which a subclass's
// methods cannot override in TypeScript; at run time these are ordinary method overrides.
class AnswerHeaders extends (Headers as new () => object) {
  readonly #values = new Map<string, string>();
  readonly #cookies: string[] = [];
  readonly #sorted: [string, string][];

  constructor(rawHeaders: string[]) {
    super();
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i].toLowerCase();
      const value = rawHeaders[i + 1];
      if (name === 'set-cookie') this.#cookies.push(value);
      const seen = this.#values.get(name);
      this.#values.set(name, seen === undefined ? value : `${seen}, ${value}`);
    }
    const names = [...this.#values.keys()].sort();
    this.#sorted = names.flatMap((name): [string, string][] =>
      name === 'set-cookie'
        ? this.#cookies.map((cookie) => [name, cookie])
        : [[name, this.#values.get(name)!]],
    );
  }

  get(name: string): string | null {
    return this.#values.get(name.toLowerCase()) ?? null;
  }
  has(name: string): boolean {
    return this.#values.has(name.toLowerCase());
  }
  getSetCookie(): string[] {
    return [...this.#cookies];
  }
  forEach(callback: (value: string, name: string, parent: this) => void, thisArg?: unknown): void {
    for (const [name, value] of this.#sorted) callback.call(thisArg, value, name, this);
  }
  entries(): IterableIterator<[string, string]> {
    return this.#sorted.values();
  }
  keys(): IterableIterator<string> {
    return this.#sorted.map(([name]) => name).values();
  }
  values(): IterableIterator<string> {
    return this.#sorted.map(([, value]) => value).values();
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
  // A fetch answer's headers are immutable.
  append(): never {
    throw new TypeError('immutable');
  }
  set(): never {
    throw new TypeError('immutable');
  }
  delete(): never {
    throw new TypeError('immutable');
  }
}

/** Decodes as `Response.text()` does: UTF-8, a leading BOM dropped, bad bytes replaced. */
const utf8 = new TextDecoder();

/**
 * A Response that serves the common reads itself: `json()`, `text()`, `arrayBuffer()` and `bytes()`
 * of bytes already read, and `body` of a stream. Anything else (`blob()`, `formData()`, `clone()`,
 * the body of a buffered answer) goes to a standard Response built over the same body on first use,
 * which from then on owns the body. Building the standard one for every answer is what this saves:
 * its body goes through a web stream even when the bytes are all there.
 */
class IncomingResponse extends Response {
  /** What this object serves itself; null for no body. Unused once `#standard` exists. */
  readonly #source: Uint8Array | StreamedBody | null;
  /** Set when the bytes were read here, which a standard Response would mark as used. */
  #used = false;
  #standard: Response | undefined;

  readonly #headers: Headers;

  constructor(
    meta: { status: number; statusText: string; rawHeaders: string[] },
    source: Uint8Array | StreamedBody | null,
  ) {
    super(null, { status: meta.status, statusText: meta.statusText });
    this.#headers = new AnswerHeaders(meta.rawHeaders);
    this.#source = source;
  }

  // @ts-expect-error -- as `body`.
  override get headers(): Headers {
    return this.#headers;
  }

  /** A stream's body is the StreamedBody itself: iterable, with ReadableStream's API. */
  // @ts-expect-error -- undici's types declare `body` a field; Response defines it as an accessor.
  override get body(): ReadableStream<Uint8Array> | null {
    if (this.#standard) return this.#standard.body;
    if (this.#source === null) return null;
    if (this.#source instanceof StreamedBody) return this.#source as unknown as ReadableStream<Uint8Array>;
    return this.#toStandard().body;
  }

  // @ts-expect-error -- as `body`.
  override get bodyUsed(): boolean {
    if (this.#standard) return this.#standard.bodyUsed;
    return this.#source instanceof StreamedBody ? this.#source.disturbed : this.#used;
  }

  // @ts-expect-error -- undici's types declare the body methods as fields; Response has methods.
  override async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  // @ts-expect-error -- as `json`.
  override async text(): Promise<string> {
    const bytes = this.#takeBytes();
    return bytes ? utf8.decode(bytes) : this.#toStandard().text();
  }

  // @ts-expect-error -- as `json`.
  override async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#takeBytes();
    return bytes ? copy(bytes).buffer : this.#toStandard().arrayBuffer();
  }

  /** Not in the types yet, but Node's Response has it. */
  async bytes(): Promise<Uint8Array> {
    const bytes = this.#takeBytes();
    return bytes ? copy(bytes) : new Uint8Array(await this.#toStandard().arrayBuffer());
  }

  // @ts-expect-error -- as `json`.
  override async blob(): Promise<Blob> {
    return this.#toStandard().blob();
  }

  // @ts-expect-error -- as `json`.
  override async formData(): Promise<FormData> {
    return this.#toStandard().formData();
  }

  // @ts-expect-error -- as `json`.
  override clone(): Response {
    return this.#toStandard().clone();
  }

  /** The unread bytes, marking them read; undefined when the standard Response must answer. */
  #takeBytes(): Uint8Array | undefined {
    if (this.#standard || this.#used || !(this.#source instanceof Uint8Array)) return undefined;
    this.#used = true;
    return this.#source;
  }

  #toStandard(): Response {
    if (this.#standard) return this.#standard;
    const init = { status: this.status, statusText: this.statusText, headers: this.headers };
    if (!this.#used) {
      const body = this.#source instanceof StreamedBody ? this.#source.stream : this.#source;
      return (this.#standard = new Response(body, init));
    }
    // Already read here: a standard Response in the same state, its body read too.
    const standard = new Response(new Uint8Array(0), init);
    void standard.arrayBuffer();
    return (this.#standard = standard);
  }
}

function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
