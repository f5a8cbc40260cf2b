import type { Logger } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { ParleyError } from '../../common/errors/parley-error.js';
import { DONE_DATA, errorFrameData, toFrame, type SseFrame } from '../../common/sse/sse-frame.js';
import { CLIENT_BUFFER_LIMIT_BYTES, RESUME_TIMING, type StreamLog } from './stream-log.js';

/** Whose completion it is: only they may resume it. */
export interface StreamOwner {
  tenantId: string;
  userId: string;
}

export interface StreamSessionDeps {
  log: StreamLog;
  logger: Logger;
  /** How long a generation nobody reads runs on (RESUME_GRACE_MS). */
  graceMs: number;
}

interface LiveClient {
  subscriber: Subscriber<SseFrame>;
  res: ServerResponse;
}

type State = 'new' | 'running' | 'ended';

/**
 * One streamed completion's generation, decoupled from the HTTP response that asked for it.
 *
 * It subscribes to the chunk stream itself, numbers the frames (1, 2, ...; the error frame and
 * `[DONE]` included), hands each to the live client while one is attached, and appends it to the
 * completion's log in the store (batched per event-loop turn and not awaited: the store's
 * connection keeps the appends in order; a failure is logged once and never reaches the client).
 *
 * When the live client goes away (or stops reading: more than 1 MiB unsent), the generation runs
 * on for the grace period. Meanwhile, every lease refresh, the owner looks at the lease key that
 * readers on any instance keep alive while they resume; once none has been seen for a whole grace
 * period, it unsubscribes and aborts the upstream call (the finalizer then stores the partial
 * answer as `incomplete` and settles usage) and closes the log with an error frame and `[DONE]`.
 */
export class StreamSession {
  /** Settles when the generation has ended and its log is closed (for graceful shutdown). */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private state: State = 'new';
  private readonly abort = new AbortController();
  private subscription?: Subscription;
  private liveClient?: LiveClient;
  private lastId = 0;
  private beat = 0;
  private beatTimer?: NodeJS.Timeout;
  private graceTimer?: NodeJS.Timeout;
  /** When a reader was last known to be attached (the live client leaving, or a lease seen). */
  private readerSeenAt = 0;
  private storeFailed = false;
  private unlogged: SseFrame[] = [];

  constructor(
    readonly id: string,
    private readonly owner: StreamOwner,
    private readonly source: (signal: AbortSignal) => Observable<ChatCompletionChunk>,
    private readonly deps: StreamSessionDeps,
  ) {
    this.done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  }

  /**
   * The frames for the client that started the completion, for the SSE writer. Subscribing starts
   * the generation; unsubscribing before the end (the writer does when the client goes away)
   * detaches the client and starts the grace period. Only one subscription.
   */
  live(res: ServerResponse): Observable<SseFrame> {
    return new Observable<SseFrame>((subscriber) => {
      if (this.state !== 'new') {
        subscriber.error(new ParleyError('internal_error', 'The stream was already started.'));
        return;
      }
      this.liveClient = { subscriber, res };
      this.start();
      return () => {
        if (this.liveClient?.subscriber === subscriber) this.dropLiveClient();
      };
    });
  }

  /** At shutdown: stop now if nobody is reading (no client here, no lease anywhere). */
  stopIfUnread(): Promise<void> {
    if (this.state !== 'running' || this.liveClient) return Promise.resolve();
    clearTimeout(this.graceTimer);
    this.readerSeenAt = -Infinity;
    return this.checkReaders('the server is shutting down and nobody is reading it');
  }

  /** Stop the generation now (the last step of shutdown). */
  stop(reason: string): void {
    this.abandon(reason);
  }

  private start(): void {
    this.state = 'running';
    // Written in the loop's check phase, off the way to the upstream call: still long before the
    // client can know the id (its first frame needs the upstream's answer), and never after the
    // record of the end, which a generation that ended at once has written already.
    setImmediate(() => {
      if (this.state === 'running') this.writeMeta();
    });
    this.beatTimer = setInterval(() => this.heartbeat(), RESUME_TIMING.ownerBeatMs);
    this.beatTimer.unref();
    let source: Observable<ChatCompletionChunk>;
    try {
      source = this.source(this.abort.signal);
    } catch (err) {
      this.fail(err);
      return;
    }
    const subscription = source.subscribe({
      next: (chunk) => this.emit(toFrame(chunk, this.lastId + 1)),
      error: (err: unknown) => this.fail(err),
      complete: () => this.complete(),
    });
    // A source that ended synchronously has already been torn down.
    if (this.state === 'running') this.subscription = subscription;
  }

  private emit(frame: SseFrame): void {
    if (this.state !== 'running') return;
    this.lastId = frame.id;
    this.deliver(frame);
    this.append(frame);
  }

  /** To the live client, if one is attached and still reading. */
  private deliver(frame: SseFrame): void {
    const client = this.liveClient;
    if (!client) return;
    if (client.res.destroyed) {
      this.dropLiveClient();
      return;
    }
    if (client.res.writableLength > CLIENT_BUFFER_LIMIT_BYTES) {
      // Not reading: keeping its buffer growing would make memory unbounded. The client can resume.
      this.deps.logger.warn(
        `${this.owner.tenantId}:${this.id} client is not reading the stream; disconnecting it (it may resume)`,
      );
      this.dropLiveClient();
      client.res.destroy();
      return;
    }
    client.subscriber.next(frame);
  }

