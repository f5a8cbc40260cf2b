import { Injectable } from '@nestjs/common';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { Observable } from 'rxjs';
import { followAbort } from '../../common/abort/follow-abort.js';
import { OpenAiClientFactory, sdkCallOptions } from '../openai-client.factory.js';
import {
  ProviderAdapterFor,
  type ProviderAdapter,
  type UpstreamCall,
  type UpstreamChatRequest,
} from '../provider-adapter.js';
import type { CompletionTarget } from '../provider.types.js';
import { callWithin, SilenceLimit, silenceLimitMs } from '../silence-limit.js';
import { abortedCall, toUpstreamError } from '../upstream-error.js';
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
    call: UpstreamCall,
  ): Promise<ChatCompletion> {
    const params = { ...toResponsesRequest(request, { stream: false }), ...upstreamFields(target) };
    const client = this.clients.clientFor(target.provider);
    return callWithin(call.signal, silenceLimitMs(target, call), async (signal) =>
      responseToChatCompletion(
        await client.responses.create(params, sdkCallOptions(signal, call.sendAfter)),
        {
          model: target.model.id,
        },
      ),
    );
  }

  stream(
    request: UpstreamChatRequest,
    target: CompletionTarget,
    call: UpstreamCall,
  ): Observable<ChatCompletionChunk> {
    const { signal, sendAfter } = call;
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
      const silence = new SilenceLimit(upstream, silenceLimitMs(target, call));

      const run = async (): Promise<void> => {
        const params = { ...toResponsesRequest(request, { stream: true }), ...upstreamFields(target) };
        const mapper = new ResponsesStreamMapper({ model: target.model.id });
        const events = await this.clients
          .clientFor(target.provider)
          .responses.create(params, sdkCallOptions(upstream.signal, sendAfter));
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
        if (upstream.signal.aborted) throw abortedCall(upstream.signal);
        mapper.finish();
        settled = true;
        subscriber.complete();
      };

      void run()
        .catch((e: unknown) => {
          settled = true;
          if (!subscriber.closed) {
            subscriber.error(upstream.signal.aborted ? abortedCall(upstream.signal) : toUpstreamError(e));
          }
        })
        .finally(() => {
          silence.stop();
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
