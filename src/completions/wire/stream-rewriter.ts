import type { ChatCompletionChunk } from 'openai/resources/chat/completions';

export interface StreamRewriteOptions {
  id: string;
  /** Keep the usage chunk (the client asked for it with `stream_options.include_usage`). */
  includeUsage: boolean;
}

/**
 * Rewrites upstream chunks for the client: Parley's completion id on every chunk, the assistant
 * role on the first delta (some providers omit it), and the usage chunk Parley always asks for
 * only when the client asked too. Returns null for a chunk that is not forwarded.
 */
export function createStreamRewriter(
  options: StreamRewriteOptions,
): (chunk: ChatCompletionChunk) => ChatCompletionChunk | null {
  let roleSent = false;
  return (upstream) => {
    const isUsageChunk = upstream.choices.length === 0;
    if (isUsageChunk && !options.includeUsage) return null;
    const rewritten: ChatCompletionChunk = { ...upstream, id: options.id };
    if (!options.includeUsage) delete rewritten.usage;
    if (!roleSent && upstream.choices.length > 0) {
      roleSent = true;
      const [first, ...others] = upstream.choices;
      if (first && !first.delta.role) {
        rewritten.choices = [{ ...first, delta: { role: 'assistant', ...first.delta } }, ...others];
      }
    }
    return rewritten;
  };
}
