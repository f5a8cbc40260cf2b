import { describe, expect, it } from 'vitest';
import { TurnRecorder } from './turn-recorder.js';
import { chunk, deltaChoice, usageChunk } from './wire/chunks.js';

const head = { id: 'resp-1', created: 1, model: 'm' };
const usage = (prompt: number, completion: number) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});

describe(TurnRecorder.name, () => {
  it('has an unreported call until the provider reports usage', () => {
    const sut = new TurnRecorder();
    sut.observeChunk(chunk(head, [deltaChoice({ role: 'assistant', content: 'Hel' })]));
    sut.observeChunk(chunk(head, [deltaChoice({ content: 'lo' })]));
    expect(sut).toMatchObject({
      callWithoutUsage: true,
      textSinceUsage: 'Hello',
      content: 'Hello',
      providerResponseId: 'resp-1',
    });
    sut.observeChunk(usageChunk(head, usage(3, 2)));
    expect(sut).toMatchObject({ callWithoutUsage: false, textSinceUsage: '', usage: usage(3, 2) });
  });

  it('keeps what a later tool-loop call produced apart from the usage already reported', () => {
    const sut = new TurnRecorder();
    sut.addText('first');
    sut.addUsage(usage(10, 5));
    sut.startCall();
    sut.addText('second, cut short');
    expect(sut.usage).toEqual(usage(10, 5));
    expect(sut.callWithoutUsage).toBe(true);
    expect(sut.textSinceUsage).toBe('second, cut short');
    expect(sut.producedText).toBe('firstsecond, cut short');
  });

  it('sums usage over calls', () => {
    const sut = new TurnRecorder();
    sut.addUsage(usage(10, 5));
    sut.startCall();
    sut.addUsage(usage(20, 1));
    expect(sut.usage).toEqual(usage(30, 6));
  });

  it('has produced nothing before any output', () => {
    expect(new TurnRecorder().producedOutput).toBe(false);
  });
});
