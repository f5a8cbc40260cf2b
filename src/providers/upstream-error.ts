import OpenAI from 'openai';
import { ParleyError } from '../common/errors/parley-error.js';

/**
 * Maps what the SDK throws to Parley's answer: an upstream 4xx keeps its status and message
 * (a client error the caller can fix), 5xx and garbage are 502, unreachable 502, a timeout 504,
 * and a call Parley's fetch never sent fails with Parley's own reason.
 */
export function toUpstreamError(e: unknown): ParleyError {
  if (e instanceof ParleyError) return e;
  // Parley's own transport refused to send the call (a `sendAfter` that rejected with the rate
  // limit's refusal): the SDK reports that as a connection failure, but the answer is the refusal.
  if (e instanceof OpenAI.APIConnectionError && e.cause instanceof ParleyError) return e.cause;
  if (e instanceof OpenAI.APIConnectionTimeoutError) {
    return new ParleyError('upstream_timeout', 'The provider did not answer in time.', { cause: e });
  }
  if (e instanceof OpenAI.APIConnectionError) {
    return new ParleyError('upstream_error', 'The provider could not be reached.', { cause: e });
  }
  if (e instanceof OpenAI.APIError && typeof e.status === 'number') {
    const upstream = (e.error ?? {}) as {
      message?: unknown;
      type?: unknown;
      code?: unknown;
      param?: unknown;
    };
    const message =
      typeof upstream.message === 'string' ? upstream.message : `The provider answered ${e.status}.`;
    if (e.status >= 400 && e.status < 500) {
      const headers: Record<string, string> = {};
      const responseHeaders = e.headers as { get?(name: string): string | null } | undefined;
      const retryAfter = responseHeaders?.get?.('retry-after');
      if (retryAfter) headers['Retry-After'] = retryAfter;
      return new ParleyError(typeof upstream.code === 'string' ? upstream.code : 'upstream_error', message, {
        status: e.status,
        type: typeof upstream.type === 'string' ? upstream.type : 'invalid_request_error',
        param: typeof upstream.param === 'string' ? upstream.param : null,
        headers,
        cause: e,
      });
    }
    return new ParleyError('upstream_error', `The provider failed: ${message}`, { cause: e });
  }
  if (e instanceof OpenAI.APIError) {
    // A stream error event, or a body the SDK could not read.
    return new ParleyError('upstream_error', `The provider failed: ${e.message}`, { cause: e });
  }
  if (e instanceof SyntaxError) {
    return new ParleyError('upstream_error', 'The provider sent an answer that is not valid JSON.', {
      cause: e,
    });
  }
  return new ParleyError('upstream_error', 'The provider call failed.', { cause: e });
}

/** Why an aborted call failed: the abort's reason when it is Parley's own (a timeout, a refusal). */
export function abortedCall(signal: AbortSignal): ParleyError {
  const reason: unknown = signal.reason;
  return reason instanceof ParleyError
    ? reason
    : new ParleyError('upstream_error', 'The provider call was aborted.', { cause: reason });
}
