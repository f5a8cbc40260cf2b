import { describe, expect, it } from 'vitest';
import { formatDuration, retryAfterSeconds } from './format-duration.js';

describe(formatDuration.name, () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [Number.NaN, '0s'],
    [0.2, '1ms'],
    [1, '1ms'],
    [250, '250ms'],
    [999, '999ms'],
    [999.4, '1s'],
    [1000, '1s'],
    [1001, '1.001s'],
    [1500, '1.5s'],
    [1250, '1.25s'],
    [8640, '8.64s'],
    [59_999, '59.999s'],
    [60_000, '1m0s'],
    [90_000, '1m30s'],
    [90_500, '1m30.5s'],
    [360_000, '6m0s'],
    [3_599_000, '59m59s'],
    [3_600_000, '1h0m0s'],
    [3_661_000, '1h1m1s'],
    [86_400_000, '24h0m0s'],
  ])('%s ms is %s', (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });
});

describe(retryAfterSeconds.name, () => {
  it.each([
    [0, 1],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [59_500, 60],
  ])('%s ms is %s s', (ms, expected) => {
    expect(retryAfterSeconds(ms)).toBe(expected);
  });
});
