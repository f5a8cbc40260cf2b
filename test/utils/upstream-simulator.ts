/**
 * OpenAI-compatible upstream simulator: a test fixture that plays the LLM provider over real HTTP on
 * loopback, so the gateway's end-to-end tests and the benchmark can run with no real LLM.
 *
 * Speaks both wires (Chat Completions and Responses), streamed or not, exactly as OpenAI emits them, and
 * can be scripted per test to answer with text, tool calls, HTTP errors, garbage, stalls, truncated
 * streams or in-stream errors. Built on bare `node:http` so the per-request overhead stays tiny: the
 * benchmark compares the gateway against calling this simulator directly.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessage,
} from 'openai/resources/chat/completions/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type {
  Response as OpenAIResponse,
  ResponseFunctionToolCall,
  ResponseOutputItem,
  ResponseOutputMessage,
  ResponseOutputText,
  ResponseStreamEvent,
  ResponseUsage,
} from 'openai/resources/responses/responses';

// ---------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------

export type SimFinishReason = 'stop' | 'length' | 'content_filter';

/** Token usage to report instead of the deterministic estimate. */
export interface SimUsage {
  prompt_tokens: number;
  completion_tokens: number;
  /** Reported as `prompt_tokens_details.cached_tokens` / `input_tokens_details.cached_tokens`. */
  cached_tokens?: number;
}

export interface SimToolCall {
  /** Tool call id (`call_id` on the Responses wire); generated when absent. */
  id?: string;
  name: string;
  /** The full arguments string (non-stream answers, `.done` events). */
  arguments: string;
  /** How the arguments are split across stream deltas; default: up to 4 roughly equal pieces. */
  fragments?: string[];
}

