import type { ChatCompletionChunk } from 'openai/resources/chat/completions';

export interface StreamRewriteOptions {
  id: string;
  /** Keep the usage chunk (the client asked for it with `stream_options.include_usage`). */
  includeUsage: boolean;
}

/**
 * Rewrites upstream chunks for the client: Parley's completion id on every chunk, the assistant
 * role on each choice's first delta (some providers omit it), and the usage chunk Parley always
 * asks for only when the client asked too. Returns null for a chunk that is not forwarded.
 */
export function createStreamRewriter(
  options: StreamRewriteOptions,
): (chunk: ChatCompletionChunk) => ChatCompletionChunk | null {
  // Choice indexes whose first delta has gone by (more than one with `n` > 1).
  const started = new Set<number>();
  return (upstream) => {
    const isUsageChunk = upstream.choices.length === 0;
    if (isUsageChunk && !options.includeUsage) return null;
    const rewritten: ChatCompletionChunk = { ...upstream, id: options.id };
    if (!options.includeUsage) delete rewritten.usage;
    if (upstream.choices.some((choice) => !started.has(choice.index))) {
      rewritten.choices = upstream.choices.map((choice) => {
        if (started.has(choice.index)) return choice;
        started.add(choice.index);
        return choice.delta.role ? choice : { ...choice, delta: { role: 'assistant', ...choice.delta } };
      });
    }
    return rewritten;
  };
}
