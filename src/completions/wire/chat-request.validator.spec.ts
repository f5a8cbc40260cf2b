import { describe, expect, it } from 'vitest';
import { ParleyError } from '../../common/errors/parley-error.js';
import { MAX_IMAGE_BYTES, validateChatRequest } from './chat-request.validator.js';

const user = (content: unknown) => ({ role: 'user', content });
const body = (extra: Record<string, unknown> = {}) => ({ messages: [user('hi')], ...extra });

function rejection(input: unknown): { param: string | null; code: string; message: string } {
  try {
    validateChatRequest(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ParleyError);
    const error = e as ParleyError;
    expect(error.status).toBe(400);
    return { param: error.param, code: error.code, message: error.message };
  }
  throw new Error('expected a rejection');
}

const bigImage = `data:image/png;base64,${'A'.repeat(Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 8)}`;

describe(validateChatRequest.name, () => {
  it.each([
    ['a non-object body', [1, 2], null],
    ['a null body', null, null],
    ['a string body', 'hello', null],
    ['missing messages', {}, 'messages'],
    ['messages not an array', { messages: 'hi' }, 'messages'],
    ['empty messages', { messages: [] }, 'messages'],
    ['a message that is not an object', { messages: ['hi'] }, 'messages[0]'],
    ['an unknown role', { messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    ['a missing role', { messages: [{ content: 'x' }] }, 'messages[0].role'],
    [
      'system with an image part',
      { messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
      'messages[0].content',
    ],
    [
      'developer content as a number',
      { messages: [{ role: 'developer', content: 5 }] },
      'messages[0].content',
    ],
    ['user content as an object', { messages: [user({ text: 'x' })] }, 'messages[0].content'],
    [
      'an unknown user part type',
      { messages: [user([{ type: 'video', video: {} }])] },
      'messages[0].content[0].type',
    ],
    ['a text part without text', { messages: [user([{ type: 'text' }])] }, 'messages[0].content[0].text'],
    [
      'audio in flac',
      { messages: [user([{ type: 'input_audio', input_audio: { data: 'AAA', format: 'flac' } }])] },
      'messages[0].content[0].input_audio.format',
    ],
    [
      'an image detail that does not exist',
      { messages: [user([{ type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'ultra' } }])] },
      'messages[0].content[0].image_url.detail',
    ],
    [
      'a file part with neither id nor data',
      { messages: [user([{ type: 'file', file: { filename: 'a.pdf' } }])] },
      'messages[0].content[0].file',
    ],
    [
      'a tool message without tool_call_id',
      { messages: [{ role: 'tool', content: 'x' }] },
      'messages[0].tool_call_id',
    ],
    [
      'assistant tool_calls not an array',
      { messages: [{ role: 'assistant', tool_calls: {} }] },
      'messages[0].tool_calls',
    ],
    [
      'assistant tool call without arguments',
      {
        messages: [
          { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f' } }] },
        ],
      },
      'messages[0].tool_calls[0].function.arguments',
    ],
    ['model not a string', body({ model: 42 }), 'model'],
    ['stream not a boolean', body({ stream: 'yes' }), 'stream'],
    ['stream_options not an object', body({ stream_options: true }), 'stream_options'],
    [
      'response_format json_schema without json_schema',
      body({ response_format: { type: 'json_schema' } }),
      'response_format.json_schema',
    ],
    [
      'response_format json_schema with a bad name',
      body({ response_format: { type: 'json_schema', json_schema: { name: 'has space' } } }),
      'response_format.json_schema.name',
    ],
    [
      'response_format json_schema with a 65-character name',
      body({ response_format: { type: 'json_schema', json_schema: { name: 'a'.repeat(65) } } }),
      'response_format.json_schema.name',
    ],
    ['an unknown response_format type', body({ response_format: { type: 'xml' } }), 'response_format.type'],
    ['reasoning_effort extreme', body({ reasoning_effort: 'extreme' }), 'reasoning_effort'],
    ['verbosity loud', body({ verbosity: 'loud' }), 'verbosity'],
    ['n of 0', body({ n: 0 }), 'n'],
    ['n of 1.5', body({ n: 1.5 }), 'n'],
    ['temperature of 3', body({ temperature: 3 }), 'temperature'],
    ['temperature as a string', body({ temperature: '1' }), 'temperature'],
    ['top_p of 1.1', body({ top_p: 1.1 }), 'top_p'],
    ['top_logprobs of 21', body({ top_logprobs: 21 }), 'top_logprobs'],
    ['presence_penalty of -2.5', body({ presence_penalty: -2.5 }), 'presence_penalty'],
    ['frequency_penalty of 2.5', body({ frequency_penalty: 2.5 }), 'frequency_penalty'],
    ['max_tokens of 0', body({ max_tokens: 0 }), 'max_tokens'],
    ['tools not an array', body({ tools: 'get_time' }), 'tools'],
    [
      'a tool with a bad name',
      body({ tools: [{ type: 'function', function: { name: 'bad name' } }] }),
      'tools[0].function.name',
    ],
    ['a tool of another type', body({ tools: [{ type: 'retrieval' }] }), 'tools[0].type'],
    ['tool_choice sometimes', body({ tool_choice: 'sometimes' }), 'tool_choice'],
    [
      'tool_choice function without a name',
      body({ tool_choice: { type: 'function', function: {} } }),
      'tool_choice.function.name',
    ],
    ['stop with five strings', body({ stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop'],
    ['metadata with a number', body({ metadata: { a: 1 } }), 'metadata.a'],
    ['conversation_id as a number', body({ conversation_id: 5 }), 'conversation_id'],
    ['provider_stream as a string', body({ provider_stream: 'no' }), 'provider_stream'],
  ])('rejects %s', (_name, input, param) => {
    expect(rejection(input).param).toBe(param);
  });

  it('lists the allowed values for an invalid reasoning_effort', () => {
    expect(rejection(body({ reasoning_effort: 'extreme' })).message).toBe(
      'Invalid reasoning_effort. Must be one of none, minimal, low, medium, high, xhigh.',
    );
  });

  it.each(['none', 'minimal', 'low', 'medium', 'high', 'xhigh'])('accepts reasoning_effort %s', (effort) => {
    expect(validateChatRequest(body({ reasoning_effort: effort })).upstream.reasoning_effort).toBe(effort);
  });

  it('keeps user content parts in order', () => {
    const parts = [
      { type: 'text', text: 'look' },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'low' } },
      { type: 'input_audio', input_audio: { data: 'UklGR', format: 'wav' } },
      { type: 'file', file: { file_id: 'file-1', filename: 'a.pdf' } },
      { type: 'text', text: 'and this' },
    ];
    expect(validateChatRequest({ messages: [user(parts)] }).upstream.messages[0]).toEqual(user(parts));
  });

  it('drops an image over 8 MB and keeps the rest, with a warning', () => {
    const result = validateChatRequest({
      messages: [
        user([
          { type: 'text', text: 'a' },
          { type: 'image_url', image_url: { url: bigImage } },
          { type: 'text', text: 'b' },
        ]),
      ],
    });
    expect(result.upstream.messages[0]).toEqual(
      user([
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ]),
    );
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/messages\[0\]\.content\[1\]/);
  });

  it('keeps an image just under 8 MB', () => {
    const small = `data:image/png;base64,${'A'.repeat(Math.floor((MAX_IMAGE_BYTES * 4) / 3) - 4)}`;
    const result = validateChatRequest({
      messages: [user([{ type: 'image_url', image_url: { url: small } }])],
    });
    expect(result.warnings).toEqual([]);
  });

  it("strips Parley's fields before the upstream call and keeps OpenAI's", () => {
    const result = validateChatRequest({
      messages: [user('hi')],
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      seed: 7,
      some_future_openai_field: { x: 1 },
      conversation_id: 'c1',
      provider_id: 'p1',
      provider: 'p2',
      system_prompt: 'be brief',
      active_system_prompt_id: 'sp1',
      streamingEnabled: true,
      toolsEnabled: false,
      qualityLevel: 'high',
      researchMode: true,
      provider_stream: false,
      providerStream: false,
      previous_response_id: 'resp_1',
    });
    expect(result.upstream).toEqual({
      messages: [user('hi')],
      model: 'm',
      temperature: 0.5,
      seed: 7,
      some_future_openai_field: { x: 1 },
      previous_response_id: 'resp_1',
    });
    expect(result.stream).toBe(true);
    expect(result.includeUsage).toBe(true);
    expect(result.parley).toEqual({
      conversationId: 'c1',
      providerId: 'p1',
      systemPrompt: 'be brief',
      activeSystemPromptId: 'sp1',
      providerStream: false,
      hints: { streamingEnabled: true, toolsEnabled: false, qualityLevel: 'high', researchMode: true },
    });
  });

  it('splits tool names from full tool specs', () => {
    const spec = { type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } };
    const result = validateChatRequest(body({ tools: ['get_time', spec, 'calculator'] }));
    expect(result.toolNames).toEqual(['get_time', 'calculator']);
    expect(result.upstream.tools).toEqual([spec]);
  });

  it('sends no tools field when only names were given', () => {
    expect(validateChatRequest(body({ tools: ['get_time'] })).upstream).not.toHaveProperty('tools');
  });

  it('leaves stream undefined when the client did not send it', () => {
    expect(validateChatRequest(body()).stream).toBeUndefined();
  });

  it.each([
    [
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
      },
    ],
    [{ role: 'assistant', content: [{ type: 'refusal', refusal: 'no' }] }],
    [{ role: 'tool', tool_call_id: 'c', content: [{ type: 'text', text: 'ok' }] }],
    [{ role: 'function', name: 'f', content: null }],
    [{ role: 'developer', content: [{ type: 'text', text: 'rules' }] }],
  ])('accepts %j', (message) => {
    expect(() => validateChatRequest({ messages: [message, user('hi')] })).not.toThrow();
  });

  it.each([
    [undefined],
    [0],
    [true],
    [{}],
    [[]],
    [{ messages: [null] }],
    [{ messages: [{ role: 'user', content: [null] }] }],
  ])('never throws anything but a 400 for %j', (input) => {
    expect(rejection(input).code).toMatch(/invalid/);
  });
});