  private complete(): void {
    if (this.state !== 'running') return;
    this.append({ id: ++this.lastId, data: DONE_DATA });
    const client = this.end();
    // The writer ends with its own `[DONE]`, numbered like the one in the log.
    client?.subscriber.complete();
  }

  private fail(err: unknown): void {
    if (this.state !== 'running') return;
    this.append({ id: ++this.lastId, data: errorFrameData(err) });
    this.append({ id: ++this.lastId, data: DONE_DATA });
    const client = this.end();
    // The writer answers with the real status before the headers, else the same two frames.
    client?.subscriber.error(err);
  }

  /** Nobody reads (or the app is going away): stop the upstream call, keep what was produced. */
  private abandon(reason: string): void {
    if (this.state !== 'running') return;
    this.deps.logger.log(`${this.owner.tenantId}:${this.id} stream stopped: ${reason}`);
    const subscription = this.subscription;
    this.subscription = undefined;
    // Unsubscribing runs the finalizer (partial answer stored as incomplete, usage settled)...
    subscription?.unsubscribe();
    // ...and the signal stops an upstream call that does not end on unsubscribe (the tool loop).
    this.abort.abort(new ParleyError('upstream_error', 'The stream was stopped.'));
    const error = new ParleyError('stream_abandoned', `The stream was stopped: ${reason}.`, {
      status: 503,
      type: 'server_error',
    });
    this.append({ id: ++this.lastId, data: errorFrameData(error) });
    this.append({ id: ++this.lastId, data: DONE_DATA });
    const client = this.end();
    client?.subscriber.error(error);
  }

  /** Marks the generation ended and closes its log; returns the live client, now detached. */
  private end(): LiveClient | undefined {
    const client = this.liveClient;
    this.state = 'ended';
    this.liveClient = undefined;
    this.subscription = undefined;
    clearInterval(this.beatTimer);
    clearTimeout(this.graceTimer);
    this.flushLog();
    // Written after the last append on the same connection: once it says done, the log is complete.
    void this.deps.log
      .writeMeta(this.id, { ...this.owner, status: 'done', lastId: this.lastId, beat: this.beat })
      .catch((e: unknown) => this.storeFailure(e))
      .finally(() => this.resolveDone());
    return client;
  }

  private dropLiveClient(): void {
    this.liveClient = undefined;
    if (this.state !== 'running') return;
    this.readerSeenAt = Date.now();
    this.armGrace(Math.min(this.deps.graceMs, RESUME_TIMING.leaseRefreshMs));
  }

  private armGrace(ms: number): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(() => void this.checkReaders(), ms);
  }

  /**
   * The grace timer: a reader on any instance holds the lease while it reads. It is looked at every
   * lease refresh while the grace period runs, not only at its end: a client that resumed and
   * dropped again in between must get the whole grace period from when it left.
   */
  private async checkReaders(reason = 'not resumed within the grace period'): Promise<void> {
    if (this.state !== 'running' || this.liveClient) return;
    let held = false;
    try {
      held = await this.deps.log.leaseHeld(this.id);
    } catch (e) {
      // Without the store nobody can resume anyway.
      this.storeFailure(e);
    }
    if (this.state !== 'running' || this.liveClient) return;
    const now = Date.now();
    if (held) {
      this.readerSeenAt = now;
      this.armGrace(RESUME_TIMING.leaseRefreshMs);
      return;
    }
    const left = this.readerSeenAt + this.deps.graceMs - now;
    if (left > 0) this.armGrace(Math.min(left, RESUME_TIMING.leaseRefreshMs));
    else this.abandon(reason);
  }

  private heartbeat(): void {
    if (this.state !== 'running') return;
    this.beat += 1;
    this.writeMeta();
    void this.deps.log.touchLog(this.id).catch((e: unknown) => this.storeFailure(e));
  }

  private writeMeta(): void {
    void this.deps.log
      .writeMeta(this.id, { ...this.owner, status: 'running', beat: this.beat })
      .catch((e: unknown) => this.storeFailure(e));
  }

  /**
   * Frames reach the log once per event-loop turn, in one store call: an upstream packet often
   * holds several events, and a store round trip each would delay the client's first frame.
   */
  private append(frame: SseFrame): void {
    if (this.unlogged.push(frame) === 1) setImmediate(() => this.flushLog());
  }

  private flushLog(): void {
    if (this.unlogged.length === 0) return;
    const frames = this.unlogged;
    this.unlogged = [];
    void this.deps.log.append(this.id, frames).catch((e: unknown) => this.storeFailure(e));
  }

  /** Logged once per stream; the live client never notices. */
  private storeFailure(e: unknown): void {
    if (this.storeFailed) return;
    this.storeFailed = true;
    this.deps.logger.warn(
      `${this.owner.tenantId}:${this.id} stream log not written, resuming it may fail: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
  }
}
