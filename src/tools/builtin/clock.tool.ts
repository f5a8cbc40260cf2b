import { Injectable } from '@nestjs/common';
import { Tool, ToolResult, type ToolHandler, type ToolParameters } from '../tool.decorator.js';

export interface GetTimeArgs {
  timezone?: string;
}

export interface TimeDescription {
  /** The zone the time is given in (its canonical spelling when only the case differed). */
  timezone: string;
  /** Local time with its offset, to the second: `2026-11-21T22:05:00+01:00`. */
  iso: string;
  /** Seconds since the epoch. */
  unix: number;
  /** English day name in that zone: `Saturday`. */
  weekday: string;
  /** `+01:00`, `-05:00`, `+05:30`, `+00:00`. */
  utc_offset: string;
}

export const GET_TIME_PARAMETERS = {
  type: 'object',
  properties: {
    timezone: {
      type: 'string',
      description:
        'IANA time zone name, such as "Europe/Paris", "America/New_York" or "UTC". Defaults to UTC.',
    },
  },
  additionalProperties: false,
} as const satisfies ToolParameters;

/**
 * The zone as Parley will report it, or undefined when `Intl` does not know it. The canonical
 * spelling is used when the names differ only by case (`europe/paris`), the caller's otherwise
 * (ICU canonicalises some current names to legacy ones, `Asia/Kolkata` to `Asia/Calcutta`).
 */
export function resolveTimeZone(timeZone: string): string | undefined {
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === timeZone.toLowerCase() ? resolved : timeZone;
  } catch {
    return undefined;
  }
}

/** The instant `date` as seen in `timeZone` (which must be valid: see resolveTimeZone). */
export function describeTime(date: Date, timeZone: string): TimeDescription {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    weekday: 'long',
  });
  const parts = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, p.value]));
  const [year, month, day, hour, minute, second] = ['year', 'month', 'day', 'hour', 'minute', 'second'].map(
    (type) => Number(parts[type]),
  );
  const wholeSeconds = Math.floor(date.getTime() / 1000) * 1000;
  const offsetMinutes = Math.round(
    (Date.UTC(year, month - 1, day, hour, minute, second) - wholeSeconds) / 60_000,
  );
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const utcOffset = `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  return {
    timezone: timeZone,
    iso: `${String(year).padStart(4, '0')}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}${utcOffset}`,
    unix: wholeSeconds / 1000,
    weekday: parts.weekday ?? '',
    utc_offset: utcOffset,
  };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** `get_time`: the current date and time in an IANA time zone (UTC by default). */
@Injectable()
@Tool({
  name: 'get_time',
  description:
    'Get the current date and time, optionally in a given IANA time zone. Returns the ISO 8601 local time with its UTC offset, the Unix timestamp and the weekday.',
  parameters: GET_TIME_PARAMETERS,
})
export class ClockTool implements ToolHandler<GetTimeArgs> {
  async run(args: GetTimeArgs): Promise<TimeDescription | ToolResult> {
    const requested = args.timezone?.trim() || 'UTC';
    const timeZone = resolveTimeZone(requested);
    if (!timeZone) {
      return ToolResult.error(
        `unknown time zone "${requested}"; use an IANA name such as "UTC", "Europe/Paris" or "America/New_York"`,
      );
    }
    return describeTime(new Date(), timeZone);
  }
}
