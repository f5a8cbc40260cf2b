import type { OpenAiErrorBody } from '../errors/parley-error.js';
import { toParleyError } from '../errors/to-parley-error.js';

/** One SSE event: its integer id (1, 2, ... per stream, `[DONE]` included) and its data line. */
export interface SseFrame {
  id: number;
  data: string;
}

export const DONE_DATA = '[DONE]';

/** The error frame's payload: OpenAI's envelope, as the SDKs read it from a stream. */
export function errorFrameData(error: unknown): string {
  const body: OpenAiErrorBody = toParleyError(error).toBody();
  return JSON.stringify({ error: body });
}

/** Formats one event on the wire. The only place that knows the `id:`/`data:` syntax. */
export function formatSseEvent(frame: SseFrame): string {
  return `id: ${frame.id}\ndata: ${frame.data}\n\n`;
}

export const SSE_PING = ': ping\n\n';

/** Numbers payloads 1, 2, 3... and serialises each once. */
export function toFrame(payload: unknown, id: number): SseFrame {
  return { id, data: JSON.stringify(payload) };
}
