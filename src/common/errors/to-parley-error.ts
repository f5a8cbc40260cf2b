import { HttpException } from '@nestjs/common';
import { ErrorCode, ParleyError } from './parley-error.js';

const STATUS_CODES: Record<number, ErrorCode> = {
  400: 'invalid_request_error',
  401: 'invalid_token',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limit_exceeded',
  502: 'bad_gateway',
  503: 'service_unavailable',
  504: 'upstream_timeout',
};

function httpExceptionMessage(e: HttpException): string {
  const response = e.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.map(String).join('; ');
  if (typeof message === 'string') return message;
  return e.message;
}

/**
 * Normalises anything thrown inside the app (our own errors, Nest's HTTP exceptions, which also
 * carry Fastify's own 4xx errors such as a body over the limit, plain bugs) into a ParleyError.
 * Unknown errors become a 500 whose message never carries internals.
 */
export function toParleyError(e: unknown): ParleyError {
  if (e instanceof ParleyError) return e;
  if (e instanceof HttpException) {
    const status = e.getStatus();
    const code = STATUS_CODES[status] ?? (status >= 500 ? 'internal_error' : 'invalid_request_error');
    const message =
      status === 404 && /^Cannot /.test(httpExceptionMessage(e)) ? 'Not found' : httpExceptionMessage(e);
    const safeMessage = status >= 500 && code === 'internal_error' ? 'Internal server error' : message;
    return new ParleyError(code, safeMessage, { status });
  }
  return new ParleyError('internal_error', 'Internal server error', { cause: e });
}
