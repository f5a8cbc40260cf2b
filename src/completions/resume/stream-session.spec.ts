import type { Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { EMPTY, Observable, Subject, type Subscription } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ParleyError } from '../../common/errors/parley-error.js';
import type { SseFrame } from '../../common/sse/sse-frame.js';
import type { AppConfig } from '../../config/app-config.js';
import { MemoryStore } from '../../store/memory.store.js';
import { CLIENT_BUFFER_LIMIT_BYTES, RESUME_TIMING, StreamLog } from './stream-log.js';
import { StreamSession } from './stream-session.js';

const GRACE = 1000;
const ID = 'chatcmpl-test';

const chunk = (content: string): ChatCompletionChunk => ({
  id: ID,
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: null, logprobs: null }],
});

class FakeResponse {
  writableLength = 0;
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
  }
}

describe('StreamSession', () => {
  let store: MemoryStore;
  let log: StreamLog;
  let upstream: Subject<ChatCompletionChunk>;
  let signal: AbortSignal | undefined;
  let upstreamSubscribed: boolean;
  let res: FakeResponse;
  let session: StreamSession;
  let received: SseFrame[];
  let ended: 'complete' | { error: unknown } | undefined;
  let client: Subscription;

  const source = (s: AbortSignal) => {
    signal = s;
    return new Observable<ChatCompletionChunk>((subscriber) => {
      upstreamSubscribed = true;
      const inner = upstream.subscribe(subscriber);
      return () => {
        upstreamSubscribed = false;
        inner.unsubscribe();
      };
    });
  };
  /** The log as a resuming reader sees it, once this turn's frames are written (one batch per turn). */
  const logged = async () => {
    await vi.advanceTimersByTimeAsync(0);
    return store.readAfter(StreamLog.logKey(ID), 0);
  };

  beforeEach(() => {
    vi.useFakeTimers();
    store = new MemoryStore({ keyPrefix: 'test:' });
    log = new StreamLog(store, { streamLogMaxEvents: 1000, streamLogTtlMs: 60_000 } as AppConfig);
    upstream = new Subject();
    res = new FakeResponse();
    received = [];
    ended = undefined;
    session = new StreamSession(ID, { tenantId: 't', userId: 'u' }, source, {
      log,
      logger: { log: vi.fn(), warn: vi.fn() } as unknown as Logger,
      graceMs: GRACE,
    });
    client = session.live(res as unknown as ServerResponse).subscribe({
      next: (f) => received.push(f),
      error: (error: unknown) => (ended = { error }),
      complete: () => (ended = 'complete'),
    });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
  });

  it('numbers the frames, hands them to the live client and logs them with [DONE]', async () => {
    await vi.advanceTimersByTimeAsync(0);
    expect(await log.readMeta(ID)).toMatchObject({ tenantId: 't', userId: 'u', status: 'running' });
    upstream.next(chunk('a'));
    upstream.next(chunk('b'));
    upstream.complete();
    await session.done;
    expect(received.map((f) => f.id)).toEqual([1, 2]);
    expect(ended).toBe('complete');
    const frames = await logged();
    expect(frames.map((f) => f.id)).toEqual([1, 2, 3]);
    expect(frames.slice(0, 2)).toEqual(received);
    expect(frames[2].data).toBe('[DONE]');
    expect(await log.readMeta(ID)).toMatchObject({ status: 'done', lastId: 3 });
  });

  it('records that it runs once the turn that started it is over, and never after its end', async () => {
    const set = vi.spyOn(store, 'set');
    expect(set).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(0);
    expect(await log.readMeta(ID)).toMatchObject({ status: 'running' });

    // A generation that ends within the turn that started it records only its end.
    set.mockClear();
    const quick = new StreamSession('chatcmpl-quick', { tenantId: 't', userId: 'u' }, () => EMPTY, {
      log,
      logger: { log: vi.fn(), warn: vi.fn() } as unknown as Logger,
      graceMs: GRACE,
    });
    quick.live(res as unknown as ServerResponse).subscribe();
    await quick.done;
    await vi.advanceTimersByTimeAsync(0);
    expect(await log.readMeta('chatcmpl-quick')).toMatchObject({ status: 'done' });
    expect(set).toHaveBeenCalledTimes(1);
  });

  it('writes the frames of one event-loop turn to the log in one store call, after the client has them', async () => {
    const append = vi.spyOn(store, 'append');
    upstream.next(chunk('a'));
    upstream.next(chunk('b'));
    expect(received.map((f) => f.id)).toEqual([1, 2]);
    expect(append).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(0);
    upstream.next(chunk('c'));
    await vi.advanceTimersByTimeAsync(0);
    expect(append.mock.calls.map(([, frames]) => frames.map((f) => f.id))).toEqual([[1, 2], [3]]);
  });

  it('logs an error as the error frame and [DONE], and passes the error to the live client', async () => {
    upstream.next(chunk('a'));
    const failure = new ParleyError('upstream_error', 'broke');
    upstream.error(failure);
    await session.done;
    expect(ended).toEqual({ error: failure });
    const frames = await logged();
    expect(frames.map((f) => f.id)).toEqual([1, 2, 3]);
    expect(JSON.parse(frames[1].data)).toMatchObject({ error: { code: 'upstream_error', message: 'broke' } });
    expect(frames[2].data).toBe('[DONE]');
  });

  it('runs on for the grace period after the client leaves, then stops the upstream call', async () => {
    upstream.next(chunk('a'));
    client.unsubscribe();
    upstream.next(chunk('b'));
    await vi.advanceTimersByTimeAsync(GRACE - 10);
    expect(upstreamSubscribed).toBe(true);
    upstream.next(chunk('c'));
    await vi.advanceTimersByTimeAsync(20);
    expect(upstreamSubscribed).toBe(false);
    expect(signal?.aborted).toBe(true);
    await session.done;
    expect(received.map((f) => f.id)).toEqual([1]);
    const frames = await logged();
    expect(frames.map((f) => f.id)).toEqual([1, 2, 3, 4, 5]);
    expect(JSON.parse(frames[3].data)).toMatchObject({ error: { code: 'stream_abandoned' } });
    expect(frames[4].data).toBe('[DONE]');
  });

  it('keeps going while a reader holds the lease, and stops a grace period after it lapses', async () => {
    client.unsubscribe();
    await log.holdLease(ID);
    await vi.advanceTimersByTimeAsync(GRACE + 100);
    expect(upstreamSubscribed).toBe(true);
    await log.holdLease(ID);
    await vi.advanceTimersByTimeAsync(RESUME_TIMING.leaseTtlMs - 100);
    expect(upstreamSubscribed).toBe(true);
    // Once the lease lapses (leaseTtlMs after the last refresh), the owner notices on its next look
    // and stops the generation a grace period after it last saw the lease.
    await vi.advanceTimersByTimeAsync(100 + RESUME_TIMING.leaseRefreshMs + GRACE);
    expect(upstreamSubscribed).toBe(false);
  });

  it('treats a client that does not read (over 1 MiB unsent) as gone', async () => {
    upstream.next(chunk('a'));
    res.writableLength = CLIENT_BUFFER_LIMIT_BYTES + 1;
    upstream.next(chunk('b'));
    upstream.next(chunk('c'));
    expect(res.destroyed).toBe(true);
    expect(received.map((f) => f.id)).toEqual([1]);
    expect((await logged()).map((f) => f.id)).toEqual([1, 2, 3]);
    // Now detached: the grace period applies.
    await vi.advanceTimersByTimeAsync(GRACE + 10);
    expect(upstreamSubscribed).toBe(false);
  });

  it('at shutdown stops a generation nobody reads, but not one with a live client', async () => {
    await session.stopIfUnread();
    expect(upstreamSubscribed).toBe(true);
    client.unsubscribe();
    await session.stopIfUnread();
    expect(upstreamSubscribed).toBe(false);
    await session.done;
  });
});
