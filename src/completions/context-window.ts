import { countTokens } from 'gpt-tokenizer';
import { ParleyError } from '../common/errors/parley-error.js';
import type { UpstreamChatRequest } from '../providers/provider-adapter.js';

/** Per-message framing tokens (role, separators), as OpenAI's counting guide has it. */
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;
/** A high-detail image's usual cost; images are not text, so this is an estimate either way. */
const TOKENS_PER_IMAGE = 765;
const TOKENS_PER_ATTACHMENT = 256;

// User text may contain `<|endoftext|>` and the like: count it as text, never throw.
const COUNT_OPTIONS = { disallowedSpecial: new Set<string>() };

interface PromptParts {
  texts: string[];
  fixedTokens: number;
}

function collectParts(request: UpstreamChatRequest): PromptParts {
  const texts: string[] = [];
  let fixedTokens = TOKENS_PER_REPLY;
  for (const message of request.messages) {
    fixedTokens += TOKENS_PER_MESSAGE;
    if ('name' in message && typeof message.name === 'string') texts.push(message.name);
    const content: unknown = message.content;
    if (typeof content === 'string') {
      texts.push(content);
    } else if (Array.isArray(content)) {
      for (const part of content as Array<Record<string, unknown>>) {
        if (typeof part.text === 'string') texts.push(part.text);
        else if (typeof part.refusal === 'string') texts.push(part.refusal);
        else if (part.type === 'image_url') fixedTokens += TOKENS_PER_IMAGE;
        else fixedTokens += TOKENS_PER_ATTACHMENT;
      }
    }
    if (message.role === 'assistant' && message.tool_calls) {
      for (const call of message.tool_calls) {
        if (call.type === 'function') texts.push(call.function.name, call.function.arguments);
      }
    }
  }
  if (request.tools && request.tools.length > 0) texts.push(JSON.stringify(request.tools));
  if (request.response_format) texts.push(JSON.stringify(request.response_format));
  return { texts, fixedTokens };
}

export interface PromptSize {
  /** Prompt tokens: exact when `exact`, else an upper bound (the byte count). */
  promptTokens: number;
  exact: boolean;
  completionBudget: number;
}

export function completionBudget(request: UpstreamChatRequest): number {
  return request.max_completion_tokens ?? request.max_tokens ?? 0;
}

/**
 * Checks that the prompt plus the requested completion budget fits the model. A BPE token is at
 * least one byte, so the UTF-8 byte count bounds the token count: the tokenizer only runs when
 * that bound does not already prove the prompt fits.
 */
export function checkContextWindow(request: UpstreamChatRequest, contextLength: number): PromptSize {
  const { texts, fixedTokens } = collectParts(request);
  const budget = completionBudget(request);
  let bound = fixedTokens;
  for (const text of texts) bound += Buffer.byteLength(text, 'utf8');
  if (bound + budget <= contextLength) return { promptTokens: bound, exact: false, completionBudget: budget };

  let tokens = fixedTokens;
  for (const text of texts) tokens += countTokens(text, COUNT_OPTIONS);
  if (tokens + budget > contextLength) {
    throw new ParleyError(
      'context_length_exceeded',
      `This model's maximum context length is ${contextLength} tokens. However, you requested ${tokens + budget} tokens ` +
        `(${tokens} in the messages, ${budget} in the completion). Please reduce the length of the messages or completion.`,
      { param: 'messages' },
    );
  }
  return { promptTokens: tokens, exact: true, completionBudget: budget };
}

/** Tokens in a piece of text, for usage when a provider reports none (an aborted stream). */
export function countTextTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text, COUNT_OPTIONS);
}

/** Exact prompt tokens of a request (messages and tools), for the same purpose. */
export function countPromptTokens(request: UpstreamChatRequest): number {
  const { texts, fixedTokens } = collectParts(request);
  return texts.reduce((sum, text) => sum + countTokens(text, COUNT_OPTIONS), fixedTokens);
}
