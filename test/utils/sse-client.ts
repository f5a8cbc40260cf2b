export interface SseEvent {
  id?: string;
  data: string;
}

export interface SseResponse {
  status: number;
  headers: Headers;
  /** Raw text of the whole answer. */
  text: string;
  events: SseEvent[];
  /** Comment lines (`: ping`). */
  comments: string[];
  /** `data` parsed as JSON, `[DONE]` kept as the string. */
  payloads: unknown[];
}

/** Parses an SSE body strictly: events are separated by a blank line. */
export function parseSse(text: string): { events: SseEvent[]; comments: string[] } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    const event: SseEvent = { data: '' };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line);
      else if (line.startsWith('id: ')) event.id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) {
      event.data = data.join('\n');
      events.push(event);
    }
  }
  return { events, comments };
}

/** POSTs (or GETs) and reads the whole SSE answer with fetch. */
export async function sseRequest(
  url: string,
  init: {
    method?: string;
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  },
): Promise<SseResponse> {
  const res = await fetch(url, {
    method: init.method ?? 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(init.token ? { Authorization: `Bearer ${init.token}` } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: init.signal,
  });
  const text = await res.text();
  const { events, comments } = parseSse(text);
  const payloads = events.map((e) => (e.data === '[DONE]' ? e.data : (JSON.parse(e.data) as unknown)));
  return { status: res.status, headers: res.headers, text, events, comments, payloads };
}
