import { Injectable } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { Observable, type Subscriber } from 'rxjs';
import type { TenantContext } from '../../common/context/request-context.js';
import { ParleyError } from '../../common/errors/parley-error.js';
import { DONE_DATA, type SseFrame } from '../../common/sse/sse-frame.js';
import { CLIENT_BUFFER_LIMIT_BYTES, isCompletionId, RESUME_TIMING, StreamLog } from './stream-log.js';

/** What a resume request gets: the frames to write, or nothing because the stream ended before. */
export type ResumeSource = { kind: 'frames'; frames: Observable<SseFrame> } | { kind: 'finished' };

const notFound = (): ParleyError => ParleyError.notFound('Stream');
const pastTheEnd = (): ParleyError =>
  ParleyError.invalid('Last-Event-ID', 'Last-Event-ID is past the end of the stream.');

/** How long a resume waits for the event it starts after, when the log does not have it yet. */
const PAST_END_WAIT_MS = 1000;

/**
 * `GET .../chat/completions/:id/stream`: the frames after a given id, read from the completion's
 * log in the store, so any instance can serve it, whichever one runs the generation. Reads block
 * on the store until the next frame (live rest) and end after `[DONE]`. While reading it holds the
 * completion's lease, which keeps the generation from being stopped at the end of its grace period.
 *
 * Frames the log no longer has (trimmed by STREAM_LOG_MAX_EVENTS) are skipped: the reader gets what
 * is there, the gap shows in the ids.
 */
@Injectable()
export class StreamResumer {
  constructor(private readonly log: StreamLog) {}

  /** Throws 404 `not_found` unless the completion is this user's, in this tenant, and still kept. */
  async open(ctx: TenantContext, id: string, afterId: number, res: ServerResponse): Promise<ResumeSource> {
    if (!isCompletionId(id)) throw notFound();
    const meta = await this.log.readMeta(id);
    if (!meta || meta.tenantId !== ctx.tenantId || meta.userId !== ctx.userId) throw notFound();
    // Everything up to `[DONE]` was already received: there is nothing after it.
    if (meta.status === 'done' && meta.lastId !== undefined && afterId >= meta.lastId) {
      return { kind: 'finished' };
    }
    if (afterId > 0 && !(await this.hasEvent(id, afterId, meta.status === 'running'))) throw pastTheEnd();
    return { kind: 'frames', frames: this.frames(id, afterId, res) };
  }

  /**
   * Whether the log has the event (or, trimmed, a later one). A client cannot have seen an event the
   * log never had; the wait covers the instant when a frame the live client got is still on its way
   * to the log.
   */
  private async hasEvent(id: string, eventId: number, running: boolean): Promise<boolean> {
    const events = await this.log.read(id, eventId - 1, running ? PAST_END_WAIT_MS : 0, { count: 1 });
    return events.length > 0;
  }

  private frames(id: string, afterId: number, res: ServerResponse): Observable<SseFrame> {
    return new Observable<SseFrame>((subscriber) => {
      const abort = new AbortController();
      const lease = setInterval(
        () => void this.log.holdLease(id).catch(() => undefined),
        RESUME_TIMING.leaseRefreshMs,
      );
      lease.unref();
      void this.pump(id, afterId, res, subscriber, abort.signal)
        .catch((err: unknown) => subscriber.error(err))
        .finally(() => clearInterval(lease));
      return () => {
        abort.abort();
        clearInterval(lease);
      };
    });
  }

  private async pump(
    id: string,
    afterId: number,
    res: ServerResponse,
    subscriber: Subscriber<SseFrame>,
    signal: AbortSignal,
  ): Promise<void> {
    await this.log.holdLease(id);
    let after = afterId;
    let beat = -1;
    let beatChangedAt = Date.now();
    while (!signal.aborted) {
      await drained(res, signal);
      if (signal.aborted) return;
      const events = await this.log.read(id, after, RESUME_TIMING.readBlockMs, { signal });
      if (signal.aborted) return;
      for (const event of events) {
        subscriber.next(event);
        after = event.id;
        if (event.data === DONE_DATA) {
          subscriber.complete();
          return;
        }
      }
      if (events.length > 0) continue;

      // Nothing new for a while: is the generation still going?
      const meta = await this.log.readMeta(id);
      if (signal.aborted) return;
      if (!meta) throw notFound(); // expired meanwhile
      if (meta.status === 'done') {
        // `[DONE]` is appended before the meta record says done, so it is there unless trimmed.
        if ((await this.log.read(id, after, 0, { count: 1 })).length > 0) continue;
        if (meta.lastId !== undefined && after >= meta.lastId) {
          throw pastTheEnd();
        }
        throw notFound();
      }
      if (meta.beat !== beat) {
        beat = meta.beat;
        beatChangedAt = Date.now();
      } else if (Date.now() - beatChangedAt > RESUME_TIMING.ownerLostMs) {
        throw new ParleyError(
          'internal_error',
          'The server running this completion stopped; it cannot go on.',
        );
      }
    }
  }
}

/** Waits while the client has more than the bound unsent (or until it goes away). */
function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  if (res.writableLength <= CLIENT_BUFFER_LIMIT_BYTES || res.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
