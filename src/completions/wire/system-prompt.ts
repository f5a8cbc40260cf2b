import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';

/** `system_prompt` replaces a leading system (or developer) message, or becomes the first one. */
export function applySystemPrompt(
  messages: ChatCompletionMessageParam[],
  systemPrompt: string | undefined,
): ChatCompletionMessageParam[] {
  if (systemPrompt === undefined) return messages;
  const system: ChatCompletionMessageParam = { role: 'system', content: systemPrompt };
  const [first, ...rest] = messages;
  if (first && (first.role === 'system' || first.role === 'developer')) return [system, ...rest];
  return [system, ...messages];
}
