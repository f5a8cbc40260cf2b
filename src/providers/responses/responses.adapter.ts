import { Injectable } from '@nestjs/common';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { Observable } from 'rxjs';
import { followAbort } from '../../common/abort/follow-abort.js';
import { ParleyError } from '../../common/errors/parley-error.js';
import { OpenAiClientFactory, sdkCallOptions } from '../openai-client.factory.js';
import {
  ProviderAdapterFor,
  type ProviderAdapter,
  type UpstreamCall,
  type UpstreamChatRequest,
} from '../provider-adapter.js';
import type { CompletionTarget } from '../provider.types.js';
import { SilenceLimit } from '../silence-limit.js';
import { toUpstreamError } from '../upstream-error.js';
import { toResponsesRequest } from './responses-request.mapper.js';
import { responseToChatCompletion } from './responses-response.mapper.js';
import { ResponsesStreamMapper } from './responses-stream.mapper.js';

/**
 * Providers that speak the Responses API (`POST <base>/responses`). Thin glue: the SDK call and
 * the pure mappers beside this file. Errors come out as ParleyErrors: mapping errors (400s) and
 * stream failures unchanged, SDK errors through `toUpstreamError`, and an abort of the caller's
 * signal as its reason when that is a ParleyError.
 */
@Injectable()
@ProviderAdapterFor('responses')
export class ResponsesAdapter implements ProviderAdapter {
  readonly kind = 'responses' as const;

  constructor(private readonly clients: OpenAiClientFactory) {}

  check(request: UpstreamChatRequest): void {
    toResponsesRequest(request, { stream: false });
  }

  async complete(
    request: UpstreamChatRequest,
    target: CompletionTarget,
    { signal, sendAfter }: UpstreamCall,
  ): Promise<ChatCompletion> {
    const params = { ...toResponsesRequest(request, { stream: false }), ...upstreamFields(target) };
    try {
      const response = await this.clients
        .clientFor(target.provider)
        .responses.create(params, sdkCallOptions(signal, sendAfter));
      return responseToChatCompletion(response, { model: target.model.id });
    } catch (e) {
      throw failure(e, signal);
    }
  }

  stream(
    request: UpstreamChatRequest,
    target: CompletionTarget,
    { signal, sendAfter }: UpstreamCall,
  ): Observable<ChatCompletionChunk> {
    return new Observable<ChatCompletionChunk>((subscriber) => {
      // Aborted by the caller's signal, an unsubscribe or the drain timer.
      const upstream = new AbortController();
      const unfollow = followAbort(signal, upstream);
      // Set once the terminal event went out: the caller is answered, and the rest of the upstream
      // body is read to its end (not aborted) so that the pooled connection stays usable.
      let answered = false;
      // Set before the subscriber is told the end otherwise: the SDK has read or dropped the body by
      // then, and an abort would only cost an event and two DOMExceptions down the signal chain.
      let settled = false;
      let drainTimer: NodeJS.Timeout | undefined;
      let silence: SilenceLimit | undefined;

      const run = async (): Promise<void> => {
        const params = { ...toResponsesRequest(request, { stream: true }), ...upstreamFields(target) };
        const mapper = new ResponsesStreamMapper({ model: target.model.id });
        const events = await this.clients
          .clientFor(target.provider)
          .responses.create(params, sdkCallOptions(upstream.signal, sendAfter));
        silence = new SilenceLimit(upstream, target.provider.timeoutMs);
        // On abort the SDK ends this loop quietly; leaving it early aborts the upstream request.
        for await (const event of events) {
          if (answered) continue;
          if (upstream.signal.aborted) break;
          silence.heard();
          for (const chunk of mapper.map(event)) {
            if (subscriber.closed) return;
            subscriber.next(chunk);
          }
          if (mapper.done) {
            answered = true;
            silence.stop();
            drainTimer = setTimeout(() => upstream.abort(), DRAIN_TIMEOUT_MS).unref();
            subscriber.complete();
          }
        }
        if (answered || subscriber.closed) return;
        if (upstream.signal.aborted) throw aborted(upstream.signal);
        mapper.finish();
        settled = true;
        subscriber.complete();
      };

      void run()
        .catch((e: unknown) => {
          settled = true;
          if (!subscriber.closed) subscriber.error(failure(e, upstream.signal));
        })
        .finally(() => {
          silence?.stop();
          clearTimeout(drainTimer);
          unfollow();
        });
      return () => {
        if (!answered && !settled) upstream.abort();
      };
    });
  }
}

/**
 * What the provider row decides: the model, and `store: false` when it is not to keep responses
 * (whatever the request asked; the provider's own default is to keep them).
 */
function upstreamFields(target: CompletionTarget): { model: string; store?: false } {
  return target.provider.storeResponses
    ? { model: target.model.id }
    : { model: target.model.id, store: false };
}

/** How long the rest of an answered stream may take to end before the connection is dropped. */
const DRAIN_TIMEOUT_MS = 2_000;

/** What a failed call answers: the caller's abort reason when it aborted, else the mapped SDK error. */
function failure(e: unknown, signal: AbortSignal): ParleyError {
  return signal.aborted ? aborted(signal) : toUpstreamError(e);
}

function aborted(signal: AbortSignal): ParleyError {
  const reason: unknown = signal.reason;
  return reason instanceof ParleyError
    ? reason
    : new ParleyError('upstream_error', 'The provider call was aborted.', { cause: reason });
}
