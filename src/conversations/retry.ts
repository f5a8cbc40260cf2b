export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The wait before the 2nd, 3rd, ... attempt; the last value repeats. */
  delaysMs: readonly number[];
  /** False for errors a retry cannot fix; they are thrown at once. */
  retryable?: (error: unknown) => boolean;
  /** Told about each failed attempt that will be retried. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fn` until it succeeds, up to `attempts` times, waiting between attempts. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const sleep = options.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= options.attempts || (options.retryable && !options.retryable(error))) throw error;
      const delayMs = options.delaysMs[Math.min(attempt - 1, options.delaysMs.length - 1)] ?? 0;
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs);
    }
  }
}
