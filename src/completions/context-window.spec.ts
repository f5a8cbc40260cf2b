import { describe, expect, it } from 'vitest';
import { ParleyError } from '../common/errors/parley-error.js';
import type { UpstreamChatRequest } from '../providers/provider-adapter.js';
import { checkContextWindow } from './context-window.js';

const req = (content: string, extra: Partial<UpstreamChatRequest> = {}): UpstreamChatRequest => ({
  model: 'm',
  messages: [{ role: 'user', content }],
  ...extra,
});

describe(checkContextWindow.name, () => {
  it('proves a small prompt fits from its byte length, without tokenizing', () => {
    const size = checkContextWindow(req('hello world'), 1000);
    expect(size.exact).toBe(false);
    expect(size.promptTokens).toBeGreaterThanOrEqual(11);
  });

  it('tokenizes exactly when the byte bound is near the limit and still accepts a prompt that fits', () => {
    // 'hello ' repeated: ~1 token per word but 6 bytes per word.
    const size = checkContextWindow(req('hello '.repeat(500)), 1000);
    expect(size.exact).toBe(true);
    expect(size.promptTokens).toBeLessThan(1000);
  });

  it('rejects a prompt over the window with 400 context_length_exceeded', () => {
    let error: unknown;
    try {
      checkContextWindow(req('word '.repeat(3000)), 1000);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ParleyError);
    expect((error as ParleyError).code).toBe('context_length_exceeded');
    expect((error as ParleyError).status).toBe(400);
    expect((error as ParleyError).param).toBe('messages');
  });

  it('counts the requested completion budget', () => {
    expect(() => checkContextWindow(req('hi', { max_completion_tokens: 995 }), 1000)).toThrow(ParleyError);
    expect(() => checkContextWindow(req('hi', { max_tokens: 900 }), 1000)).not.toThrow();
  });

  it('counts special tokens in user text as text instead of failing', () => {
    expect(() => checkContextWindow(req('<|endoftext|> '.repeat(100)), 1000)).not.toThrow();
  });

  it('counts tools in the prompt', () => {
    const tools = [{ type: 'function' as const, function: { name: 'f', description: 'x'.repeat(5000) } }];
    expect(() => checkContextWindow(req('hi', { tools }), 500)).toThrow(ParleyError);
  });
});
