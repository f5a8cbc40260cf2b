import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { STORE, type Store } from '../../store/store.port.js';
import { rateLimitPeekScript, rateLimitScript } from './rate-limit.script.js';

/** One hit on a fixed window counter. */
export interface RateLimitHit {
  /** Hits in the current window, this one included (refused hits count too). */
  hits: number;
  /** Milliseconds until the window ends and the counter starts again. */
  resetMs: number;
}

/** `@nestjs/throttler`'s record (its type is not exported from the package root). */
type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

function rateLimitKey(key: string, windowMs: number): string {
  // The window is part of the key: changing a tenant's window starts a fresh counter.
  return `ratelimit:${key}:${windowMs}`;
}

function checkWindow(windowMs: number): number {
  if (!Number.isFinite(windowMs) || windowMs < 1) {
    throw new RangeError(`the rate limit window must be at least 1 ms, got ${String(windowMs)}`);
  }
  return Math.ceil(windowMs);
}

/**
 * `@nestjs/throttler` storage on Parley's store (Redis, or in-process): one atomic script and one
 * round trip per hit, exact across every instance sharing the store. A fixed window: the first hit
 * starts it, it ends `ttl` ms later. `increment` is the ThrottlerStorage interface (times in whole
 * seconds, as the throttler expects; being over the limit blocks until the window ends, so a
 * `blockDuration` longer than the window is not supported); `hit` is the same with millisecond times.
 */
@Injectable()
export class StoreThrottlerStorage implements ThrottlerStorage {
  constructor(@Inject(STORE) private readonly store: Store) {
    store.defineScript(rateLimitScript);
    store.defineScript(rateLimitPeekScript);
  }

  /** Counts one hit for `key` in a window of `windowMs`. Rejects when the store is unreachable. */
  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const window = checkWindow(windowMs);
    const [hits, resetMs] = await this.store.runScript<[number, number]>(
      rateLimitScript.name,
      [rateLimitKey(key, window)],
      [window],
    );
    return { hits, resetMs: Math.max(0, resetMs) };
  }

  /** `hit`, and the value of the integer counter `peekKey` (missing = 0) read in the same round trip. */
  async hitAndPeek(
    key: string,
    windowMs: number,
    peekKey: string,
  ): Promise<RateLimitHit & { peeked: number }> {
    const window = checkWindow(windowMs);
    const [hits, resetMs, peeked] = await this.store.runScript<[number, number, number]>(
      rateLimitPeekScript.name,
      [rateLimitKey(key, window), peekKey],
      [window],
    );
    return { hits, resetMs: Math.max(0, resetMs), peeked };
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    _blockDuration: number,
    _throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const { hits, resetMs } = await this.hit(key, ttl);
    const timeToExpire = Math.ceil(resetMs / 1000);
    const isBlocked = hits > limit;
    return { totalHits: hits, timeToExpire, isBlocked, timeToBlockExpire: isBlocked ? timeToExpire : 0 };
  }
}
