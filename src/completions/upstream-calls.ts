import { Injectable } from '@nestjs/common';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { from, mergeMap, type Observable } from 'rxjs';
import type { UpstreamCall } from '../providers/provider-adapter.js';
import type { PreparedCompletion } from './prepared-completion.js';
import { completionToChunks } from './wire/chunks.js';

/**
 * One upstream call for a prepared completion, with its messages; streamed or not as asked. It is
 * sent once the rate limit's verdict is in, and fails with the refusal when there is one (the
 * adapters answer a call their fetch never sent with the reason it was held back).
 */
@Injectable()
export class UpstreamCalls {
  complete(
    p: PreparedCompletion,
    messages: ChatCompletionMessageParam[],
    signal: AbortSignal,
  ): Promise<ChatCompletion> {
    return p.adapter.complete({ ...p.upstream, messages }, p.target, this.call(p, signal));
  }

  /** Chunks as the provider streams them; with `provider_stream: false`, made from one completion. */
  chunks(
    p: PreparedCompletion,
    messages: ChatCompletionMessageParam[],
    signal: AbortSignal,
  ): Observable<ChatCompletionChunk> {
    if (p.providerStream)
      return p.adapter.stream({ ...p.upstream, messages }, p.target, this.call(p, signal));
    return from(this.complete(p, messages, signal)).pipe(
      mergeMap((completion) =>
        from(
          completionToChunks({ id: completion.id, created: p.created, model: completion.model }, completion),
        ),
      ),
    );
  }

  /** The call waits for the rate limit's verdict before it is sent, not before it is built. */
  private call(p: PreparedCompletion, signal: AbortSignal): UpstreamCall {
    return { signal, sendAfter: p.admission.admitted() };
  }
}
