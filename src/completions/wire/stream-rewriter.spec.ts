import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import { chunk, deltaChoice, usageChunk } from './chunks.js';
import { createStreamRewriter } from './stream-rewriter.js';

const head = { id: 'chatcmpl-upstream', created: 1, model: 'm' };
const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };

function run(chunks: ChatCompletionChunk[], includeUsage: boolean): Array<ChatCompletionChunk | null> {
  const sut = createStreamRewriter({ id: 'chatcmpl-parley', includeUsage });
  return chunks.map(sut);
}

describe(createStreamRewriter.name, () => {
  it("puts Parley's id on every chunk", () => {
    const out = run(
      [
        chunk(head, [deltaChoice({ role: 'assistant', content: 'a' })]),
        chunk(head, [deltaChoice({}, 'stop')]),
      ],
      false,
    );
    expect(out.map((c) => c?.id)).toEqual(['chatcmpl-parley', 'chatcmpl-parley']);
  });

  it('adds the assistant role to the first delta when the provider left it out', () => {
    const out = run(
      [chunk(head, [deltaChoice({ content: 'a' })]), chunk(head, [deltaChoice({ content: 'b' })])],
      false,
    );
    expect(out[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: 'a' });
    expect(out[1]?.choices[0]?.delta).toEqual({ content: 'b' });
  });

  it('adds it to the first delta of every choice when there are several (n > 1)', () => {
    const out = run(
      [
        chunk(head, [deltaChoice({ content: 'a' }, null, 0)]),
        chunk(head, [deltaChoice({ content: 'x' }, null, 1)]),
        chunk(head, [deltaChoice({ content: 'b' }, null, 0), deltaChoice({ content: 'y' }, null, 1)]),
      ],
      false,
    );
    expect(out.map((c) => c?.choices.map((choice) => choice.delta))).toEqual([
      [{ role: 'assistant', content: 'a' }],
      [{ role: 'assistant', content: 'x' }],
      [{ content: 'b' }, { content: 'y' }],
    ]);
  });

  it('drops the usage chunk and the usage fields when the client did not ask', () => {
    const out = run(
      [
        { ...chunk(head, [deltaChoice({ role: 'assistant' }, 'stop')]), usage: null },
        usageChunk(head, usage),
      ],
      false,
    );
    expect(out[1]).toBeNull();
    expect(out[0]).not.toHaveProperty('usage');
  });

  it('keeps the usage chunk when the client asked', () => {
    const out = run([usageChunk(head, usage)], true);
    expect(out[0]).toEqual({ ...usageChunk(head, usage), id: 'chatcmpl-parley' });
  });
});
