import type {
  ChatCompletionMessageParam,
  ChatCompletionStreamOptions,
} from 'openai/resources/chat/completions';
import type { ResponseCreateParams, ResponseInputItem } from 'openai/resources/responses/responses';
import { describe, expect, it } from 'vitest';
import { ParleyError } from '../../common/errors/parley-error.js';
import type { UpstreamChatRequest } from '../provider-adapter.js';
import { toResponsesRequest } from './responses-request.mapper.js';

const HI: ChatCompletionMessageParam = { role: 'user', content: 'hi' };
const HI_ITEM: ResponseInputItem = {
  type: 'message',
  role: 'user',
  content: [{ type: 'input_text', text: 'hi' }],
};

/** A request with one user message, plus `extra` (which may hold keys outside the SDK type). */
function req(extra: Partial<UpstreamChatRequest> & Record<string, unknown> = {}): UpstreamChatRequest {
  return { model: 'gpt-test', messages: [HI], ...extra };
}

/** The mapping of `req()`: what every case adds to or changes. */
const BASE: ResponseCreateParams = { model: 'gpt-test', input: [HI_ITEM], stream: false };

function rejection(request: UpstreamChatRequest): ParleyError {
  try {
    toResponsesRequest(request, { stream: false });
  } catch (e) {
    expect(e).toBeInstanceOf(ParleyError);
    return e as ParleyError;
  }
  throw new Error('expected a rejection');
}

const userMessage = (content: ChatCompletionMessageParam['content']) =>
  ({ role: 'user', content }) as ChatCompletionMessageParam;

