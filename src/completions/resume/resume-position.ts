import { ParleyError } from '../../common/errors/parley-error.js';

const EVENT_ID = /^\d{1,15}$/;

function eventId(raw: string, param: string): number {
  const value = raw.trim();
  if (!EVENT_ID.test(value)) {
    throw ParleyError.invalid(param, `${param} must be an event id: a non-negative integer.`);
  }
  return Number(value);
}

/**
 * Where a resumed stream starts: after the `Last-Event-ID` header's event (what EventSource sends
 * when it reconnects), else after `?after=`, else from the beginning (0). Invalid values are
 * 400 `invalid_value`.
 */
export function resumePosition(lastEventId: string | undefined, after: unknown): number {
  if (lastEventId !== undefined && lastEventId.trim() !== '') return eventId(lastEventId, 'Last-Event-ID');
  if (after === undefined) return 0;
  if (typeof after !== 'string') throw ParleyError.invalid('after', 'after must be given once.');
  return eventId(after, 'after');
}
