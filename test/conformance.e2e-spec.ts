import { describe, expect, it } from 'vitest';
import { expectConforms } from './utils/conformance.js';

// The conformance helper itself must reject what OpenAI's schema rejects, or every other
// conformance assertion would be vacuous.
describe('OpenAI schema conformance helper', () => {
  const chunk = {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }],
  };

  it('accepts a valid chunk, completion and error', () => {
    expectConforms('CreateChatCompletionStreamResponse', chunk);
    expectConforms('CreateChatCompletionResponse', {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'hi', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
    });
    expectConforms('ErrorResponse', { error: { message: 'm', type: 't', param: null, code: null } });
  });

  it.each([
    ['a chunk without choices', { ...chunk, choices: undefined }],
    ['a chunk with the wrong object', { ...chunk, object: 'chat.completion' }],
    [
      'a chunk with a bad finish_reason',
      { ...chunk, choices: [{ index: 0, delta: {}, finish_reason: 'done' }] },
    ],
  ])('rejects %s', (_name, payload) => {
    expect(() => expectConforms('CreateChatCompletionStreamResponse', payload)).toThrow();
  });

  it('rejects a completion whose message lacks refusal', () => {
    expect(() =>
      expectConforms('CreateChatCompletionResponse', {
        id: 'c',
        object: 'chat.completion',
        created: 1,
        model: 'm',
        choices: [
          { index: 0, message: { role: 'assistant', content: 'hi' }, logprobs: null, finish_reason: 'stop' },
        ],
      }),
    ).toThrow();
  });
});
