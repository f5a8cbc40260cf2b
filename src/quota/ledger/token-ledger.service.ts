import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Repository } from 'typeorm';
import { errorMessage } from '../../common/errors/error-message.js';
import type { AppConfig } from '../../config/app-config.js';
import { APP_CONFIG } from '../../config/config.module.js';
import { DEFAULT_QUOTA_OPTIONS, QUOTA_OPTIONS, type QuotaOptions } from '../quota-options.js';
import { type LedgerReason, TokenLedgerEntity } from './token-ledger.entity.js';

/** A balance change to record. */
export interface LedgerEntry {
  tenantId: string;
  userId: string;
  delta: number;
  balanceAfter: number;
  reason: LedgerReason;
  shortfall?: number;
  completionId?: string | null;
  actor?: string | null;
  note?: string | null;
  meta?: Record<string, unknown> | null;
}

/**
 * Inserts one batch as one array parameter per column: the same statement text whatever the batch
 * size, so building it is a loop over the rows on this thread (no query builder), and the database
 * parses twelve parameters instead of twelve per row. `pg` sends strings as UTF-8, as it did for the
 * earlier per-row parameters. ON CONFLICT DO NOTHING: a retried batch that did commit writes nothing
 * twice.
 */
const INSERT_BATCH = `
  INSERT INTO "token_ledger" ("id", "tenant_id", "user_id", "delta", "balance_after", "shortfall", "reason",
    "completion_id", "actor", "note", "meta", "created_at")
  SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::varchar[], $4::bigint[], $5::bigint[], $6::bigint[],
    $7::varchar[], $8::varchar[], $9::varchar[], $10::varchar[], $11::jsonb[], $12::timestamptz[])
  ON CONFLICT ("id") DO NOTHING`;

/** The parameters of INSERT_BATCH: the batch's columns, in its column order. */
function batchColumns(batch: readonly TokenLedgerEntity[]): unknown[][] {
  const columns: unknown[][] = Array.from({ length: 12 }, () => new Array<unknown>(batch.length));
  for (let i = 0; i < batch.length; i++) {
    const row = batch[i];
    columns[0][i] = row.id;
    columns[1][i] = row.tenantId;
    columns[2][i] = row.userId;
    columns[3][i] = row.delta;
    columns[4][i] = row.balanceAfter;
    columns[5][i] = row.shortfall;
    columns[6][i] = row.reason;
    columns[7][i] = row.completionId;
    columns[8][i] = row.actor;
    columns[9][i] = row.note;
    // jsonb elements: `pg` would JSON-encode an object element too; a string makes it explicit.
    columns[10][i] = row.meta === null ? null : JSON.stringify(row.meta);
    // An exact instant in UTC, cheaper than `pg`'s local-time formatting of a Date.
    columns[11][i] = row.createdAt.toISOString();
  }
  return columns;
}

/**
 * The token ledger: every balance change, written to the database off the hot path. `record` only
 * queues the row (in this process); rows are inserted in batches shortly after, in order. A failed
 * insert is logged and retried with a backoff until it succeeds (rows carry their own ids and are
 * inserted with ON CONFLICT DO NOTHING, so a retry of an insert that did commit writes nothing twice).
 * On shutdown the queue is flushed; rows that still cannot be written are logged in full.
 */
