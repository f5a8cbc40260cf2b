import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ToolResult } from '../tool.decorator.js';
import { ClockTool, describeTime, resolveTimeZone, type TimeDescription } from './clock.tool.js';

const NOW = new Date('2026-11-21T21:05:00.750Z');

describe(ClockTool.name, () => {
  let sut: ClockTool;

  beforeEach(() => {
    vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
    sut = new ClockTool();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers in UTC by default', async () => {
    expect(await sut.run({})).toEqual({
      timezone: 'UTC',
      iso: '2026-11-21T21:05:00+00:00',
      unix: 1795295100,
      weekday: 'Saturday',
      utc_offset: '+00:00',
    });
  });

  it('treats an empty timezone as UTC', async () => {
    expect(await sut.run({ timezone: '  ' })).toMatchObject({ timezone: 'UTC' });
  });

  it('answers in the requested zone', async () => {
    expect(await sut.run({ timezone: 'Europe/Paris' })).toEqual({
      timezone: 'Europe/Paris',
      iso: '2026-11-21T22:05:00+01:00',
      unix: 1795295100,
      weekday: 'Saturday',
      utc_offset: '+01:00',
    });
  });

  it('spells a zone given in the wrong case canonically', async () => {
    expect(await sut.run({ timezone: 'europe/paris' })).toMatchObject({ timezone: 'Europe/Paris' });
  });

  it('keeps a valid alias as given rather than the legacy canonical name', async () => {
    expect(await sut.run({ timezone: 'Asia/Kolkata' })).toMatchObject({
      timezone: 'Asia/Kolkata',
      utc_offset: '+05:30',
    });
  });

  it.each([['Mars/Olympus_Mons'], ['Europe/Pariss'], ['not a zone'], ['+99:00']])(
    'returns an error the model sees for the unknown zone %s',
    async (timezone) => {
      const result = await sut.run({ timezone });
      expect(result).toBeInstanceOf(ToolResult);
      expect((result as ToolResult).status).toBe('error');
      expect((result as ToolResult).output).toBe(
        `unknown time zone "${timezone}"; use an IANA name such as "UTC", "Europe/Paris" or "America/New_York"`,
      );
    },
  );
});

describe(describeTime.name, () => {
  it.each<[string, string, Partial<TimeDescription>]>([
    ['2026-07-01T12:00:00Z', 'Europe/Paris', { iso: '2026-07-01T14:00:00+02:00', utc_offset: '+02:00' }],
    [
      '2026-01-01T02:00:00Z',
      'America/New_York',
      { iso: '2025-12-31T21:00:00-05:00', weekday: 'Wednesday', utc_offset: '-05:00' },
    ],
    ['2026-11-21T21:05:00Z', 'America/St_Johns', { iso: '2026-11-21T17:35:00-03:30', utc_offset: '-03:30' }],
    ['2026-11-21T21:05:00Z', 'Asia/Kathmandu', { iso: '2026-11-22T02:50:00+05:45', weekday: 'Sunday' }],
    [
      '2026-11-21T23:30:00Z',
      'Pacific/Kiritimati',
      { iso: '2026-11-22T13:30:00+14:00', utc_offset: '+14:00' },
    ],
    ['2026-11-21T00:00:00Z', 'Etc/GMT+12', { iso: '2026-11-20T12:00:00-12:00', weekday: 'Friday' }],
    ['2026-11-21T00:00:00Z', 'UTC', { iso: '2026-11-21T00:00:00+00:00', weekday: 'Saturday' }],
  ])('%s in %s', (instant, zone, expected) => {
    const date = new Date(instant);
    const sut = describeTime(date, zone);
    expect(sut).toMatchObject({ timezone: zone, unix: date.getTime() / 1000, ...expected });
    expect(Date.parse(sut.iso)).toBe(date.getTime());
  });

  it('drops milliseconds consistently in iso and unix', () => {
    const sut = describeTime(new Date('2026-11-21T21:05:59.999Z'), 'UTC');
    expect(sut.iso).toBe('2026-11-21T21:05:59+00:00');
    expect(sut.unix).toBe(1795295159);
  });
});

describe(resolveTimeZone.name, () => {
  it.each([
    ['UTC', 'UTC'],
    ['utc', 'UTC'],
    ['Europe/Paris', 'Europe/Paris'],
    ['Nowhere/Special', undefined],
    ['', undefined],
  ])('%s -> %s', (zone, expected) => {
    expect(resolveTimeZone(zone)).toBe(expected);
  });
});
