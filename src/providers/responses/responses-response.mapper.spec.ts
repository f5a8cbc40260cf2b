import type { ChatCompletion } from 'openai/resources/chat/completions';
import type {
  Response,
  ResponseFunctionToolCall,
  ResponseOutputMessage,
  ResponseReasoningItem,
  ResponseUsage,
} from 'openai/resources/responses/responses';
import { describe, expect, it } from 'vitest';
import { ParleyError } from '../../common/errors/parley-error.js';
import { responseToChatCompletion, toChatUsage } from './responses-response.mapper.js';

const USAGE: ResponseUsage = {
  input_tokens: 20,
  input_tokens_details: { cached_tokens: 4, cache_write_tokens: 0 },
  output_tokens: 50,
  output_tokens_details: { reasoning_tokens: 32 },
  total_tokens: 70,
};
const CHAT_USAGE = {
  prompt_tokens: 20,
  completion_tokens: 50,
  total_tokens: 70,
  prompt_tokens_details: { cached_tokens: 4, cache_write_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 32 },
};

function response(overrides: Partial<Response> = {}): Response {
  return {
    id: 'resp_1',
    object: 'response',
    created_at: 1_700_000_000,
    model: 'gpt-upstream',
    status: 'completed',
    output: [],
    output_text: '',
    error: null,
    incomplete_details: null,
    instructions: null,
    metadata: null,
    parallel_tool_calls: true,
    temperature: 1,
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    usage: USAGE,
    ...overrides,
  };
}

const message = (...texts: string[]): ResponseOutputMessage => ({
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  status: 'completed',
  content: texts.map((text) => ({ type: 'output_text', text, annotations: [] })),
});

const call = (callId: string, name: string, args: string): ResponseFunctionToolCall => ({
  id: `fc_${callId}`,
  type: 'function_call',
  call_id: callId,
  name,
  arguments: args,
  status: 'completed',
});

const reasoning: ResponseReasoningItem = { id: 'rs_1', type: 'reasoning', summary: [] };