describe(toResponsesRequest.name, () => {
  describe('messages', () => {
    it.each<[string, ChatCompletionMessageParam[], Pick<ResponseCreateParams, 'instructions' | 'input'>]>([
      [
        'system and developer text into instructions, joined with newlines, wherever they stand',
        [
          { role: 'system', content: 'Be brief.' },
          HI,
          {
            role: 'developer',
            content: [
              { type: 'text', text: 'Use metric units.' },
              { type: 'text', text: 'No emoji.' },
            ],
          },
        ],
        { instructions: 'Be brief.\nUse metric units.\nNo emoji.', input: [HI_ITEM] },
      ],
      ['no system message: no instructions', [HI], { input: [HI_ITEM] }],
      [
        'user text parts, images (detail kept, default auto) and files, in order',
        [
          userMessage([
            { type: 'text', text: 'Compare' },
            { type: 'image_url', image_url: { url: 'https://x.test/a.png', detail: 'low' } },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
            { type: 'file', file: { file_id: 'file-1' } },
            { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' } },
          ]),
        ],
        {
          input: [
            {
              type: 'message',
              role: 'user',
              content: [
                { type: 'input_text', text: 'Compare' },
                { type: 'input_image', image_url: 'https://x.test/a.png', detail: 'low' },
                { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'auto' },
                { type: 'input_file', file_id: 'file-1' },
                { type: 'input_file', file_data: 'data:application/pdf;base64,JVBE', filename: 'a.pdf' },
              ],
            },
          ],
        },
      ],
      [
        'prompt cache breakpoints on parts kept',
        [userMessage([{ type: 'text', text: 'long prefix', prompt_cache_breakpoint: { mode: 'explicit' } }])],
        {
          input: [
            {
              type: 'message',
              role: 'user',
              content: [
                { type: 'input_text', text: 'long prefix', prompt_cache_breakpoint: { mode: 'explicit' } },
              ],
            },
          ],
        },
      ],
      [
        'assistant text as a string message',
        [HI, { role: 'assistant', content: 'Hello!' }],
        { input: [HI_ITEM, { type: 'message', role: 'assistant', content: 'Hello!' }] },
      ],
      [
        'assistant text parts joined, refusal parts as the text they were',
        [
          {
            role: 'assistant',
            content: [
              { type: 'text', text: 'Hel' },
              { type: 'text', text: 'lo' },
            ],
          },
          { role: 'assistant', content: [{ type: 'refusal', refusal: 'I cannot.' }] },
          { role: 'assistant', content: null, refusal: 'Not that.' },
        ],
        {
          input: [
            { type: 'message', role: 'assistant', content: 'Hello' },
            { type: 'message', role: 'assistant', content: 'I cannot.' },
            { type: 'message', role: 'assistant', content: 'Not that.' },
          ],
        },
      ],
      [
        'assistant tool calls as function_call items, tool results as function_call_output',
        [
          HI,
          {
            role: 'assistant',
            content: 'Let me check.',
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_time', arguments: '{"timezone":"UTC"}' },
              },
              {
                id: 'call_2',
                type: 'function',
                function: { name: 'calculator', arguments: '{"expression":"1+1"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '12:00' },
          { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '2' }] },
        ],
        {
          input: [
            HI_ITEM,
            { type: 'message', role: 'assistant', content: 'Let me check.' },
            { type: 'function_call', call_id: 'call_1', name: 'get_time', arguments: '{"timezone":"UTC"}' },
            {
              type: 'function_call',
              call_id: 'call_2',
              name: 'calculator',
              arguments: '{"expression":"1+1"}',
            },
            { type: 'function_call_output', call_id: 'call_1', output: '12:00' },
            { type: 'function_call_output', call_id: 'call_2', output: '2' },
          ],
        },
      ],
      [
        'an assistant turn with only tool calls has no message item',
        [
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
          },
        ],
        { input: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' }] },
      ],
    ])('maps %s', (_name, messages, expected) => {
      expect(toResponsesRequest(req({ messages }), { stream: false })).toEqual({ ...BASE, ...expected });
    });

    it.each<[string, unknown[], string]>([
      [
        'user audio (Responses input has no audio content)',
        [
          userMessage([
            { type: 'text', text: 'listen' },
            { type: 'input_audio', input_audio: { data: 'AAA', format: 'wav' } },
          ]),
        ],
        'messages[0].content[1]',
      ],
      [
        'an unknown user part type',
        [HI, userMessage([{ type: 'video' }] as never)],
        'messages[1].content[0]',
      ],
      [
        'a system message with an image part',
        [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
        'messages[0].content[0]',
      ],
      ['the legacy function role', [HI, { role: 'function', name: 'f', content: '1' }], 'messages[1].role'],
      ['an unknown role', [{ role: 'robot', content: 'x' }], 'messages[0].role'],
      ['a participant name', [{ role: 'user', content: 'hi', name: 'ann' }], 'messages[0].name'],
      ['a system message name', [{ role: 'system', content: 'x', name: 'ops' }], 'messages[0].name'],
      [
        'a custom tool call in the history',
        [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'custom', custom: { name: 'g', input: 'x' } }] }],
        'messages[0].tool_calls[0]',
      ],
      [
        'assistant audio',
        [{ role: 'assistant', content: 'x', audio: { id: 'audio_1' } }],
        'messages[0].audio',
      ],
      [
        'an assistant legacy function_call',
        [{ role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } }],
        'messages[0].function_call',
      ],
    ])('rejects %s with a 400 naming it', (_name, messages, param) => {
      const error = rejection(req({ messages: messages as ChatCompletionMessageParam[] }));
      expect(error).toMatchObject({ status: 400, code: 'unsupported_parameter', param });
    });
  });

  describe('parameters', () => {
    it.each<[string, Partial<UpstreamChatRequest>, Partial<ResponseCreateParams>]>([
      [
        'function tools flattened, strict kept',
        {
          tools: [
            {
              type: 'function',
              function: {
                name: 'get_time',
                description: 'Current time',
                parameters: { type: 'object', properties: { timezone: { type: 'string' } } },
                strict: true,
              },
            },
          ],
        },
        {
          tools: [
            {
              type: 'function',
              name: 'get_time',
              description: 'Current time',
              parameters: { type: 'object', properties: { timezone: { type: 'string' } } },
              strict: true,
            },
          ],
        },
      ],
      [
        'function tools: strict false and an empty parameter list when absent',
        { tools: [{ type: 'function', function: { name: 'ping' } }] },
        {
          tools: [
            {
              type: 'function',
              name: 'ping',
              parameters: { type: 'object', properties: {}, additionalProperties: false },
              strict: false,
            },
          ],
        },
      ],
      ['tool_choice none', { tool_choice: 'none' }, { tool_choice: 'none' }],
      ['tool_choice auto', { tool_choice: 'auto' }, { tool_choice: 'auto' }],
      ['tool_choice required', { tool_choice: 'required' }, { tool_choice: 'required' }],
      [
        'a named tool_choice',
        { tool_choice: { type: 'function', function: { name: 'get_time' } } },
        { tool_choice: { type: 'function', name: 'get_time' } },
      ],
      [
        'an allowed_tools tool_choice',
        {
          tool_choice: {
            type: 'allowed_tools',
            allowed_tools: {
              mode: 'required',
              tools: [{ type: 'function', function: { name: 'get_time' } }],
            },
          },
        },
        {
          tool_choice: {
            type: 'allowed_tools',
            mode: 'required',
            tools: [{ type: 'function', name: 'get_time' }],
          },
        },
      ],
      [
        'reasoning_effort into reasoning.effort',
        { reasoning_effort: 'high' },
        { reasoning: { effort: 'high' } },
      ],
      ['reasoning_effort none kept', { reasoning_effort: 'none' }, { reasoning: { effort: 'none' } }],
      ['verbosity into text.verbosity', { verbosity: 'low' }, { text: { verbosity: 'low' } }],
      ['response_format text', { response_format: { type: 'text' } }, { text: { format: { type: 'text' } } }],
      [
        'response_format json_object',
        { response_format: { type: 'json_object' } },
        { text: { format: { type: 'json_object' } } },
      ],
      [
        'response_format json_schema with its schema, strict and description, beside verbosity',
        {
          verbosity: 'high',
          response_format: {
            type: 'json_schema',
            json_schema: {
              name: 'answer',
              description: 'The answer',
              schema: { type: 'object', properties: { a: { type: 'number' } }, required: ['a'] },
              strict: true,
            },
          },
        },
        {
          text: {
            verbosity: 'high',
            format: {
              type: 'json_schema',
              name: 'answer',
              description: 'The answer',
              schema: { type: 'object', properties: { a: { type: 'number' } }, required: ['a'] },
              strict: true,
            },
          },
        },
      ],
      [
        'response_format json_schema without schema or strict',
        { response_format: { type: 'json_schema', json_schema: { name: 'free' } } },
        { text: { format: { type: 'json_schema', name: 'free', schema: {} } } },
      ],
      [
        'max_completion_tokens into max_output_tokens',
        { max_completion_tokens: 300 },
        { max_output_tokens: 300 },
      ],
      ['max_tokens into max_output_tokens', { max_tokens: 200 }, { max_output_tokens: 200 }],
      [
        'max_completion_tokens over max_tokens',
        { max_tokens: 200, max_completion_tokens: 300 },
        { max_output_tokens: 300 },
      ],
      [
        'max_completion_tokens over max_tokens, either order',
        { max_completion_tokens: 300, max_tokens: 200 },
        { max_output_tokens: 300 },
      ],
      [
        'the sampling and bookkeeping fields Responses shares',
        {
          temperature: 0.2,
          top_p: 0.9,
          parallel_tool_calls: false,
          metadata: { k: 'v' },
          user: 'u-1',
          store: false,
          service_tier: 'flex',
          prompt_cache_key: 'pck',
          prompt_cache_retention: '24h',
          prompt_cache_options: { mode: 'explicit' },
          safety_identifier: 'sid',
          moderation: { model: 'omni-moderation-latest' },
        },
        {
          temperature: 0.2,
          top_p: 0.9,
          parallel_tool_calls: false,
          metadata: { k: 'v' },
          user: 'u-1',
          store: false,
          service_tier: 'flex',
          prompt_cache_key: 'pck',
          prompt_cache_retention: '24h',
          prompt_cache_options: { mode: 'explicit' },
          safety_identifier: 'sid',
          moderation: { model: 'omni-moderation-latest' },
        },
      ],
      [
        'previous_response_id forwarded',
        { previous_response_id: 'resp_1' },
        { previous_response_id: 'resp_1' },
      ],
    ])('maps %s', (_name, extra, expected) => {
      expect(toResponsesRequest(req(extra), { stream: false })).toEqual({ ...BASE, ...expected });
    });

    it.each<[string, Partial<UpstreamChatRequest> & Record<string, unknown>]>([
      [
        'stream_options.include_usage (usage always comes with response.completed)',
        { stream_options: { include_usage: true } },
      ],
      ['n: 1', { n: 1 }],
      ['logprobs: false', { logprobs: false }],
      ['top_logprobs: 0', { top_logprobs: 0 }],
      ['presence_penalty: 0', { presence_penalty: 0 }],
      ['frequency_penalty: 0', { frequency_penalty: 0 }],
      ['an empty stop list', { stop: [] }],
      ['an empty logit_bias', { logit_bias: {} }],
      ['text-only modalities', { modalities: ['text'] }],
      ['an empty functions list', { functions: [] }],
      ['null values', { seed: null, stop: null, audio: null, n: null, temperature: null, max_tokens: null }],
      ['undefined values', { seed: undefined, logit_bias: undefined }],
      ['a stream flag left in the body (the call decides)', { stream: true }],
    ])('accepts %s, which changes nothing', (_name, extra) => {
      expect(toResponsesRequest(req(extra), { stream: false })).toEqual(BASE);
    });

    it.each<[string, Partial<UpstreamChatRequest> & Record<string, unknown>, string]>([
      ['n > 1', { n: 2 }, 'n'],
      ['logprobs: true', { logprobs: true }, 'logprobs'],
      ['top_logprobs > 0', { top_logprobs: 3 }, 'top_logprobs'],
      ['stop as a string', { stop: 'END' }, 'stop'],
      ['stop as a list', { stop: ['END', '\n\n'] }, 'stop'],
      ['audio output', { audio: { voice: 'alloy', format: 'mp3' } }, 'audio'],
      ['modalities with audio', { modalities: ['text', 'audio'] }, 'modalities'],
      ['logit_bias', { logit_bias: { '50256': -100 } }, 'logit_bias'],
      ['seed', { seed: 7 }, 'seed'],
      ['a non-zero presence_penalty', { presence_penalty: 0.5 }, 'presence_penalty'],
      ['a non-zero frequency_penalty', { frequency_penalty: -0.5 }, 'frequency_penalty'],
      ['legacy functions', { functions: [{ name: 'f' }] }, 'functions'],
      ['legacy function_call', { function_call: 'auto' }, 'function_call'],
      ['prediction', { prediction: { type: 'content', content: 'draft' } }, 'prediction'],
      ['web_search_options', { web_search_options: {} }, 'web_search_options'],
      ['a custom tool', { tools: [{ type: 'custom', custom: { name: 'grammar' } }] }, 'tools[0]'],
      [
        'a custom tool_choice',
        { tool_choice: { type: 'custom', custom: { name: 'grammar' } } },
        'tool_choice',
      ],
      [
        'a non-function tool in allowed_tools',
        {
          tool_choice: {
            type: 'allowed_tools',
            allowed_tools: { mode: 'auto', tools: [{ type: 'custom', custom: { name: 'g' } }] },
          },
        },
        'tool_choice.allowed_tools.tools[0]',
      ],
      [
        'an unknown stream_options key',
        { stream_options: { include_usage: true, flush: true } as ChatCompletionStreamOptions },
        'stream_options.flush',
      ],
      ['an unknown top-level key', { frobnicate: true }, 'frobnicate'],
      ['a Parley field that should have been removed', { conversation_id: 'c-1' }, 'conversation_id'],
    ])('rejects %s with a 400 naming it', (_name, extra, param) => {
      const error = rejection(req(extra));
      expect(error).toMatchObject({ status: 400, code: 'unsupported_parameter', param });
      expect(error.message).toContain('Responses API provider');
    });

    it('names n > 1 in its message', () => {
      expect(rejection(req({ n: 3 })).message).toBe('The Responses API provider does not support `n` > 1.');
    });
  });

  describe('stream', () => {
    it.each([true, false])('sets stream: %s from the options', (stream) => {
      expect(toResponsesRequest(req(), { stream })).toEqual({ ...BASE, stream });
    });

    it.each<[boolean, Partial<ResponseCreateParams>]>([
      [true, { stream: true, stream_options: { include_obfuscation: false } }],
      [false, { stream: false }],
    ])('forwards stream_options.include_obfuscation only when streaming (stream: %s)', (stream, expected) => {
      const request = req({ stream_options: { include_usage: true, include_obfuscation: false } });
      expect(toResponsesRequest(request, { stream })).toEqual({ ...BASE, ...expected });
    });
  });
});