@Injectable()
export class TokenLedgerService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('TokenLedger');
  private readonly options: QuotaOptions;
  private readonly pending: TokenLedgerEntity[] = [];
  private writing: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;

  constructor(
    @InjectRepository(TokenLedgerEntity) private readonly rows: Repository<TokenLedgerEntity>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() @Inject(QUOTA_OPTIONS) options?: Partial<QuotaOptions>,
  ) {
    this.options = { ...DEFAULT_QUOTA_OPTIONS, ...options };
  }

  /** Queues a row; it reaches the database within `ledgerFlushIntervalMs` while the database is up. */
  record(entry: LedgerEntry): void {
    // A plain object of the entity's shape: it is only ever read by batchColumns and the shutdown log.
    const row: TokenLedgerEntity = {
      id: randomUUID(),
      tenantId: entry.tenantId,
      userId: entry.userId,
      delta: entry.delta,
      balanceAfter: entry.balanceAfter,
      shortfall: entry.shortfall ?? 0,
      reason: entry.reason,
      completionId: entry.completionId ?? null,
      actor: entry.actor ?? null,
      note: entry.note ?? null,
      meta: entry.meta ?? null,
      createdAt: new Date(),
    };
    if (this.stopped) {
      this.logger.error(`Token ledger row recorded after shutdown, not written: ${JSON.stringify(row)}`);
      return;
    }
    this.pending.push(row);
    this.schedule(
      this.pending.length >= this.options.ledgerBatchSize ? 0 : this.options.ledgerFlushIntervalMs,
    );
  }

  /** Rows recorded but not written yet. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * Writes everything queued (retrying failed batches) and resolves when the queue is empty; rejects
   * when it is still not empty after `timeoutMs`.
   */
  async flush(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.length > 0 || this.writing) {
      this.clearTimer();
      const ok = await (this.writing ?? this.writeBatch());
      if (ok) continue;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${this.pending.length} token ledger row(s) could not be written yet`);
      }
      await sleep(Math.min(this.retryDelay(), left));
    }
  }

  /** The newest rows of one user's ledger in a tenant (this instance's queue flushed first). */
  async recent(tenantId: string, userId: string, limit: number): Promise<TokenLedgerEntity[]> {
    await this.flush(2000).catch((err: unknown) =>
      this.logger.warn(`Reading the ledger unflushed: ${errorMessage(err)}`),
    );
    return this.rows.find({
      where: { tenantId, userId },
      order: { createdAt: 'DESC', id: 'ASC' },
      take: limit,
    });
  }

  /** The sum of one user's ledger deltas in a tenant (equals the balance once every row is written). */
  async sum(tenantId: string, userId: string): Promise<number> {
    const result = await this.rows
      .createQueryBuilder('l')
      .select('COALESCE(SUM(l.delta), 0)', 'sum')
      .where('l.tenant_id = :tenantId AND l.user_id = :userId', { tenantId, userId })
      .getRawOne<{ sum: string }>();
    return Number(result?.sum ?? 0);
  }

  async beforeApplicationShutdown(): Promise<void> {
    try {
      await this.flush(Math.max(1000, this.config.shutdownGraceMs));
    } catch (err) {
      this.logger.error(`Flushing the token ledger on shutdown: ${errorMessage(err)}`);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    // Rows recorded during the HTTP server's shutdown; the database may already be closed.
    if (this.pending.length > 0) await this.flush(1000).catch(() => undefined);
    if (this.pending.length > 0) {
      const lost = this.pending.splice(0);
      this.logger.error(
        `${lost.length} token ledger row(s) could not be written before shutdown: ${JSON.stringify(lost)}`,
      );
    }
  }

  private schedule(delayMs: number): void {
    if (this.writing) return; // the running write schedules the next one
    if (this.timer) {
      if (delayMs > 0) return;
      this.clearTimer();
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.writeBatch();
    }, delayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private retryDelay(): number {
    return Math.min(
      this.options.ledgerMaxRetryDelayMs,
      100 * 2 ** Math.min(Math.max(0, this.failures - 1), 16),
    );
  }

  /** Inserts the oldest batch; true when it was written. Never rejects. One write at a time. */
  private writeBatch(): Promise<boolean> {
    if (this.writing) return this.writing;
    const batch = this.pending.slice(0, this.options.ledgerBatchSize);
    if (batch.length === 0) return Promise.resolve(true);
    const write = this.insert(batch).then(
      () => {
        // Only this method removes rows, one batch at a time: the batch is still at the front.
        this.pending.splice(0, batch.length);
        if (this.failures > 0)
          this.logger.log(`Token ledger writes work again (${this.pending.length} queued)`);
        this.failures = 0;
        return true;
      },
      (err: unknown) => {
        this.failures++;
        this.logger.error(
          `Writing ${batch.length} token ledger row(s) failed (attempt ${this.failures}, ${this.pending.length} queued, retrying): ${errorMessage(err)}`,
        );
        return false;
      },
    );
    this.writing = write;
    void write.then((ok) => {
      this.writing = null;
      if (this.pending.length === 0 || this.stopped) return;
      const full = this.pending.length >= this.options.ledgerBatchSize;
      this.schedule(ok ? (full ? 0 : this.options.ledgerFlushIntervalMs) : this.retryDelay());
    });
    return write;
  }

  private async insert(batch: TokenLedgerEntity[]): Promise<void> {
    await this.rows.query(INSERT_BATCH, batchColumns(batch));
  }
}
