import { Injectable } from '@nestjs/common';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { from, mergeMap, type Observable } from 'rxjs';
import type { UpstreamCall, UpstreamChatRequest } from '../providers/provider-adapter.js';
import type { PreparedCompletion } from './prepared-completion.js';
import { completionToChunks } from './wire/chunks.js';

/** A tool loop's call: what sets it apart from the plain path's one call. */
export interface LoopCall {
  /** The loop's inactivity guard (TOOL_INACTIVITY_MS). */
  silenceMs: number;
  /** The server-side tools have answered already (see `requestBody`). */
  afterToolOutputs: boolean;
}

/**
 * The request for one call. `tool_choice: "required"` or a named function makes the model call a
 * tool on every request it applies to; once the server-side tools have answered, the model is let
 * choose (`auto`), or the loop could only end at its iteration cap, with no answer.
 */
function requestBody(
  p: PreparedCompletion,
  messages: ChatCompletionMessageParam[],
  afterToolOutputs = false,
): UpstreamChatRequest {
  const choice = p.upstream.tool_choice;
  const forced = choice !== undefined && choice !== 'auto' && choice !== 'none';
  return afterToolOutputs && forced
    ? { ...p.upstream, messages, tool_choice: 'auto' }
    : { ...p.upstream, messages };
}

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
    loop?: LoopCall,
  ): Promise<ChatCompletion> {
    return p.adapter.complete(
      requestBody(p, messages, loop?.afterToolOutputs),
      p.target,
      this.call(p, signal, loop),
    );
  }

  /** Chunks as the provider streams them; with `provider_stream: false`, made from one completion. */
  chunks(
    p: PreparedCompletion,
    messages: ChatCompletionMessageParam[],
    signal: AbortSignal,
    loop?: LoopCall,
  ): Observable<ChatCompletionChunk> {
    if (p.providerStream) {
      return p.adapter.stream(
        requestBody(p, messages, loop?.afterToolOutputs),
        p.target,
        this.call(p, signal, loop),
      );
    }
    return from(this.complete(p, messages, signal, loop)).pipe(
      mergeMap((completion) =>
        from(
          completionToChunks({ id: completion.id, created: p.created, model: completion.model }, completion),
        ),
      ),
    );
  }

  /** The call waits for the rate limit's verdict before it is sent, not before it is built. */
  private call(p: PreparedCompletion, signal: AbortSignal, loop: LoopCall | undefined): UpstreamCall {
    return { signal, sendAfter: p.admission.admitted(), silenceMs: loop?.silenceMs };
  }
}
