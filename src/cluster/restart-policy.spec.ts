import { describe, expect, it } from 'vitest';
import { RestartTracker } from './restart-policy.js';

const policy = { quickFailureMs: 10_000, maxQuickFailures: 3, windowMs: 60_000 };

describe('RestartTracker', () => {
  it('gives up at once when the first worker dies before listening', () => {
    const tracker = new RestartTracker(policy);
    expect(tracker.exited({ at: 1000 })).toEqual({
      action: 'give-up',
      reason: 'the first worker failed to start',
    });
  });

  it('replaces a worker that crashes after a while in service, however often', () => {
    const tracker = new RestartTracker(policy);
    tracker.listening();
    for (let i = 1; i <= 10; i++) {
      expect(tracker.exited({ at: i * 60_000, listeningSince: i * 60_000 - 30_000 })).toEqual({
        action: 'replace',
      });
    }
  });

  it('gives up after repeated start-up failures in a short time', () => {
    const tracker = new RestartTracker(policy);
    tracker.listening();
    expect(tracker.exited({ at: 1000 }).action).toBe('replace');
    // Listening for a moment only counts as failing at start-up as well.
    expect(tracker.exited({ at: 2000, listeningSince: 1500 }).action).toBe('replace');
    expect(tracker.exited({ at: 3000 })).toEqual({
      action: 'give-up',
      reason: '3 workers failed at start-up within 60 s',
    });
  });

  it('forgets start-up failures older than the window', () => {
    const tracker = new RestartTracker(policy);
    tracker.listening();
    expect(tracker.exited({ at: 0 }).action).toBe('replace');
    expect(tracker.exited({ at: 30_000 }).action).toBe('replace');
    expect(tracker.exited({ at: 61_000 }).action).toBe('replace');
    expect(tracker.exited({ at: 62_000 }).action).toBe('give-up');
  });
});
