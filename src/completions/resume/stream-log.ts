import { Inject, Injectable } from '@nestjs/common';
import type { SseFrame } from '../../common/sse/sse-frame.js';
import type { AppConfig } from '../../config/app-config.js';
import { APP_CONFIG } from '../../config/config.module.js';
import { STORE, type Store, type StoreEvent } from '../../store/store.port.js';

/**
 * Timing of the cross-instance bookkeeping. Not configuration: they only need to be short next to
 * the resume grace period's default (30 s) and long next to a store round trip.
 */
export const RESUME_TIMING = {
  /** A reader re-sets its lease this often... */
  leaseRefreshMs: 2000,
  /** ...and the lease lives this long, so a reader that vanished stops counting after it. */
  leaseTtlMs: 6000,
  /** The generation's owner re-writes the meta record (its heartbeat) this often. */
  ownerBeatMs: 5000,
  /** A reader gives up on a running generation whose heartbeat has not moved for this long. */
  ownerLostMs: 20000,
  /** A reader's blocking read waits this long before it looks at the meta record. */
  readBlockMs: 5000,
  /** Events per read. */
  readCount: 500,
} as const;

/** A client whose unsent output exceeds this is treated as gone (live) or waited for (resume). */
export const CLIENT_BUFFER_LIMIT_BYTES = 1024 * 1024;

/** Who may resume a completion's stream, and how far its generation got. */
export interface StreamMeta {
  tenantId: string;
  userId: string;
  status: 'running' | 'done';
  /** The id of the last event (`[DONE]`) once `done`. */
  lastId?: number;
  /** Incremented by the owner every `ownerBeatMs` while running. */
  beat: number;
}

/** Completion ids as Parley makes them (`newCompletionId`); anything else cannot have a log. */
const COMPLETION_ID = /^chatcmpl-[A-Za-z0-9_-]{1,100}$/;

export function isCompletionId(id: string): boolean {
  return COMPLETION_ID.test(id);
}

/**
 * The per-completion records in the store (un-prefixed keys; the store adds its prefix):
 * - `resume:<id>:log`   the SSE frames, with their ids (a Redis Stream), trimmed to
 *   STREAM_LOG_MAX_EVENTS, expiring STREAM_LOG_TTL_MS after the last write;
 * - `resume:<id>:meta`  JSON `StreamMeta`, same TTL;
 * - `resume:<id>:lease` set (TTL `leaseTtlMs`) while some reader, on any instance, is reading.
 */
@Injectable()
export class StreamLog {
  constructor(
    @Inject(STORE) private readonly store: Store,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  static logKey(id: string): string {
    return `resume:${id}:log`;
  }

  static metaKey(id: string): string {
    return `resume:${id}:meta`;
  }

  static leaseKey(id: string): string {
    return `resume:${id}:lease`;
  }

  append(id: string, frames: readonly SseFrame[]): Promise<void> {
    return this.store.append(StreamLog.logKey(id), frames, {
      maxLen: this.config.streamLogMaxEvents,
      ttlMs: this.config.streamLogTtlMs,
    });
  }

  /** Keeps a silent generation's log from expiring under it. */
  touchLog(id: string): Promise<void> {
    return this.store.expire(StreamLog.logKey(id), this.config.streamLogTtlMs);
  }

  writeMeta(id: string, meta: StreamMeta): Promise<void> {
    return this.store.set(StreamLog.metaKey(id), JSON.stringify(meta), this.config.streamLogTtlMs);
  }

  async readMeta(id: string): Promise<StreamMeta | null> {
    const raw = await this.store.get(StreamLog.metaKey(id));
    if (raw === null) return null;
    try {
      const meta = JSON.parse(raw) as StreamMeta;
      return typeof meta.tenantId === 'string' && typeof meta.userId === 'string' ? meta : null;
    } catch {
      return null;
    }
  }

  /** Events after `afterId`, at most `count` (a reader's batch by default). */
  read(
    id: string,
    afterId: number,
    blockMs: number,
    { signal, count = RESUME_TIMING.readCount }: { signal?: AbortSignal; count?: number } = {},
  ): Promise<StoreEvent[]> {
    return this.store.readAfter(StreamLog.logKey(id), afterId, { blockMs, count, signal });
  }

  holdLease(id: string): Promise<void> {
    return this.store.set(StreamLog.leaseKey(id), '1', RESUME_TIMING.leaseTtlMs);
  }

  async leaseHeld(id: string): Promise<boolean> {
    return (await this.store.get(StreamLog.leaseKey(id))) !== null;
  }
}
