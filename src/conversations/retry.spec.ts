import { describe, expect, it, vi } from 'vitest';
import { withRetry } from './retry.js';

describe(withRetry.name, () => {
  const noSleep = vi.fn(async (_ms: number) => undefined);

  it('answers the first success, waiting the backoff between attempts', async () => {
    noSleep.mockClear();
    const onRetry = vi.fn();
    let calls = 0;
    const sut = withRetry(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw new Error(`fail ${attempt}`);
        return 'stored';
      },
      { attempts: 3, delaysMs: [200, 1000], sleep: noSleep, onRetry },
    );
    await expect(sut).resolves.toBe('stored');
    expect(calls).toBe(3);
    expect(noSleep.mock.calls).toEqual([[200], [1000]]);
    expect(onRetry.mock.calls.map(([e, attempt, delay]) => [(e as Error).message, attempt, delay])).toEqual([
      ['fail 1', 1, 200],
      ['fail 2', 2, 1000],
    ]);
  });

  it('gives up after the last attempt with its error', async () => {
    let calls = 0;
    const sut = withRetry(
      async (attempt) => {
        calls++;
        throw new Error(`fail ${attempt}`);
      },
      { attempts: 3, delaysMs: [1], sleep: noSleep },
    );
    await expect(sut).rejects.toThrow('fail 3');
    expect(calls).toBe(3);
  });

  it('does not retry an error that a retry cannot fix', async () => {
    let calls = 0;
    const sut = withRetry(
      async () => {
        calls++;
        throw new Error('gone');
      },
      { attempts: 3, delaysMs: [1], sleep: noSleep, retryable: () => false },
    );
    await expect(sut).rejects.toThrow('gone');
    expect(calls).toBe(1);
  });
});
