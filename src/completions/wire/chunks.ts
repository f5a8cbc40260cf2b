import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageToolCall,
} from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';

/** The frame header every chunk of one completion shares. */
export interface ChunkHead {
  id: string;
  created: number;
  model: string;
}

type ChunkChoice = ChatCompletionChunk.Choice;
type Delta = ChunkChoice['delta'];

export function chunk(
  head: ChunkHead,
  choices: ChunkChoice[],
  extra: Record<string, unknown> = {},
): ChatCompletionChunk {
  return {
    id: head.id,
    object: 'chat.completion.chunk',
    created: head.created,
    model: head.model,
    choices,
    ...extra,
  };
}

export function deltaChoice(
  delta: Delta,
  finishReason: ChunkChoice['finish_reason'] = null,
  index = 0,
): ChunkChoice {
  return { index, delta, logprobs: null, finish_reason: finishReason };
}

/** The usage chunk OpenAI sends last when `stream_options.include_usage` is set. */
export function usageChunk(head: ChunkHead, usage: CompletionUsage): ChatCompletionChunk {
  return chunk(head, [], { usage });
}

/**
 * Turns a whole completion into the chunks a stream would have carried: used when the client
 * streams but the provider call does not (`provider_stream: false`).
 */
export function completionToChunks(head: ChunkHead, completion: ChatCompletion): ChatCompletionChunk[] {
  const chunks: ChatCompletionChunk[] = [];
  for (const choice of completion.choices) {
    const { message } = choice;
    chunks.push(
      chunk(head, [deltaChoice({ role: 'assistant', content: message.content ?? '' }, null, choice.index)]),
    );
    if (message.refusal)
      chunks.push(chunk(head, [deltaChoice({ refusal: message.refusal }, null, choice.index)]));
    const toolCalls = (message.tool_calls ?? []).filter(
      (c): c is ChatCompletionMessageToolCall & { type: 'function' } => c.type === 'function',
    );
    if (toolCalls.length > 0) {
      const deltas = toolCalls.map((call, index) => ({
        index,
        id: call.id,
        type: 'function' as const,
        function: { name: call.function.name, arguments: call.function.arguments },
      }));
      chunks.push(chunk(head, [deltaChoice({ tool_calls: deltas }, null, choice.index)]));
    }
    chunks.push(chunk(head, [deltaChoice({}, choice.finish_reason, choice.index)]));
  }
  if (completion.usage) chunks.push(usageChunk(head, completion.usage));
  return chunks;
}

/** Fills what OpenAI's schema requires and some providers leave out, and sets Parley's id. */
export function normalizeCompletion(completion: ChatCompletion, id: string): ChatCompletion {
  return {
    ...completion,
    id,
    object: 'chat.completion',
    choices: completion.choices.map((choice, index) => ({
      ...choice,
      index: choice.index ?? index,
      logprobs: choice.logprobs ?? null,
      finish_reason: choice.finish_reason ?? 'stop',
      message: {
        ...choice.message,
        role: 'assistant',
        content: choice.message.content ?? null,
        refusal: choice.message.refusal ?? null,
      },
    })),
  };
}

/** Sums usage over several upstream calls (the tool loop). */
export function addUsage(
  a: CompletionUsage | undefined,
  b: CompletionUsage | undefined,
): CompletionUsage | undefined {
  if (!a) return b;
  if (!b) return a;
  const reasoning =
    (a.completion_tokens_details?.reasoning_tokens ?? 0) +
    (b.completion_tokens_details?.reasoning_tokens ?? 0);
  const cached =
    (a.prompt_tokens_details?.cached_tokens ?? 0) + (b.prompt_tokens_details?.cached_tokens ?? 0);
  return {
    prompt_tokens: a.prompt_tokens + b.prompt_tokens,
    completion_tokens: a.completion_tokens + b.completion_tokens,
    total_tokens: a.total_tokens + b.total_tokens,
    ...(reasoning > 0 ? { completion_tokens_details: { reasoning_tokens: reasoning } } : {}),
    ...(cached > 0 ? { prompt_tokens_details: { cached_tokens: cached } } : {}),
  };
}

/** Parley's conversation block rides on a chunk with no choices, so OpenAI clients skip it. */
export function conversationChunk(head: ChunkHead, conversation: object): ChatCompletionChunk {
  return chunk(head, [], { _conversation: conversation });
}

/** The tool loop's consolidated tool calls: whole calls, each with its `index`. */
export function toolCallsChunk(
  head: ChunkHead,
  calls: ReadonlyArray<{ index: number; id: string; name: string; arguments: string }>,
): ChatCompletionChunk {
  const deltas = calls.map((c) => ({
    index: c.index,
    id: c.id,
    type: 'function' as const,
    function: { name: c.name, arguments: c.arguments },
  }));
  return chunk(head, [deltaChoice({ tool_calls: deltas })]);
}

export interface ToolOutputPayload {
  tool_call_id: string;
  name: string;
  output: string;
}

/** A server-side tool's result, as an extra key of `delta` (OpenAI clients ignore it). */
export function toolOutputChunk(head: ChunkHead, output: ToolOutputPayload): ChatCompletionChunk {
  return chunk(head, [deltaChoice({ tool_output: output } as Delta)]);
}