interface SimAnswerBase {
  /** Delay before the first byte (status line) is sent. */
  delayMs?: number;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

interface SimContentFields extends SimAnswerBase {
  text?: string;
  /** Explicit content deltas; default: the text split into word pieces. */
  chunks?: string[];
  usage?: SimUsage;
  /** Counted inside completion tokens and reported as reasoning tokens. */
  reasoningTokens?: number;
  /** Model reported in the answer; default: the request's model. */
  model?: string;
  /** Delay between stream deltas (content pieces, tool-call starts, argument fragments). */
  interChunkDelayMs?: number;
}

export interface SimTextAnswer extends SimContentFields {
  kind: 'text';
  text: string;
  finishReason?: SimFinishReason;
}

export interface SimToolCallsAnswer extends SimContentFields {
  kind: 'tool_calls';
  calls: SimToolCall[];
  /** Optional content emitted before the calls. */
  text?: string;
}

export interface SimErrorAnswer extends SimAnswerBase {
  kind: 'error';
  status: number;
  message?: string;
  type?: string;
  /** Default depends on the status (e.g. `rate_limit_exceeded` for 429); pass null to send null. */
  code?: string | null;
  param?: string | null;
}

export interface SimGarbageAnswer extends SimAnswerBase {
  kind: 'garbage';
  /** Default 200. */
  status?: number;
  body: string;
  /** Default `text/html; charset=utf-8`. */
  contentType?: string;
}

/**
 * Stream requests: sends the headers, then `afterChunks` deltas (default 0: headers only), then nothing
 * more, and never ends until the client aborts or the simulator stops. Non-stream requests: never answers.
 */
export interface SimStallAnswer extends SimContentFields {
  kind: 'stall';
  afterChunks?: number;
  calls?: SimToolCall[];
}

/**
 * Stream requests: sends `afterChunks` deltas then ends the HTTP response cleanly without the final
 * chunk / `[DONE]` (Chat wire) or without `response.completed` (Responses wire).
 * Non-stream requests: sends the first half of the JSON body then ends the response.
 */
export interface SimTruncateAnswer extends SimContentFields {
  kind: 'truncate';
  afterChunks: number;
  text: string;
  calls?: SimToolCall[];
}

/**
 * Stream requests: sends `afterChunks` deltas, then an in-stream error and ends: Chat wire
 * `data: {"error":{...}}`; Responses wire an `error` event followed by `response.failed`.
 * Non-stream requests: an HTTP error (`status`, default 500) with the message.
 */
export interface SimStreamErrorAnswer extends SimContentFields {
  kind: 'stream_error';
  afterChunks: number;
  message: string;
  /** Default `server_error`. */
  code?: string;
  /** Chat wire error `type`; default `server_error`. */
  type?: string;
  /** HTTP status for non-stream requests; default 500. */
  status?: number;
  calls?: SimToolCall[];
}

/**
 * How `afterChunks` and `interChunkDelayMs` count "deltas": one delta is one content piece,
 * one tool-call start, or one argument fragment (the same count on both wires). The frames before the
 * first delta (Chat role chunk; Responses `response.created` ... `response.content_part.added`) are sent
 * together with the first delta, so `afterChunks: 0` sends nothing but the headers.
 */
export type SimAnswer =
  | SimTextAnswer
  | SimToolCallsAnswer
  | SimErrorAnswer
  | SimGarbageAnswer
  | SimStallAnswer
  | SimTruncateAnswer
  | SimStreamErrorAnswer;

export type SimWire = 'chat' | 'responses' | 'models' | 'unknown';

export interface RecordedRequest<TBody = Record<string, unknown>> {
  method: string;
  /** The request path as received, without the query string (e.g. `/v1/chat/completions`). */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; an empty object when the body was empty or not valid JSON (see `rawBody`). */
  body: TBody;
  rawBody: string;
  wire: SimWire;
  /** `body.stream === true`. */
  stream: boolean;
  /** `Date.now()` when the request body was fully received. */
  receivedAt: number;
  /** The id of the answer the simulator made for it (`chatcmpl-...` / `resp_...`), for content answers. */
  answerId?: string;
}

/** A scripted answer, or a function choosing the answer from the request. */
export type SimScript = SimAnswer | ((req: RecordedRequest) => SimAnswer);

export interface UpstreamSimulatorOptions {
  /** Default 0: a random free port. */
  port?: number;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Record requests into `sim.requests` (default true). The counters are kept either way. */
  record?: boolean;
  /** Keep at most this many recorded requests, dropping the oldest (default 10 000). */
  maxRecorded?: number;
  models?: string[];
}

export interface UpstreamSimulatorEvents {
  request: [RecordedRequest];
  /** A client closed its connection before the response ended. */
  aborted: [RecordedRequest | undefined];
}

export const DEFAULT_SIM_TEXT = 'Hello from the simulator.';

// ---------------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------------

type WireResponse = Omit<OpenAIResponse, 'output_text'>;
/** A Responses stream event as sent on the wire (no SDK-added `output_text`, sequence number added later). */
type ToWire<E> = E extends { response: OpenAIResponse }
  ? Omit<E, 'response' | 'sequence_number'> & { response: WireResponse }
  : Omit<E, 'sequence_number'>;
type WireEvent = ToWire<ResponseStreamEvent>;

interface Frame<T> {
  data: T;
  /** A delta: a chunk boundary for `afterChunks` and `interChunkDelayMs`. */
  tick: boolean;
  /** Part of the terminal sequence (finish chunk, usage chunk, `[DONE]`, `response.completed`). */
  final: boolean;
}

interface NormCall {
  callId: string;
  itemId: string;
  name: string;
  arguments: string;
  fragments: string[];
}

interface Content {
  text: string;
  pieces: string[];
  calls: NormCall[];
  finish: SimFinishReason | 'tool_calls';
  model: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

interface Exchange {
  res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
  streaming: boolean;
  recorded: RecordedRequest | undefined;
}

interface Plan {
  status: number;
  headers: OutgoingHttpHeaders;
  /** Write groups: the delay applies between groups. */
  groups: string[];
  /** `end`: end the response; `stall`: keep it open; `hang`: never even send the headers. */
  end: 'end' | 'stall' | 'hang';
  delayMs: number;
  interChunkDelayMs: number;
  streaming: boolean;
}

const SYSTEM_FINGERPRINT = 'fp_simulator';
const MODEL_CREATED = 1_700_000_000;
const SSE_HEADERS: OutgoingHttpHeaders = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
};

class ScriptError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Splits text into word pieces, whitespace kept at the end of each piece ("Hello ", "from ", ...). */
export function splitWords(text: string): string[] {
  return text === '' ? [] : text.split(/(?<=\s)(?=\S)/);
}

function splitFragments(args: string): string[] {
  if (args === '') return [];
  const size = Math.max(1, Math.ceil(args.length / 4));
  const out: string[] = [];
  for (let i = 0; i < args.length; i += size) out.push(args.slice(i, i + size));
  return out;
}

const IGNORED_KEYS = new Set(['role', 'type', 'id', 'call_id', 'tool_call_id', 'status']);

/** Sum of the lengths of the string leaves of a message / input item (skipping role, type, ids). */
function textChars(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length;
  if (depth > 8 || typeof value !== 'object' || value === null) return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const v of value) n += textChars(v, depth + 1);
  } else {
    for (const key in value) {
      if (!IGNORED_KEYS.has(key)) n += textChars((value as Record<string, unknown>)[key], depth + 1);
    }
  }
  return n;
}

/** Deterministic rough prompt token count: ceil(chars / 4) + 3 per message + 3. */
export function estimatePromptTokens(wire: SimWire, body: Record<string, unknown>): number {
  let chars = 0;
  let items = 0;
  const source = wire === 'responses' ? body.input : body.messages;
  if (typeof source === 'string') {
    chars += source.length;
    items = 1;
  } else if (Array.isArray(source)) {
    for (const m of source) chars += textChars(m);
    items = source.length;
  }
  if (wire === 'responses' && typeof body.instructions === 'string') {
    chars += body.instructions.length;
    items += 1;
  }
  return Math.ceil(chars / 4) + 3 * items + 3;
}

