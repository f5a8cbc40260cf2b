import type {
  ChatCompletion,
  ChatCompletionMessage,
  ChatCompletionMessageFunctionToolCall,
} from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type { Response, ResponseUsage } from 'openai/resources/responses/responses';
import { ParleyError } from '../../common/errors/parley-error.js';

/**
 * Responses answer -> Chat Completions answer. Pure: no Nest, no I/O. The helpers below are shared
 * with the stream mapper so that both paths agree on finish reasons, usage and failures.
 */
export function responseToChatCompletion(
  response: Response,
  options: { model?: string } = {},
): ChatCompletion {
  const failure = responseFailure(response);
  if (failure) throw failure;

  const texts: string[] = [];
  const refusals: string[] = [];
  const annotations: ChatCompletionMessage.Annotation[] = [];
  const toolCalls: ChatCompletionMessageFunctionToolCall[] = [];
  let offset = 0;
  for (const item of response.output) {
    if (item.type === 'message') {
      for (const part of item.content) {
        if (part.type === 'output_text') {
          for (const a of part.annotations) {
            if (a.type !== 'url_citation') continue;
            annotations.push({
              type: 'url_citation',
              url_citation: {
                start_index: a.start_index + offset,
                end_index: a.end_index + offset,
                title: a.title,
                url: a.url,
              },
            });
          }
          texts.push(part.text);
          offset += part.text.length;
        } else {
          refusals.push(part.refusal);
        }
      }
    } else if (item.type === 'function_call') {
      toolCalls.push({
        id: item.call_id,
        type: 'function',
        function: { name: item.name, arguments: item.arguments },
      });
    }
    // Reasoning items and server-side tool items have no Chat Completions equivalent.
  }

  const message: ChatCompletionMessage = {
    role: 'assistant',
    content: texts.length > 0 ? texts.join('') : null,
    refusal: refusals.length > 0 ? refusals.join('') : null,
    ...(annotations.length > 0 ? { annotations } : {}),
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
  return {
    id: response.id,
    object: 'chat.completion',
    created: Math.floor(response.created_at),
    model: options.model ?? response.model,
    choices: [
      {
        index: 0,
        message,
        logprobs: null,
        finish_reason: chatFinishReason(response, toolCalls.length > 0),
      },
    ],
    ...(response.usage ? { usage: toChatUsage(response.usage) } : {}),
    ...(response.service_tier ? { service_tier: response.service_tier } : {}),
  };
}

export type ChatFinishReason = ChatCompletion.Choice['finish_reason'];

/**
 * An incomplete response is cut short: `length` (output cap) or `content_filter`, even when it holds
 * a function call, whose arguments may then be cut too (Chat Completions answers `length` there as
 * well). Otherwise `tool_calls` when the model called a function, else `stop`.
 */
export function chatFinishReason(
  response: Pick<Response, 'status' | 'incomplete_details'>,
  calledFunction: boolean,
): ChatFinishReason {
  if (response.status === 'incomplete') {
    return response.incomplete_details?.reason === 'content_filter' ? 'content_filter' : 'length';
  }
  return calledFunction ? 'tool_calls' : 'stop';
}

/** Responses usage in Chat Completions shape, reasoning tokens where OpenAI puts them. */
export function toChatUsage(usage: ResponseUsage): CompletionUsage {
  const input = usage.input_tokens;
  const output = usage.output_tokens;
  const cacheWrite = usage.input_tokens_details?.cache_write_tokens;
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: usage.total_tokens ?? input + output,
    prompt_tokens_details: {
      cached_tokens: usage.input_tokens_details?.cached_tokens ?? 0,
      ...(typeof cacheWrite === 'number' ? { cache_write_tokens: cacheWrite } : {}),
    },
    completion_tokens_details: { reasoning_tokens: usage.output_tokens_details?.reasoning_tokens ?? 0 },
  };
}

/**
 * The error a finished response stands for, if any: `failed` (with the provider's message) and
 * `cancelled` are 502s; `completed`, `incomplete` or no status are answers. A non-stream call that
 * comes back `queued`/`in_progress` is not an answer either (Parley never asks for background mode).
 */
export function responseFailure(response: Pick<Response, 'status' | 'error'>): ParleyError | undefined {
  switch (response.status) {
    case undefined:
    case 'completed':
    case 'incomplete':
      return undefined;
    case 'failed':
      return new ParleyError(
        'upstream_error',
        `The provider failed: ${response.error?.message ?? 'the response failed without a message.'}`,
      );
    case 'cancelled':
      return new ParleyError('upstream_error', 'The provider cancelled the response.');
    case 'queued':
    case 'in_progress':
      return new ParleyError(
        'upstream_error',
        `The provider answered with an unfinished response (${response.status}).`,
      );
  }
}
