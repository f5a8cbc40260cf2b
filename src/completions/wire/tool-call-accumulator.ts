import type {
  ChatCompletionChunk,
  ChatCompletionMessageFunctionToolCall,
} from 'openai/resources/chat/completions';

type ToolCallDelta = NonNullable<ChatCompletionChunk.Choice.Delta['tool_calls']>[number];

/**
 * Collects streamed tool-call deltas (keyed by their `index`) into whole calls. Arguments arrive
 * in fragments; an empty argument string means `{}`.
 */
export class ToolCallAccumulator {
  private readonly calls = new Map<number, { id: string; name: string; arguments: string }>();

  add(deltas: readonly ToolCallDelta[] | undefined | null): void {
    for (const delta of deltas ?? []) {
      const call = this.calls.get(delta.index) ?? { id: '', name: '', arguments: '' };
      if (delta.id) call.id = delta.id;
      if (delta.function?.name) call.name += delta.function.name;
      if (delta.function?.arguments) call.arguments += delta.function.arguments;
      this.calls.set(delta.index, call);
    }
  }

  get size(): number {
    return this.calls.size;
  }

  /** The calls in index order, with generated ids for providers that send none. */
  finish(fallbackId: (index: number) => string): ChatCompletionMessageFunctionToolCall[] {
    return [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, call]) => ({
        id: call.id || fallbackId(index),
        type: 'function' as const,
        function: { name: call.name, arguments: call.arguments.trim() === '' ? '{}' : call.arguments },
      }));
  }
}
