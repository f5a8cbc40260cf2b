/**
 * Every error Parley answers with, by code. The one exception filter turns these into HTTP
 * statuses and OpenAI's envelope; the SSE writer turns them into the error frame.
 */
export const ERROR_CODES = {
  invalid_request_error: { status: 400, type: 'invalid_request_error' },
  invalid_value: { status: 400, type: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  model_not_found: { status: 400, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  tenant_required: { status: 400, type: 'invalid_request_error' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error' },
  invalid_token: { status: 401, type: 'authentication_error' },
  tenant_access_denied: { status: 403, type: 'permission_error' },
  missing_api_key_configuration: { status: 403, type: 'permission_error' },
  forbidden: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  conflict: { status: 409, type: 'invalid_request_error' },
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  insufficient_tokens: { status: 429, type: 'insufficient_quota' },
  internal_error: { status: 500, type: 'server_error' },
  tool_orchestration_error: { status: 500, type: 'server_error' },
  upstream_error: { status: 502, type: 'upstream_error' },
  bad_gateway: { status: 502, type: 'upstream_error' },
  upstream_stream_truncated: { status: 502, type: 'upstream_error' },
  service_unavailable: { status: 503, type: 'server_error' },
  upstream_timeout: { status: 504, type: 'timeout_error' },
} as const satisfies Record<string, { status: number; type: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface OpenAiErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export interface ParleyErrorOptions {
  param?: string | null;
  /** Overrides the code's status, e.g. an upstream 4xx passed through with its own status. */
  status?: number;
  /** Overrides the code's type, e.g. the upstream's own error type. */
  type?: string;
  headers?: Record<string, string>;
  cause?: unknown;
}

export class ParleyError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode | (string & {}),
    message: string,
    options: ParleyErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    const known = (ERROR_CODES as Record<string, { status: number; type: string }>)[code];
    this.status = options.status ?? known?.status ?? 500;
    this.type = options.type ?? known?.type ?? 'server_error';
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }

  static invalid(param: string, message: string, code: ErrorCode = 'invalid_value'): ParleyError {
    return new ParleyError(code, message, { param });
  }

  static notFound(what = 'Resource'): ParleyError {
    return new ParleyError('not_found', `${what} not found`);
  }

  toBody(): OpenAiErrorBody {
    return { message: this.message, type: this.type, param: this.param, code: this.code };
  }
}

export function errorEnvelope(body: OpenAiErrorBody): { error: OpenAiErrorBody } {
  return { error: body };
}
