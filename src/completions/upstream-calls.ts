import { Injectable } from '@nestjs/common';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { from, mergeMap, type Observable } from 'rxjs';
import type { PreparedCompletion } from './prepared-completion.js';
import { completionToChunks } from './wire/chunks.js';

/** One upstream call for a prepared completion, with its messages; streamed or not as asked. */
@Injectable()
export class UpstreamCalls {
  complete(
    p: PreparedCompletion,
    messages: ChatCompletionMessageParam[],
    signal: AbortSignal,
  ): Promise<ChatCompletion> {
    return p.adapter.complete({ ...p.upstream, messages }, p.target, signal);
  }

  /** Chunks as the provider streams them; with `provider_stream: false`, made from one completion. */
  chunks(
    p: PreparedCompletion,
    messages: ChatCompletionMessageParam[],
    signal: AbortSignal,
  ): Observable<ChatCompletionChunk> {
    if (p.providerStream) return p.adapter.stream({ ...p.upstream, messages }, p.target, signal);
    return from(this.complete(p, messages, signal)).pipe(
      mergeMap((completion) =>
        from(
          completionToChunks({ id: completion.id, created: p.created, model: completion.model }, completion),
        ),
      ),
    );
  }
}
