import { DiscoveryService } from '@nestjs/core';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
} from 'openai/resources/chat/completions';
import type { Observable } from 'rxjs';
import type { CompletionTarget, ProviderKind } from './provider.types.js';

/**
 * The body sent upstream: OpenAI's Chat Completions parameters with Parley's own fields already
 * removed (`stream` is decided by the adapter call), plus `previous_response_id`, which only the
 * Responses adapter forwards.
 */
export type UpstreamChatRequest = Omit<ChatCompletionCreateParams, 'stream'> & {
  previous_response_id?: string;
};

/** One upstream call's controls, besides its body. */
export interface UpstreamCall {
  /** Aborts the call. */
  signal: AbortSignal;
  /**
   * The call is sent once this resolves, and never when it rejects (its reason is then the call's
   * error): the rate limit's verdict, which the SDK's request building overlaps.
   */
  sendAfter?: Promise<unknown>;
  /**
   * The longest the call waits on the provider (for its answer, or between two stream events) when
   * shorter than the provider's timeout: the tool loop's inactivity guard.
   */
  silenceMs?: number;
}

/**
 * One upstream wire. Adapters are stateless singletons; the provider row comes with each call.
 * Both methods speak Chat Completions shapes to the caller whatever the wire; the `id` of what
 * they return is the provider's own id for that answer (for Responses, `resp_...`), which the
 * caller keeps for chaining and replaces with Parley's completion id.
 * Errors are thrown (or emitted) as ParleyError: upstream 4xx with its status and message, 5xx
 * and garbage 502 `upstream_error`, unreachable 502, timeout 504 `upstream_timeout`.
 */
export interface ProviderAdapter {
  readonly kind: ProviderKind;
  /**
   * Throws the 400 this wire gives the request (a field it cannot carry), before anything is stored
   * or reserved for it. Optional: a wire that carries every field has nothing to check.
   */
  check?(request: UpstreamChatRequest): void;
  complete(
    request: UpstreamChatRequest,
    target: CompletionTarget,
    call: UpstreamCall,
  ): Promise<ChatCompletion>;
  /** Unsubscribing aborts the upstream request. Usage is always asked for (the quota needs it). */
  stream(
    request: UpstreamChatRequest,
    target: CompletionTarget,
    call: UpstreamCall,
  ): Observable<ChatCompletionChunk>;
}

/** Marks an adapter class for discovery: `@ProviderAdapterFor('responses')`. */
export const ProviderAdapterFor = DiscoveryService.createDecorator<ProviderKind>();
