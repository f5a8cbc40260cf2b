import { describe, expect, it } from 'vitest';
import { followAbort } from './follow-abort.js';

describe('followAbort', () => {
  it('aborts the controller with the signal’s reason', () => {
    const source = new AbortController();
    const follower = new AbortController();
    followAbort(source.signal, follower);
    source.abort('gone');
    expect(follower.signal.aborted).toBe(true);
    expect(follower.signal.reason).toBe('gone');
  });

  it('aborts at once when the signal already has', () => {
    const follower = new AbortController();
    followAbort(AbortSignal.abort('early'), follower);
    expect(follower.signal.reason).toBe('early');
  });

  it('stops following once told to', () => {
    const source = new AbortController();
    const follower = new AbortController();
    const stop = followAbort(source.signal, follower);
    stop();
    source.abort();
    expect(follower.signal.aborted).toBe(false);
  });
});