/** The text of the last user message / input item, or '' (for echo answers). */
export function lastUserText(body: Record<string, unknown>): string {
  const source = body.messages ?? body.input;
  if (typeof source === 'string') return source;
  if (!Array.isArray(source)) return '';
  for (let i = source.length - 1; i >= 0; i--) {
    const m: unknown = source[i];
    if (!isRecord(m) || (m.role !== undefined && m.role !== 'user')) continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) {
      return m.content
        .map((p: unknown) => (isRecord(p) && typeof p.text === 'string' ? p.text : ''))
        .filter((t) => t !== '')
        .join(' ');
    }
  }
  return '';
}

/** A script that echoes (the start of) the last user message: used by the standalone simulator. */
export function echoAnswer(req: RecordedRequest): SimTextAnswer {
  const said = lastUserText(req.body).replace(/\s+/g, ' ').trim().slice(0, 200);
  return { kind: 'text', text: said === '' ? DEFAULT_SIM_TEXT : `You said: ${said}` };
}

function errorEnvelope(message: string, type: string, param: string | null, code: string | null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

function defaultError(status: number): { message: string; type: string; code: string | null } {
  switch (status) {
    case 400:
      return { message: 'Invalid request.', type: 'invalid_request_error', code: null };
    case 401:
      return {
        message:
          'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
        type: 'invalid_request_error',
        code: 'invalid_api_key',
      };
    case 403:
      return {
        message: 'You are not allowed to perform this request.',
        type: 'invalid_request_error',
        code: null,
      };
    case 404:
      return {
        message: 'The model does not exist or you do not have access to it.',
        type: 'invalid_request_error',
        code: 'model_not_found',
      };
    case 429:
      return {
        message: 'Rate limit reached for requests. Please try again later.',
        type: 'requests',
        code: 'rate_limit_exceeded',
      };
    default:
      return status >= 500
        ? {
            message: 'The server had an error while processing your request. Sorry about that!',
            type: 'server_error',
            code: null,
          }
        : { message: `Request failed with status ${status}.`, type: 'invalid_request_error', code: null };
  }
}

/** Keeps the frames up to and including the n-th delta, never the terminal ones. */
function cut<T>(frames: Frame<T>[], n: number): Frame<T>[] {
  if (n <= 0) return [];
  const out: Frame<T>[] = [];
  let ticks = 0;
  for (const f of frames) {
    if (f.final) break;
    if (f.tick) {
      if (ticks === n) break;
      ticks++;
    }
    out.push(f);
  }
  return out;
}

/** Groups serialized frames so that each delta starts a group (the preamble joins the first delta). */
function group(frames: Frame<unknown>[], serialized: string[], split: boolean): string[] {
  if (!split) return serialized.length === 0 ? [] : [serialized.join('')];
  const out: string[] = [];
  let cur = '';
  let seenTick = false;
  for (let i = 0; i < frames.length; i++) {
    if (frames[i].tick) {
      if (seenTick) {
        out.push(cur);
        cur = '';
      }
      seenTick = true;
    }
    cur += serialized[i];
  }
  if (cur !== '') out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------------

export class UpstreamSimulator extends EventEmitter<UpstreamSimulatorEvents> {
  static readonly DEFAULT_ANSWER: SimTextAnswer = { kind: 'text', text: DEFAULT_SIM_TEXT };

  /** Requests received, oldest first (when recording is on). */
  readonly requests: RecordedRequest[] = [];
  /** Model ids served by `GET /v1/models`. */
  models: string[];
  record: boolean;
  maxRecorded: number;
  /**
   * Called for every request after it is recorded. For completion requests, a returned answer takes
   * precedence over the queue and the default.
   */
  onRequest: ((req: RecordedRequest) => SimAnswer | undefined | void) | undefined;
  /** Requests received (including those not recorded). */
  requestCount = 0;
  /** Responses whose client closed the connection before the response ended. */
  aborted = 0;
  /** Streaming responses currently open. */
  activeStreams = 0;
  /** Requests received and not yet closed. */
  inFlight = 0;

  private readonly server: Server;
  private readonly host: string;
  private port = 0;
  private queue: SimScript[] = [];
  private defaultScript: SimScript = UpstreamSimulator.DEFAULT_ANSWER;
  private stopping = false;
  private readonly idPrefix = randomBytes(5).toString('hex');
  private idCounter = 0;

  private constructor(options: UpstreamSimulatorOptions) {
    super();
    this.host = options.host ?? '127.0.0.1';
    this.record = options.record ?? true;
    this.maxRecorded = options.maxRecorded ?? 10_000;
    this.models = options.models ?? ['sim-small', 'sim-large'];
    this.onRequest = undefined;
    this.server = createServer({ noDelay: true, keepAlive: true }, (req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
    this.server.headersTimeout = 31_000;
    this.server.requestTimeout = 0;
  }

  static async start(options: UpstreamSimulatorOptions = {}): Promise<UpstreamSimulator> {
    const sim = new UpstreamSimulator(options);
    await new Promise<void>((resolve, reject) => {
      sim.server.once('error', reject);
      sim.server.listen(options.port ?? 0, sim.host, () => {
        sim.server.off('error', reject);
        resolve();
      });
    });
    sim.port = (sim.server.address() as AddressInfo).port;
    return sim;
  }

  /** `http://127.0.0.1:<port>/v1` */
  get baseUrl(): string {
    return `http://${this.host}:${this.port}/v1`;
  }

  get listeningPort(): number {
    return this.port;
  }

  /** Scripts not consumed yet. */
  get pending(): number {
    return this.queue.length;
  }

  /** Closes the server, destroying every open connection (stalled streams included). */
  async stop(): Promise<void> {
    this.stopping = true;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Queues answers for the next completion requests, consumed in order. */
  enqueue(...scripts: SimScript[]): this {
    this.queue.push(...scripts);
    return this;
  }

  /** The answer used when the queue is empty. */
  setDefault(script: SimScript): this {
    this.defaultScript = script;
    return this;
  }

  lastRequest<TBody = Record<string, unknown>>(): RecordedRequest<TBody> | undefined {
    return this.requests[this.requests.length - 1] as RecordedRequest<TBody> | undefined;
  }

  /** Clears the recorded requests, the queue, the default answer, the hook and the counters. */
  reset(): void {
    this.requests.length = 0;
    this.queue = [];
    this.defaultScript = UpstreamSimulator.DEFAULT_ANSWER;
    this.onRequest = undefined;
    this.requestCount = 0;
    this.aborted = 0;
  }

  /** Resolves once `condition()` holds (checked every 5 ms); rejects after `timeoutMs`. */
  waitFor(condition: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const timer = setInterval(() => {
        if (condition()) {
          clearInterval(timer);
          resolve();
        } else if (Date.now() - started > timeoutMs) {
          clearInterval(timer);
          reject(new Error(`UpstreamSimulator: timed out after ${timeoutMs} ms waiting for ${what}`));
        }
      }, 5);
    });
  }

  waitForAborted(count = 1, timeoutMs = 5_000): Promise<void> {
    return this.waitFor(() => this.aborted >= count, timeoutMs, `${count} aborted response(s)`);
  }

  waitForRequests(count: number, timeoutMs = 5_000): Promise<void> {
    return this.waitFor(() => this.requestCount >= count, timeoutMs, `${count} request(s)`);
  }

  // -------------------------------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const ex: Exchange = { res, timer: undefined, closed: false, streaming: false, recorded: undefined };
    this.inFlight++;
    res.on('close', () => {
      ex.closed = true;
      if (ex.timer !== undefined) clearTimeout(ex.timer);
      ex.timer = undefined;
      this.inFlight--;
      if (ex.streaming) this.activeStreams--;
      if (!res.writableFinished && !this.stopping) {
        this.aborted++;
        this.emit('aborted', ex.recorded);
      }
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const raw =
        chunks.length === 0 ? '' : (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8');
      try {
        this.dispatch(req, ex, raw);
      } catch (err) {
        if (!ex.closed && !res.headersSent) {
          this.sendJson(
            ex,
            500,
            errorEnvelope(`Simulator failure: ${String(err)}`, 'server_error', null, null),
          );
        } else {
          res.destroy();
        }
      }
    });
  }

  private dispatch(req: IncomingMessage, ex: Exchange, raw: string): void {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let route = path.includes('//') ? path.replace(/\/{2,}/g, '/') : path;
    if (route.startsWith('/v1/')) route = route.slice(3);
    if (route.length > 1 && route.endsWith('/')) route = route.slice(0, -1);

    const wire: SimWire =
      route === '/chat/completions'
        ? 'chat'
        : route === '/responses'
          ? 'responses'
          : route === '/models' || route.startsWith('/models/')
            ? 'models'
            : 'unknown';

    let parsed: unknown = {};
    let invalidJson = false;
    if (raw !== '') {
      try {
        parsed = JSON.parse(raw);
      } catch {
        invalidJson = true;
      }
    }
    const body = isRecord(parsed) ? parsed : {};
    const recorded: RecordedRequest = {
      method,
      path,
      headers: req.headers,
      body,
      rawBody: raw,
      wire,
      stream: body.stream === true,
      receivedAt: Date.now(),
    };
    ex.recorded = recorded;
    this.requestCount++;
    if (this.record) {
      this.requests.push(recorded);
      if (this.requests.length > this.maxRecorded)
        this.requests.splice(0, this.requests.length - this.maxRecorded);
    }
    this.emit('request', recorded);
    const hooked = this.onRequest?.(recorded);

    if (wire === 'models' && method === 'GET') {
      this.answerModels(ex, route);
      return;
    }
    if ((wire !== 'chat' && wire !== 'responses') || method !== 'POST') {
      this.sendJson(
        ex,
        404,
        errorEnvelope(
          `Invalid URL (${method} ${path})`,
          'invalid_request_error',
          null,
          wire === 'unknown' ? 'unknown_url' : null,
        ),
      );
      return;
    }
    if (invalidJson || !isRecord(parsed)) {
      this.sendJson(
        ex,
        400,
        errorEnvelope(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
          'invalid_request_error',
          null,
          null,
        ),
      );
      return;
    }
    const invalid = this.validate(wire, body);
    if (invalid !== undefined) {
      this.sendJson(ex, 400, invalid);
      return;
    }

    let answer: SimAnswer;
    try {
      answer = hooked ?? this.nextAnswer(recorded);
    } catch (err) {
      throw new ScriptError(`script threw: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.play(ex, wire === 'chat' ? this.planChat(answer, recorded) : this.planResponses(answer, recorded));
  }

  private validate(wire: 'chat' | 'responses', body: Record<string, unknown>): string | undefined {
    if (typeof body.model !== 'string' || body.model === '') {
      return errorEnvelope(
        'you must provide a model parameter',
        'invalid_request_error',
        null,
        'missing_required_parameter',
      );
    }
    if (wire === 'chat' && !Array.isArray(body.messages)) {
      return errorEnvelope(
        "Missing required parameter: 'messages'.",
        'invalid_request_error',
        'messages',
        'missing_required_parameter',
      );
    }
    return undefined;
  }

  private nextAnswer(req: RecordedRequest): SimAnswer {
    const script = this.queue.length > 0 ? this.queue.shift()! : this.defaultScript;
    return typeof script === 'function' ? script(req) : script;
  }

  private nextId(): string {
    return `${this.idPrefix}${(this.idCounter++).toString(36).padStart(6, '0')}`;
  }

  private requestId(): string {
    return `req_${this.nextId()}`;
  }

  private sendJson(ex: Exchange, status: number, json: string, extra?: Record<string, string>): void {
    if (ex.closed) return;
    ex.res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(json),
      'x-request-id': this.requestId(),
      ...extra,
    });
    ex.res.end(json);
  }

  private answerModels(ex: Exchange, route: string): void {
    const model = (id: string) => ({ id, object: 'model', created: MODEL_CREATED, owned_by: 'simulator' });
    if (route === '/models') {
      this.sendJson(ex, 200, JSON.stringify({ object: 'list', data: this.models.map(model) }));
      return;
    }
    const id = decodeURIComponent(route.slice('/models/'.length));
    if (this.models.includes(id)) {
      this.sendJson(ex, 200, JSON.stringify(model(id)));
    } else {
      this.sendJson(
        ex,
        404,
        errorEnvelope(
          `The model '${id}' does not exist`,
          'invalid_request_error',
          'model',
          'model_not_found',
        ),
      );
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Plans common to both wires

  /** Plans for answers that do not depend on the wire; undefined for content answers. */
  private planCommon(answer: SimAnswer): Plan | undefined {
    const delayMs = answer.delayMs ?? 0;
    switch (answer.kind) {
      case 'error': {
        const d = defaultError(answer.status);
        const json = errorEnvelope(
          answer.message ?? d.message,
          answer.type ?? d.type,
          answer.param ?? null,
          answer.code !== undefined ? answer.code : d.code,
        );
        return this.jsonPlan(answer.status, json, answer.headers, delayMs);
      }
      case 'garbage':
        return {
          status: answer.status ?? 200,
          headers: {
            'content-type': answer.contentType ?? 'text/html; charset=utf-8',
            'content-length': Buffer.byteLength(answer.body),
            'x-request-id': this.requestId(),
            ...answer.headers,
          },
          groups: [answer.body],
          end: 'end',
          delayMs,
          interChunkDelayMs: 0,
          streaming: false,
        };
      case 'text':
      case 'tool_calls':
      case 'stall':
      case 'truncate':
      case 'stream_error':
        return undefined;
    }
  }

  private jsonPlan(
    status: number,
    json: string,
    extra: Record<string, string> | undefined,
    delayMs: number,
  ): Plan {
    return {
      status,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(json),
        'x-request-id': this.requestId(),
        ...extra,
      },
      groups: [json],
      end: 'end',
      delayMs,
      interChunkDelayMs: 0,
      streaming: false,
    };
  }

  /** Plans a non-stream answer whose full JSON body is `json` (text, tool calls, stall, truncate, stream_error). */
  private planNonStream(
    answer: Exclude<SimAnswer, SimErrorAnswer | SimGarbageAnswer>,
    json: () => string,
  ): Plan {
    const delayMs = answer.delayMs ?? 0;
    switch (answer.kind) {
      case 'stall':
        return {
          status: 0,
          headers: {},
          groups: [],
          end: 'hang',
          delayMs,
          interChunkDelayMs: 0,
          streaming: false,
        };
      case 'truncate': {
        const full = json();
        return {
          status: 200,
          headers: {
            'content-type': 'application/json',
            'x-request-id': this.requestId(),
            ...answer.headers,
          },
          groups: [full.slice(0, Math.floor(full.length / 2))],
          end: 'end',
          delayMs,
          interChunkDelayMs: 0,
          streaming: false,
        };
      }
      case 'stream_error':
        return this.jsonPlan(
          answer.status ?? 500,
          errorEnvelope(answer.message, answer.type ?? 'server_error', null, answer.code ?? null),
          answer.headers,
          delayMs,
        );
      case 'text':
      case 'tool_calls':
        return this.jsonPlan(200, json(), answer.headers, delayMs);
    }
  }

  private streamPlan(
    answer: Exclude<SimAnswer, SimErrorAnswer | SimGarbageAnswer>,
    frames: Frame<unknown>[],
    serialized: string[],
    end: 'end' | 'stall',
  ): Plan {
    const interChunkDelayMs = answer.interChunkDelayMs ?? 0;
    return {
      status: 200,
      headers: { ...SSE_HEADERS, 'x-request-id': this.requestId(), ...answer.headers },
      groups: group(frames, serialized, interChunkDelayMs > 0),
      end,
      delayMs: answer.delayMs ?? 0,
      interChunkDelayMs,
      streaming: true,
    };
  }

  private normalize(
    answer: Exclude<SimAnswer, SimErrorAnswer | SimGarbageAnswer>,
    req: RecordedRequest,
    wire: 'chat' | 'responses',
  ): Content {
    const rawCalls = answer.kind === 'text' ? [] : (answer.calls ?? []);
    const text = answer.text ?? (rawCalls.length > 0 ? '' : DEFAULT_SIM_TEXT);
    const pieces = answer.chunks ?? splitWords(text);
    const calls: NormCall[] = rawCalls.map((c) => {
      const n = this.nextId();
      return {
        callId: c.id ?? `call_${n}`,
        itemId: `fc_${n}`,
        name: c.name,
        arguments: c.arguments,
        fragments: c.fragments ?? splitFragments(c.arguments),
      };
    });
    const reasoningTokens = answer.reasoningTokens ?? 0;
    let completionTokens: number;
    let promptTokens: number;
    let cachedTokens = 0;
    if (answer.usage) {
      promptTokens = answer.usage.prompt_tokens;
      completionTokens = answer.usage.completion_tokens;
      cachedTokens = answer.usage.cached_tokens ?? 0;
    } else {
      promptTokens = estimatePromptTokens(wire, req.body);
      let chars = text.length;
      for (const c of calls) chars += c.name.length + c.arguments.length;
      completionTokens = Math.max(1, Math.ceil(chars / 4)) + reasoningTokens;
    }
    const finish =
      calls.length > 0 ? 'tool_calls' : answer.kind === 'text' ? (answer.finishReason ?? 'stop') : 'stop';
    const requestModel = typeof req.body.model === 'string' ? req.body.model : 'sim-small';
    return {
      text,
      pieces,
      calls,
      finish,
      model: answer.model ?? requestModel,
      promptTokens,
      completionTokens,
      cachedTokens,
      reasoningTokens,
    };
  }

  // ------------------------------------------------------------------------------------------------
  // Chat Completions wire

  private planChat(answer: SimAnswer, req: RecordedRequest): Plan {
    const common = this.planCommon(answer);
    if (common) return common;
    const a = answer as Exclude<SimAnswer, SimErrorAnswer | SimGarbageAnswer>;
    const c = this.normalize(a, req, 'chat');
    const id = `chatcmpl-${this.nextId()}`;
    req.answerId = id;
    const created = Math.floor(Date.now() / 1000);
    if (!req.stream) return this.planNonStream(a, () => JSON.stringify(this.chatCompletion(c, id, created)));

    const streamOptions = req.body.stream_options;
    const includeUsage = isRecord(streamOptions) && streamOptions.include_usage === true;
    let frames = this.chatFrames(c, id, created, includeUsage);
    let end: 'end' | 'stall' = 'end';
    switch (a.kind) {
      case 'stall':
        frames = cut(frames, a.afterChunks ?? 0);
        end = 'stall';
        break;
      case 'truncate':
        frames = cut(frames, a.afterChunks);
        break;
      case 'stream_error':
        frames = cut(frames, a.afterChunks);
        frames.push({
          data: `data: ${JSON.stringify({ error: { message: a.message, type: a.type ?? 'server_error', param: null, code: a.code ?? null } })}\n\n`,
          tick: false,
          final: true,
        });
        break;
      case 'text':
      case 'tool_calls':
        break;
    }
    return this.streamPlan(
      a,
      frames,
      frames.map((f) => f.data),
      end,
    );
  }

  private chatUsage(c: Content): CompletionUsage {
    return {
      prompt_tokens: c.promptTokens,
      completion_tokens: c.completionTokens,
      total_tokens: c.promptTokens + c.completionTokens,
      prompt_tokens_details: { cached_tokens: c.cachedTokens, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: c.reasoningTokens,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
  }

  private chatCompletion(c: Content, id: string, created: number): ChatCompletion {
    const message: ChatCompletionMessage = {
      role: 'assistant',
      content: c.text === '' && c.calls.length > 0 ? null : c.text,
      refusal: null,
      annotations: [],
    };
    if (c.calls.length > 0) {
      message.tool_calls = c.calls.map((call) => ({
        id: call.callId,
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      }));
    }
    return {
      id,
      object: 'chat.completion',
      created,
      model: c.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: c.finish }],
      usage: this.chatUsage(c),
      service_tier: 'default',
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  }

  private chatFrames(c: Content, id: string, created: number, includeUsage: boolean): Frame<string>[] {
    const frames: Frame<string>[] = [];
    const chunk = (
      delta: ChatCompletionChunk.Choice.Delta,
      finish: ChatCompletionChunk.Choice['finish_reason'],
      tick: boolean,
      final: boolean,
    ) => {
      const body: ChatCompletionChunk = {
        id,
        object: 'chat.completion.chunk',
        created,
        model: c.model,
        service_tier: 'default',
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      };
      if (includeUsage) body.usage = null;
      frames.push({ data: `data: ${JSON.stringify(body)}\n\n`, tick, final });
    };
    const toolOnly = c.text === '' && c.calls.length > 0;
    chunk({ role: 'assistant', content: toolOnly ? null : '', refusal: null }, null, false, false);
    for (const piece of c.pieces) chunk({ content: piece }, null, true, false);
    c.calls.forEach((call, index) => {
      chunk(
        {
          tool_calls: [
            { index, id: call.callId, type: 'function', function: { name: call.name, arguments: '' } },
          ],
        },
        null,
        true,
        false,
      );
      for (const fragment of call.fragments) {
        chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }, null, true, false);
      }
    });
    chunk({}, c.finish, false, true);
    if (includeUsage) {
      const usageChunk: ChatCompletionChunk = {
        id,
        object: 'chat.completion.chunk',
        created,
        model: c.model,
        service_tier: 'default',
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: [],
        usage: this.chatUsage(c),
      };
      frames.push({ data: `data: ${JSON.stringify(usageChunk)}\n\n`, tick: false, final: true });
    }
    frames.push({ data: 'data: [DONE]\n\n', tick: false, final: true });
    return frames;
  }

  // ------------------------------------------------------------------------------------------------
  // Responses wire

  private planResponses(answer: SimAnswer, req: RecordedRequest): Plan {
    const common = this.planCommon(answer);
    if (common) return common;
    const a = answer as Exclude<SimAnswer, SimErrorAnswer | SimGarbageAnswer>;
    const c = this.normalize(a, req, 'responses');
    const id = `resp_${this.nextId()}`;
    req.answerId = id;
    const msgId = `msg_${this.nextId()}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const output = this.responseOutput(c, msgId);
    const final = this.responseObject(req.body, c, id, createdAt, output, true);
    if (!req.stream) return this.planNonStream(a, () => JSON.stringify(final));

    let frames = this.responseFrames(req.body, c, id, createdAt, msgId, final);
    let end: 'end' | 'stall' = 'end';
    switch (a.kind) {
      case 'stall':
        frames = cut(frames, a.afterChunks ?? 0);
        end = 'stall';
        break;
      case 'truncate':
        frames = cut(frames, a.afterChunks);
        break;
      case 'stream_error': {
        frames = cut(frames, a.afterChunks);
        frames.push({
          data: { type: 'error', code: a.code ?? 'server_error', message: a.message, param: null },
          tick: false,
          final: true,
        });
        const failed: WireResponse = {
          ...this.responseObject(req.body, c, id, createdAt, [], false),
          status: 'failed',
          error: { code: 'server_error', message: a.message },
        };
        frames.push({ data: { type: 'response.failed', response: failed }, tick: false, final: true });
        break;
      }
      case 'text':
      case 'tool_calls':
        break;
    }
    const serialized = frames.map(
      (f, i) => `event: ${f.data.type}\ndata: ${JSON.stringify({ ...f.data, sequence_number: i })}\n\n`,
    );
    return this.streamPlan(a, frames, serialized, end);
  }

  private responseOutput(c: Content, msgId: string): ResponseOutputItem[] {
    const output: ResponseOutputItem[] = [];
    if (c.text !== '' || c.calls.length === 0) {
      const message: ResponseOutputMessage = {
        id: msgId,
        type: 'message',
        status: c.finish === 'stop' || c.finish === 'tool_calls' ? 'completed' : 'incomplete',
        content: [{ type: 'output_text', annotations: [], logprobs: [], text: c.text }],
        role: 'assistant',
      };
      output.push(message);
    }
    for (const call of c.calls) {
      const item: ResponseFunctionToolCall = {
        id: call.itemId,
        type: 'function_call',
        status: 'completed',
        arguments: call.arguments,
        call_id: call.callId,
        name: call.name,
      };
      output.push(item);
    }
    return output;
  }

  private responseObject(
    body: Record<string, unknown>,
    c: Content,
    id: string,
    createdAt: number,
    output: ResponseOutputItem[],
    done: boolean,
  ): WireResponse {
    const incomplete = c.finish === 'length' || c.finish === 'content_filter';
    const usage: ResponseUsage = {
      input_tokens: c.promptTokens,
      input_tokens_details: { cached_tokens: c.cachedTokens, cache_write_tokens: 0 },
      output_tokens: c.completionTokens,
      output_tokens_details: { reasoning_tokens: c.reasoningTokens },
      total_tokens: c.promptTokens + c.completionTokens,
    };
    const response: WireResponse = {
      id,
      object: 'response',
      created_at: createdAt,
      status: !done ? 'in_progress' : incomplete ? 'incomplete' : 'completed',
      background: false,
      completed_at: done && !incomplete ? Math.floor(Date.now() / 1000) : null,
      error: null,
      incomplete_details:
        done && incomplete
          ? { reason: c.finish === 'length' ? 'max_output_tokens' : 'content_filter' }
          : null,
      instructions: (body.instructions ?? null) as WireResponse['instructions'],
      max_output_tokens: typeof body.max_output_tokens === 'number' ? body.max_output_tokens : null,
      model: c.model,
      output,
      parallel_tool_calls: typeof body.parallel_tool_calls === 'boolean' ? body.parallel_tool_calls : true,
      previous_response_id: typeof body.previous_response_id === 'string' ? body.previous_response_id : null,
      prompt_cache_key: typeof body.prompt_cache_key === 'string' ? body.prompt_cache_key : null,
      reasoning: { effort: null, summary: null },
      safety_identifier: null,
      service_tier: 'default',
      temperature: typeof body.temperature === 'number' ? body.temperature : 1,
      text: { format: { type: 'text' }, verbosity: 'medium' },
      tool_choice: (body.tool_choice ?? 'auto') as WireResponse['tool_choice'],
      tools: (Array.isArray(body.tools) ? body.tools : []) as WireResponse['tools'],
      top_logprobs: 0,
      top_p: typeof body.top_p === 'number' ? body.top_p : 1,
      truncation: 'disabled',
      metadata: (isRecord(body.metadata) ? body.metadata : {}) as WireResponse['metadata'],
    };
    if (done) response.usage = usage;
    return response;
  }

  private responseFrames(
    body: Record<string, unknown>,
    c: Content,
    id: string,
    createdAt: number,
    msgId: string,
    final: WireResponse,
  ): Frame<WireEvent>[] {
    const frames: Frame<WireEvent>[] = [];
    const push = (data: WireEvent, tick = false, isFinal = false) =>
      frames.push({ data, tick, final: isFinal });
    const initial = this.responseObject(body, c, id, createdAt, [], false);
    push({ type: 'response.created', response: initial });
    push({ type: 'response.in_progress', response: initial });
    let outputIndex = 0;
    for (const item of final.output) {
      const output_index = outputIndex++;
      if (item.type === 'message') {
        const done = item.content[0] as ResponseOutputText;
        push({
          type: 'response.output_item.added',
          output_index,
          item: { id: msgId, type: 'message', status: 'in_progress', content: [], role: 'assistant' },
        });
        const part = { item_id: msgId, output_index, content_index: 0 };
        push({
          type: 'response.content_part.added',
          ...part,
          part: { type: 'output_text', annotations: [], logprobs: [], text: '' },
        });
        for (const delta of c.pieces) {
          push({ type: 'response.output_text.delta', ...part, delta, logprobs: [] }, true);
        }
        push({ type: 'response.output_text.done', ...part, text: done.text, logprobs: [] });
        push({ type: 'response.content_part.done', ...part, part: done });
        push({ type: 'response.output_item.done', output_index, item });
      } else if (item.type === 'function_call') {
        const call = c.calls.find((k) => k.itemId === item.id)!;
        push(
          {
            type: 'response.output_item.added',
            output_index,
            item: { ...item, status: 'in_progress', arguments: '' },
          },
          true,
        );
        for (const delta of call.fragments) {
          push(
            { type: 'response.function_call_arguments.delta', item_id: call.itemId, output_index, delta },
            true,
          );
        }
        push({
          type: 'response.function_call_arguments.done',
          item_id: call.itemId,
          output_index,
          name: call.name,
          arguments: call.arguments,
        });
        push({ type: 'response.output_item.done', output_index, item });
      }
    }
    push(
      final.status === 'incomplete'
        ? { type: 'response.incomplete', response: final }
        : { type: 'response.completed', response: final },
      false,
      true,
    );
    return frames;
  }

  // ------------------------------------------------------------------------------------------------
  // Writing

  private play(ex: Exchange, plan: Plan): void {
    const { res } = ex;
    if (plan.end === 'hang') {
      // Never answer; the connection stays open until the client gives up or the simulator stops.
      return;
    }
    const begin = () => {
      ex.timer = undefined;
      if (ex.closed) return;
      res.writeHead(plan.status, plan.headers);
      if (plan.streaming) {
        ex.streaming = true;
        this.activeStreams++;
      }
      let i = 0;
      const step = () => {
        ex.timer = undefined;
        if (ex.closed) return;
        while (i < plan.groups.length) {
          const data = plan.groups[i++];
          if (i === plan.groups.length && plan.end === 'end') {
            res.end(data);
            return;
          }
          res.write(data);
          if (plan.interChunkDelayMs > 0 && i < plan.groups.length) {
            ex.timer = setTimeout(step, plan.interChunkDelayMs);
            return;
          }
        }
        if (plan.end === 'end') res.end();
        else if (i === 0) res.flushHeaders();
      };
      step();
    };
    if (plan.delayMs > 0) ex.timer = setTimeout(begin, plan.delayMs);
    else begin();
  }
}
