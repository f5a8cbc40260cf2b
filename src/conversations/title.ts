import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';

/** Pure helpers of the title generation: the prompt, and the cleanup of what the model answers. */

export const TITLE_MAX_LENGTH = 80;
/** How much of the first user message the title prompt quotes. */
const TITLE_SOURCE_MAX_LENGTH = 2000;

export function buildTitlePrompt(firstUserText: string): ChatCompletionMessageParam[] {
  const source = firstUserText.trim().slice(0, TITLE_SOURCE_MAX_LENGTH);
  return [
    {
      role: 'system',
      content:
        'You name conversations. Answer with the title only: at most 6 words, in the language of the ' +
        'conversation, without quotes or final punctuation.',
    },
    {
      role: 'user',
      content: `Write a short title (max 6 words) for a conversation that starts with:\n\n${source}`,
    },
  ];
}

const QUOTE_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['"', '"'],
  ["'", "'"],
  ['`', '`'],
  ['“', '”'],
  ['„', '“'],
  ['‘', '’'],
  ['«', '»'],
  ['「', '」'],
  ['*', '*'],
  ['_', '_'],
];
const STRAY_QUOTES = /^["'`“”„‘’«»「」*_]+|["'`“”„‘’«»「」*_]+$/g;

function unwrap(text: string): string {
  let current = text.trim();
  for (;;) {
    const pair = QUOTE_PAIRS.find(
      ([open, close]) =>
        current.length >= open.length + close.length && current.startsWith(open) && current.endsWith(close),
    );
    if (!pair) break;
    current = current.slice(pair[0].length, current.length - pair[1].length).trim();
  }
  // Unbalanced leftovers ("Paris trip ideas) are dropped too.
  return current.replace(STRAY_QUOTES, '').trim();
}

function cleanLine(line: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this removes
  let text = line.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  text = text.replace(/^#{1,6}\s*/, '');
  text = unwrap(text);
  text = text.replace(/^(?:conversation\s+)?title\s*[:\-–—]\s*/i, '');
  text = unwrap(text);
  text = text
    .replace(/\s+/g, ' ')
    .replace(/[.。:;,]+$/u, '')
    .trim();
  return unwrap(text);
}

function truncate(text: string): string {
  if (text.length <= TITLE_MAX_LENGTH) return text;
  const room = text.slice(0, TITLE_MAX_LENGTH - 1);
  const space = room.lastIndexOf(' ');
  const cut = space >= TITLE_MAX_LENGTH / 2 ? room.slice(0, space) : room;
  return `${cut.replace(/[\s.,;:–—-]+$/u, '')}…`;
}

/**
 * A model's answer as a title: reasoning blocks, markdown, a `Title:` label, quotes, newlines and
 * final punctuation removed, the first line with text kept, at most 80 characters. Null when
 * nothing usable is left.
 */
export function cleanTitle(raw: string): string | null {
  const withoutThinking = raw.replace(/<think(?:ing)?>[\s\S]*?<\/think(?:ing)?>/gi, ' ');
  for (const line of withoutThinking.split(/\r\n|\r|\n/)) {
    const text = cleanLine(line);
    if (text !== '') return truncate(text);
  }
  return null;
}
