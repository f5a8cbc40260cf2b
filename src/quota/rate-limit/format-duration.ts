const MS_PER_SECOND = 1000;
const MS_PER_MINUTE = 60 * MS_PER_SECOND;
const MS_PER_HOUR = 60 * MS_PER_MINUTE;

/**
 * A duration in OpenAI's header format (Go's `time.Duration` notation, as in
 * `x-ratelimit-reset-requests`): `250ms` below a second, else hours/minutes/seconds with every unit
 * after the first one present, seconds with a decimal fraction when needed: `1s`, `1.5s`, `1m30s`,
 * `6m0s`, `1h0m0s`. Fractions of a millisecond round up; zero and negative durations are `0s`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  const total = Math.ceil(ms);
  if (total < MS_PER_SECOND) return `${total}ms`;
  const hours = Math.floor(total / MS_PER_HOUR);
  const minutes = Math.floor((total % MS_PER_HOUR) / MS_PER_MINUTE);
  const millis = total % MS_PER_MINUTE;
  const whole = Math.floor(millis / MS_PER_SECOND);
  const fraction = millis % MS_PER_SECOND;
  const seconds =
    fraction === 0 ? `${whole}s` : `${whole}.${String(fraction).padStart(3, '0').replace(/0+$/, '')}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}

/** `Retry-After`: whole seconds, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / MS_PER_SECOND));
}
