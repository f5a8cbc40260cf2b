/** Tuning of the quota module; the defaults suit production, tests shorten the times. */
export interface QuotaOptions {
  /** How long a reservation's record lives in the store if it is never settled. */
  reservationTtlMs: number;
  /**
   * How long an open reservation stays reserved without its instance renewing it (renewed every
   * quarter of this while the completion runs): after that, an instance that died is taken to have
   * died, and the tokens go back to the balance.
   */
  reservationLeaseMs: number;
  /** How long a settled reservation's tombstone stays, so that retries and double settles are no-ops. */
  settledTtlMs: number;
  /** Waits between attempts when settling or releasing fails on the store (then it gives up, logged). */
  settleRetryDelaysMs: readonly number[];
  /** Ledger rows are written in batches of at most this many... */
  ledgerBatchSize: number;
  /** ...at most this long after they were recorded (sooner when a batch is full). */
  ledgerFlushIntervalMs: number;
  /** Longest wait between two attempts at writing a batch the database refused. */
  ledgerMaxRetryDelayMs: number;
}

export const QUOTA_OPTIONS = Symbol('QUOTA_OPTIONS');

export const DEFAULT_QUOTA_OPTIONS: QuotaOptions = {
  reservationTtlMs: 60 * 60 * 1000,
  reservationLeaseMs: 2 * 60 * 1000,
  settledTtlMs: 10 * 60 * 1000,
  settleRetryDelaysMs: [100, 250, 500, 1000, 2000, 4000, 8000, 15000, 30000],
  ledgerBatchSize: 500,
  ledgerFlushIntervalMs: 100,
  ledgerMaxRetryDelayMs: 5000,
};
