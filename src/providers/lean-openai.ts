import OpenAI, { OpenAIError, type ClientOptions } from 'openai';
import { VERSION } from 'openai/version';

type FinalRequestOptions = Parameters<OpenAI['buildRequest']>[0];
type BuiltRequest = Awaited<ReturnType<OpenAI['buildRequest']>>;
type HeadersLike = FinalRequestOptions['headers'];
type HeaderValue = string | null | undefined;

/** What the SDK's own client sent as User-Agent before this subclass, kept so providers see no change. */
const USER_AGENT = `OpenAI/JS ${VERSION}`;
/** RFC 9110 token: what the SDK (and Headers) accept as a header name. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** The whitespace Headers trims from both ends of a value. */
const HTTP_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

/**
 * The official SDK client, building its JSON requests with plain-object headers.
 *
 * The stock `buildRequest` merges five header sources through WHATWG `Headers` objects on every
 * call, and `makeRequest` then formats them for a debug log even when logging is off (iterating a
 * `Headers` sorts and copies it). Per request that was about a tenth of the gateway's CPU. Here the
 * headers that do not change between calls (key, accept, user agent, the provider's headers) are
 * merged once per client, and each call only copies them and adds its own. Everything after
 * `buildRequest` (fetch, timeout, abort, retries, error mapping, streaming) is still the SDK's.
 *
 * Dropped on this path: the `X-Stainless-*` telemetry headers (retry count, timeout, OS, runtime),
 * which an OpenAI-compatible provider does not need. What this path does not cover goes to the
 * stock `buildRequest`: non-JSON bodies (forms, bytes, streams) and no body, form-encoded bodies,
 * admin-key operations, an idempotency header, and settings whose auth changes per call (an `apiKey`
 * function, workload identity, a `provider` runtime), whose hooks need a real `Headers`.
 */
export class LeanOpenAI extends OpenAI {
  /** False when the client's auth is not a fixed key, so every call takes the stock path. */
  readonly #fixedAuth: boolean;
  /** The per-client headers, with what they were built from to notice a later change. */
  #fixed:
    | {
        apiKey: string;
        organization: string | null;
        project: string | null;
        defaults: HeadersLike;
        headers: Readonly<Record<string, string>>;
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
    if (
      !this.#fixedAuth ||
      this.apiKey === null ||
      this.idempotencyHeader ||
      (security && (!security.bearerAuth || security.adminAPIKeyAuth)) ||
      !isJsonObject(body)
    ) {
      return super.buildRequest(inputOptions, props);
    }

    const headers = { ...this.#fixedHeaders(this.apiKey) };
    if (inputOptions.headers) {
      mergeHeaders(headers, inputOptions.headers);
      // The SDK form-encodes an object body when the call asks for that content type.
      if (headers['content-type'] === 'application/x-www-form-urlencoded') {
        return super.buildRequest(inputOptions, props);
      }
    }

    // As the SDK: a timeout given per call must be a non-negative integer, else the client's.
    let timeout = this.timeout;
    if ('timeout' in inputOptions) {
      const t = inputOptions.timeout;
      if (typeof t !== 'number' || !Number.isInteger(t)) throw new OpenAIError('timeout must be an integer');
      if (t < 0) throw new OpenAIError('timeout must be a positive integer');
      timeout = t;
    }

    const url = this.buildURL(path, query as Record<string, unknown> | null | undefined, defaultBaseURL);
    const req: RequestInit = { method, headers, body: JSON.stringify(body) };
    if (signal) req.signal = signal;
    // Client-wide, then per-call fetch options, over what was built (as the SDK orders them).
    if (this.fetchOptions) Object.assign(req, this.fetchOptions);
    if (inputOptions.fetchOptions) Object.assign(req, inputOptions.fetchOptions);
    // The declared type says `Headers`, but past this point the SDK only hands `req.headers` to the
    // log formatter (which takes a record) and to `fetch` (which takes any HeadersInit); its
    // Headers-only uses (workload identity, provider runtimes) take the stock path above.
    return { req: req as BuiltRequest['req'], url, timeout };
  }

  /** Accept, user agent, auth, the client's default headers and the JSON content type, lower-cased. */
  #fixedHeaders(apiKey: string): Readonly<Record<string, string>> {
    const defaults = this._options.defaultHeaders;
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
    // In the SDK's order: later sources replace earlier ones, and the body's type beats the defaults.
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    if (organization != null) headers['openai-organization'] = organization;
    if (project != null) headers['openai-project'] = project;
    headers.authorization = `Bearer ${apiKey}`;
    mergeHeaders(headers, defaults);
    headers['content-type'] = 'application/json';
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

/**
 * Merges one source of headers into `target` (lower-case names) with the SDK's rules: a name from
 * this source replaces what earlier sources set, `null` removes the header, `undefined` is ignored.
 * In a record each key replaces (its list of values joined); in a list or a `Headers`, repeats of a
 * name are joined.
 */
function mergeHeaders(target: Record<string, string>, source: HeadersLike): void {
  if (!source) return;
  if (isNullableHeaders(source)) {
    mergeHeaders(target, source.values);
    for (const name of source.nulls) delete target[name];
    return;
  }
  const seen = new Set<string>();
  const put = (rawName: unknown, value: HeaderValue, replace: boolean): void => {
    if (typeof rawName !== 'string') throw new TypeError('expected header name to be a string');
    if (!HEADER_NAME.test(rawName))
      throw new TypeError(`Header name must be a valid HTTP token ["${rawName}"]`);
    if (value === undefined) return;
    const name = rawName.toLowerCase();
    if (replace || value === null || !seen.has(name)) delete target[name];
    seen.add(name);
    if (value === null) return;
    const trimmed = value.replace(HTTP_WHITESPACE, '');
    target[name] = name in target ? `${target[name]}, ${trimmed}` : trimmed;
  };
  if (source instanceof Headers) {
    for (const [name, value] of source) put(name, value, false);
  } else if (isList(source)) {
    for (const row of source) put(row[0], row[1], false);
  } else {
    for (const [name, value] of Object.entries(source)) {
      if (!isList(value)) {
        put(name, value, true);
        continue;
      }
      const values = value.filter((v) => v !== undefined);
      values.forEach((v, i) => put(name, v, i === 0));
    }
  }
}

/** The SDK's own merged form (its `defaultHeaders` once `OPENAI_CUSTOM_HEADERS` is read). */
function isNullableHeaders(source: object): source is { values: Headers; nulls: Set<string> } {
  const s = source as { values?: unknown; nulls?: unknown };
  return s.values instanceof Headers && s.nulls instanceof Set;
}

/** `Array.isArray` for the SDK's readonly header lists, which it does not narrow. */
function isList(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}
