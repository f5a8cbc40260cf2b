/** When the primary replaces a worker that exited on its own, and when it stops trying. */
export interface RestartPolicy {
  /** A worker that exits before listening, or this soon after, failed at start-up. */
  quickFailureMs: number;
  /** This many start-up failures within `windowMs` mean a replacement would fail too. */
  maxQuickFailures: number;
  windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  quickFailureMs: 10_000,
  maxQuickFailures: 5,
  windowMs: 60_000,
};

export interface WorkerExit {
  /** When it exited (ms, any clock shared with `listeningSince`). */
  at: number;
  /** When it started listening; unset if it never did. */
  listeningSince?: number;
}

export type ExitDecision = { action: 'replace' } | { action: 'give-up'; reason: string };

/**
 * Decides, for each unexpected worker exit, whether to start another. A crash after a while in
 * service is replaced; failures at start-up (bad configuration, a database that refuses the
 * migrations) would repeat forever, so the primary gives up after a few in a short time.
 */
export class RestartTracker {
  private quickFailures: number[] = [];
  private anyListened = false;

  constructor(private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY) {}

  /** A worker reported that it is listening. */
  listening(): void {
    this.anyListened = true;
  }

  exited(exit: WorkerExit): ExitDecision {
    // The first worker runs the migrations alone: if it cannot start, none of the others will.
    if (!this.anyListened) return { action: 'give-up', reason: 'the first worker failed to start' };
    const quick =
      exit.listeningSince === undefined || exit.at - exit.listeningSince < this.policy.quickFailureMs;
    if (!quick) return { action: 'replace' };
    this.quickFailures = [...this.quickFailures, exit.at].filter((t) => exit.at - t < this.policy.windowMs);
    if (this.quickFailures.length >= this.policy.maxQuickFailures) {
      return {
        action: 'give-up',
        reason: `${this.quickFailures.length} workers failed at start-up within ${this.policy.windowMs / 1000} s`,
      };
    }
    return { action: 'replace' };
  }
}
