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
import { callWithin, SilenceLimit, silenceLimitMs } from '../silence-limit.js';
import { abortedCall, toUpstreamError } from '../upstream-error.js';

function isCompletion(value: unknown): value is ChatCompletion {
  return typeof value === 'object' && value !== null && Array.isArray((value as ChatCompletion).choices);
}

function isChunk(value: unknown): value is ChatCompletionChunk {
  return typeof value === 'object' && value !== null && Array.isArray((value as ChatCompletionChunk).choices);
}

/** `previous_response_id` only means something on the Responses wire. */
function chatBody(request: UpstreamChatRequest): Omit<UpstreamChatRequest, 'previous_response_id'> {
  if (request.previous_response_id === undefined) return request;
  const { previous_response_id: _dropped, ...body } = request;
  return body;
}

/** OpenAI's Chat Completions wire, through the official SDK: Parley's native shape, so no mapping. */
@Injectable()
@ProviderAdapterFor('chat_completions')
export class ChatCompletionsAdapter implements ProviderAdapter {
  readonly kind = 'chat_completions' as const;

  constructor(private readonly clients: OpenAiClientFactory) {}

  async complete(
    request: UpstreamChatRequest,
    target: CompletionTarget,
    call: UpstreamCall,
  ): Promise<ChatCompletion> {
    const client = this.clients.clientFor(target.provider);
    const result: unknown = await callWithin(call.signal, silenceLimitMs(target, call), (signal) =>
      client.chat.completions.create(
        { ...chatBody(request), model: target.model.id, stream: false },
        sdkCallOptions(signal, call.sendAfter),
      ),
    );
    if (!isCompletion(result)) {
      throw new ParleyError('upstream_error', 'The provider sent an answer that is not a chat completion.');
    }
    return result;
  }

  stream(
    request: UpstreamChatRequest,
    target: CompletionTarget,
    call: UpstreamCall,
  ): Observable<ChatCompletionChunk> {
    const { signal, sendAfter } = call;
    return new Observable<ChatCompletionChunk>((subscriber) => {
      const abort = new AbortController();
      const unfollow = followAbort(signal, abort);
      // Set before the subscriber is told the end: by then the SDK has read or dropped the upstream
      // body, and an abort would only cost an event and two DOMExceptions down the signal chain.
      let settled = false;
      const client = this.clients.clientFor(target.provider);

      const run = async (): Promise<void> => {
        let finished = false;
        const silence = new SilenceLimit(abort, silenceLimitMs(target, call));
        try {
          const stream = await client.chat.completions.create(
            {
              ...chatBody(request),
              model: target.model.id,
              stream: true,
              stream_options: { include_usage: true },
            },
            sdkCallOptions(abort.signal, sendAfter),
          );
          for await (const chunk of stream as AsyncIterable<unknown>) {
            if (abort.signal.aborted) break;
            silence.heard();
            if (!isChunk(chunk))
              throw new ParleyError(
                'upstream_error',
                'The provider sent a stream event that is not a chunk.',
              );
            if (chunk.choices.some((c) => c.finish_reason)) finished = true;
            subscriber.next(chunk);
          }
          settled = true;
          // After an unsubscribe nothing is delivered; an abort (the caller's, or a silent provider's)
          // is an error.
          if (abort.signal.aborted) return subscriber.error(abortedCall(abort.signal));
          // The SDK ends quietly when the body stops early: no finish_reason means a cut stream.
          if (!finished) {
            throw new ParleyError(
              'upstream_stream_truncated',
              'The provider ended the stream before it finished.',
            );
          }
          subscriber.complete();
        } catch (e) {
          settled = true;
          subscriber.error(abort.signal.aborted ? abortedCall(abort.signal) : toUpstreamError(e));
        } finally {
          silence.stop();
        }
      };
      void run();
      return () => {
        unfollow();
        if (!settled) abort.abort();
      };
    });
  }
}