describe(responseToChatCompletion.name, () => {
  it.each<[string, Partial<Response>, Pick<ChatCompletion.Choice, 'message' | 'finish_reason'>]>([
    [
      'text, parts concatenated, reasoning items skipped',
      { output: [reasoning, message('Hello, ', 'world.')] },
      { message: { role: 'assistant', content: 'Hello, world.', refusal: null }, finish_reason: 'stop' },
    ],
    [
      'function calls as tool_calls',
      {
        output: [
          message('Checking.'),
          call('call_1', 'get_time', '{"timezone":"UTC"}'),
          call('call_2', 'calculator', '{"expression":"2*3"}'),
        ],
      },
      {
        message: {
          role: 'assistant',
          content: 'Checking.',
          refusal: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_time', arguments: '{"timezone":"UTC"}' },
            },
            {
              id: 'call_2',
              type: 'function',
              function: { name: 'calculator', arguments: '{"expression":"2*3"}' },
            },
          ],
        },
        finish_reason: 'tool_calls',
      },
    ],
    [
      'only a function call: content null',
      { output: [call('call_1', 'f', '{}')] },
      {
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
        finish_reason: 'tool_calls',
      },
    ],
    [
      'a refusal',
      {
        output: [{ ...message(), content: [{ type: 'refusal', refusal: 'I cannot help with that.' }] }],
      },
      {
        message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' },
        finish_reason: 'stop',
      },
    ],
    [
      'incomplete at the output cap: length',
      {
        status: 'incomplete',
        incomplete_details: { reason: 'max_output_tokens' },
        output: [message('Once upon')],
      },
      { message: { role: 'assistant', content: 'Once upon', refusal: null }, finish_reason: 'length' },
    ],
    [
      'incomplete by the content filter: content_filter',
      { status: 'incomplete', incomplete_details: { reason: 'content_filter' }, output: [message('Well')] },
      { message: { role: 'assistant', content: 'Well', refusal: null }, finish_reason: 'content_filter' },
    ],
    [
      'incomplete inside a function call: length, not tool_calls',
      {
        status: 'incomplete',
        incomplete_details: { reason: 'max_output_tokens' },
        output: [call('call_1', 'f', '{"a":')],
      },
      {
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":' } }],
        },
        finish_reason: 'length',
      },
    ],
    [
      'no output at all',
      { output: [] },
      { message: { role: 'assistant', content: null, refusal: null }, finish_reason: 'stop' },
    ],
    [
      'url citations, offsets across parts',
      {
        output: [
          {
            ...message(),
            content: [
              { type: 'output_text', text: 'See ', annotations: [] },
              {
                type: 'output_text',
                text: 'the docs.',
                annotations: [
                  {
                    type: 'url_citation',
                    start_index: 4,
                    end_index: 8,
                    title: 'Docs',
                    url: 'https://d.test',
                  },
                ],
              },
            ],
          },
        ],
      },
      {
        message: {
          role: 'assistant',
          content: 'See the docs.',
          refusal: null,
          annotations: [
            {
              type: 'url_citation',
              url_citation: { start_index: 8, end_index: 12, title: 'Docs', url: 'https://d.test' },
            },
          ],
        },
        finish_reason: 'stop',
      },
    ],
  ])('maps %s', (_name, overrides, expected) => {
    const sut = responseToChatCompletion(response(overrides), { model: 'gpt-test' });
    expect(sut).toEqual({
      id: 'resp_1',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'gpt-test',
      choices: [{ index: 0, logprobs: null, ...expected }],
      usage: CHAT_USAGE,
    });
  });

  it.each<[string, Partial<Response>, string]>([
    [
      'failed, with the provider message',
      { status: 'failed', error: { code: 'server_error', message: 'The model crashed.' } },
      'The provider failed: The model crashed.',
    ],
    [
      'failed, without an error object',
      { status: 'failed' },
      'The provider failed: the response failed without a message.',
    ],
    ['cancelled', { status: 'cancelled' }, 'The provider cancelled the response.'],
    [
      'still in progress',
      { status: 'in_progress' },
      'The provider answered with an unfinished response (in_progress).',
    ],
  ])('throws a 502 upstream_error for a response %s', (_name, overrides, message) => {
    let error: unknown;
    try {
      responseToChatCompletion(response(overrides));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ParleyError);
    expect(error).toMatchObject({ code: 'upstream_error', status: 502, message });
  });

  it.each<[string, { model?: string }, string]>([
    ['the model option', { model: 'gpt-test' }, 'gpt-test'],
    ["the response's model without one", {}, 'gpt-upstream'],
  ])('reports %s as the model', (_name, options, model) => {
    expect(responseToChatCompletion(response({ output: [message('x')] }), options).model).toBe(model);
  });

  it.each<[string, Partial<Response>, Partial<ChatCompletion>]>([
    ['no usage: no usage key', { usage: undefined }, {}],
    ['the service tier', { service_tier: 'flex' }, { service_tier: 'flex', usage: CHAT_USAGE }],
  ])('carries %s', (_name, overrides, expected) => {
    const {
      id: _id,
      object: _o,
      created: _c,
      model: _m,
      choices: _ch,
      ...rest
    } = responseToChatCompletion(response({ output: [message('x')], ...overrides }));
    expect(rest).toEqual(expected);
  });
});

describe(toChatUsage.name, () => {
  it.each<[string, ResponseUsage, ReturnType<typeof toChatUsage>]>([
    ['input/output tokens, cached and reasoning tokens where OpenAI puts them', USAGE, CHAT_USAGE],
    [
      'a provider that leaves the details out',
      { input_tokens: 3, output_tokens: 4, total_tokens: 7 } as ResponseUsage,
      {
        prompt_tokens: 3,
        completion_tokens: 4,
        total_tokens: 7,
        prompt_tokens_details: { cached_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    ],
  ])('maps %s', (_name, usage, expected) => {
    expect(toChatUsage(usage)).toEqual(expected);
  });
});
