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

interface BodyParserError {
  type: string;
  status?: number;
  statusCode?: number;
  message?: string;
}

function isBodyParserError(e: unknown): e is BodyParserError {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { type?: unknown }).type === 'string' &&
    typeof ((e as BodyParserError).status ?? (e as BodyParserError).statusCode) === 'number'
  );
}

function httpExceptionMessage(e: HttpException): string {
  const response = e.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.map(String).join('; ');
  if (typeof message === 'string') return message;
  return e.message;
}

/**
 * Normalises anything thrown inside the app (our own errors, Nest's HTTP exceptions, Express's
 * body-parser errors, plain bugs) into a ParleyError. Unknown errors become a 500 whose message
 * never carries internals.
 */
export function toParleyError(e: unknown): ParleyError {
  if (e instanceof ParleyError) return e;
  // Nest wraps Express's body-parser errors; the original says what went wrong.
  if (e instanceof HttpException && isBodyParserError(e.cause)) return fromBodyParserError(e.cause);
  if (e instanceof HttpException) {
    const status = e.getStatus();
    const code = STATUS_CODES[status] ?? (status >= 500 ? 'internal_error' : 'invalid_request_error');
    const message =
      status === 404 && /^Cannot /.test(httpExceptionMessage(e)) ? 'Not found' : httpExceptionMessage(e);
    const safeMessage = status >= 500 && code === 'internal_error' ? 'Internal server error' : message;
    return new ParleyError(code, safeMessage, { status });
  }
  if (isBodyParserError(e)) return fromBodyParserError(e);
  return new ParleyError('internal_error', 'Internal server error', { cause: e });
}

function fromBodyParserError(e: BodyParserError): ParleyError {
  switch (e.type) {
    case 'entity.parse.failed':
      return new ParleyError('invalid_json', 'The request body is not valid JSON.');
    case 'entity.too.large':
      return new ParleyError('payload_too_large', 'The request body is too large.');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ParleyError('unsupported_media_type', e.message ?? 'Unsupported body encoding.');
  }
  const status = e.status ?? e.statusCode ?? 400;
  if (status >= 400 && status < 500) {
    return new ParleyError(STATUS_CODES[status] ?? 'invalid_request_error', e.message ?? 'Bad request', {
      status,
    });
  }
  return new ParleyError('internal_error', 'Internal server error', { cause: e });
}
