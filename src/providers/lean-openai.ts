import OpenAI, { OpenAIError, type ClientOptions } from 'openai';
import { VERSION } from 'openai/version';

type FinalRequestOptions = Parameters<OpenAI['buildRequest']>[0];
type BuiltRequest = Awaited<ReturnType<OpenAI['buildRequest']>>;

/** What the SDK's own client sent as User-Agent before this subclass, kept so providers see no change. */
const USER_AGENT = `OpenAI/JS ${VERSION}`;
/** The whitespace Headers trims from both ends of a value. */
const HTTP_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/**
 * The official SDK client, building its JSON requests with plain-object headers.
 *
 * The stock `buildRequest` merges five header sources through WHATWG `Headers` objects on every
 * call, and `makeRequest` then formats them for a debug log even when logging is off (iterating a
 * `Headers` sorts and copies it). Per request that was about a tenth of the gateway's CPU. Here the
 * headers (key, accept, user agent, the provider's headers) are merged once per client, and each
 * call only copies them. Everything after `buildRequest` (fetch, timeout, abort, retries, error
 * mapping, streaming) is still the SDK's.
 *
 * It covers what Parley's adapters send: a JSON body, a fixed key, the provider's headers as a
 * record, no headers of the call's own. Anything else goes to the stock `buildRequest`, which knows
 * every other case (forms, streams, no body, per-call headers, an idempotency header, auth that
 * changes per call). Dropped on this path: the `X-Stainless-*` telemetry headers (retry count,
 * timeout, OS, runtime), which an OpenAI-compatible provider does not need.
 */
export class LeanOpenAI extends OpenAI {
  /** False when the client's auth is not a fixed key, so every call takes the stock path. */
  readonly #fixedAuth: boolean;
  /**
   * The per-client headers (null when its default headers are not a record of strings), with what
   * they were built from, to notice a later change.
   */
  #fixed:
    | {
        apiKey: string;
        organization: string | null;
        project: string | null;
        defaults: unknown;
        headers: Readonly<Record<string, string>> | null;
      }
    | undefined;

  constructor(options: ClientOptions = {}) {
    super(options);
    this.#fixedAuth = !options.provider && !options.workloadIdentity && typeof options.apiKey !== 'function';
  }

  override async buildRequest(
    inputOptions: FinalRequestOptions,
    props: { retryCount?: number } = {},
  ): Promise<BuiltRequest> {
    const { method, path, query, body, defaultBaseURL, signal } = inputOptions;
    const security = inputOptions.__security;
    const fixed =
      this.#fixedAuth &&
      this.apiKey !== null &&
      !this.idempotencyHeader &&
      !(security && (!security.bearerAuth || security.adminAPIKeyAuth)) &&
      inputOptions.headers === undefined &&
      isJsonObject(body)
        ? this.#fixedHeaders(this.apiKey)
        : null;
    if (!fixed) return super.buildRequest(inputOptions, props);

    // As the SDK: a timeout given per call must be a non-negative integer, else the client's.
    let timeout = this.timeout;
    if ('timeout' in inputOptions) {
      const t = inputOptions.timeout;
      if (typeof t !== 'number' || !Number.isInteger(t)) throw new OpenAIError('timeout must be an integer');
      if (t < 0) throw new OpenAIError('timeout must be a positive integer');
      timeout = t;
    }

    const url = this.buildURL(path, query as Record<string, unknown> | null | undefined, defaultBaseURL);
    // Shared by every call of this client: frozen, so nothing down the line can change it for the others.
    const req: RequestInit = { method, headers: fixed, body: JSON.stringify(body) };
    if (signal) req.signal = signal;
    // Client-wide, then per-call fetch options, over what was built (as the SDK orders them).
    if (this.fetchOptions) Object.assign(req, this.fetchOptions);
    if (inputOptions.fetchOptions) Object.assign(req, inputOptions.fetchOptions);
    // The declared type says `Headers`, but past this point the SDK only hands `req.headers` to the
    // log formatter (which takes a record) and to `fetch` (which takes any HeadersInit); its
    // Headers-only uses (workload identity, provider runtimes) take the stock path above.
    return { req: req as BuiltRequest['req'], url, timeout };
  }

  /**
   * Accept, user agent, auth, the client's default headers and the JSON content type, lower-cased;
   * null when the default headers are anything but a record of strings (the stock path merges those).
   */
  #fixedHeaders(apiKey: string): Readonly<Record<string, string>> | null {
    const defaults: unknown = this._options.defaultHeaders;
    const { organization, project } = this;
    const cached = this.#fixed;
    if (
      cached &&
      cached.apiKey === apiKey &&
      cached.organization === organization &&
      cached.project === project &&
      cached.defaults === defaults
    ) {
      return cached.headers;
    }
    let headers: Record<string, string> | null = null;
    if (isStringRecord(defaults)) {
      // In the SDK's order: later sources replace earlier ones, and the body's type beats the defaults.
      headers = { accept: 'application/json', 'user-agent': USER_AGENT };
      if (organization != null) headers['openai-organization'] = organization;
      if (project != null) headers['openai-project'] = project;
      headers.authorization = `Bearer ${apiKey}`;
      for (const [name, value] of Object.entries(defaults ?? {})) {
        headers[name.toLowerCase()] = value.replace(HTTP_WHITESPACE, '');
      }
      headers['content-type'] = 'application/json';
      Object.freeze(headers);
    }
    this.#fixed = { apiKey, organization, project, defaults, headers };
    return headers;
  }
}

/** An object literal the SDK would send as JSON (not a stream, iterator, form or binary body). */
function isJsonObject(body: unknown): body is object {
  if (typeof body !== 'object' || body === null) return false;
  const proto: unknown = Object.getPrototypeOf(body);
  return (
    (proto === Object.prototype || proto === null) &&
    !(Symbol.asyncIterator in body) &&
    !(Symbol.iterator in body)
  );
}

/** No headers, or a plain object of names to strings (what Parley's providers have). */
function isStringRecord(value: unknown): value is Record<string, string> | undefined {
  if (value === undefined) return true;
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype)
    return false;
  return Object.values(value).every((v) => typeof v === 'string');
}
