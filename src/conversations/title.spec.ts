import { describe, expect, it } from 'vitest';
import { buildTitlePrompt, cleanTitle, TITLE_MAX_LENGTH } from './title.js';

describe(cleanTitle.name, () => {
  it.each([
    ['Paris trip ideas', 'Paris trip ideas'],
    ['"Paris trip ideas"', 'Paris trip ideas'],
    ['“Paris trip ideas”\n', 'Paris trip ideas'],
    ["'Paris trip ideas.'", 'Paris trip ideas'],
    ['Title: Paris trip ideas', 'Paris trip ideas'],
    ['**Title:** "Paris trip ideas"', 'Paris trip ideas'],
    ['# Paris trip ideas', 'Paris trip ideas'],
    ['\n\n  Paris   trip\tideas  \n\nThis title sums up the request.', 'Paris trip ideas'],
    ['Title:\nParis trip ideas', 'Paris trip ideas'],
    ['<think>The user wants a title.</think>\nParis trip ideas', 'Paris trip ideas'],
    ['"Unbalanced quote', 'Unbalanced quote'],
    ['Why is the sky blue?', 'Why is the sky blue?'],
  ])('%j -> %j', (raw, expected) => {
    expect(cleanTitle(raw)).toBe(expected);
  });

  it.each(['', '   \n  ', '""', '<think>hmm</think>', '...'])('%j -> null', (raw) => {
    expect(cleanTitle(raw)).toBeNull();
  });

  it(`cuts long titles to at most ${TITLE_MAX_LENGTH} characters, at a word boundary`, () => {
    const raw = 'A very long title that goes on and on about planning a trip to Paris and Lisbon in spring';
    const title = cleanTitle(raw)!;
    expect(title.length).toBeLessThanOrEqual(TITLE_MAX_LENGTH);
    expect(title.endsWith('…')).toBe(true);
    expect(raw.startsWith(title.slice(0, -1))).toBe(true);
    expect(title.slice(0, -1).endsWith(' ')).toBe(false);
    expect(cleanTitle('x'.repeat(200))).toBe(`${'x'.repeat(TITLE_MAX_LENGTH - 1)}…`);
  });
});

describe(buildTitlePrompt.name, () => {
  it('asks for a short title of the conversation start, quoting at most 2000 characters', () => {
    const prompt = buildTitlePrompt(`  Plan a trip to Paris${'!'.repeat(5000)}`);
    expect(prompt[0].role).toBe('system');
    expect(prompt[1]).toMatchObject({ role: 'user' });
    const content = prompt[1].content as string;
    expect(content).toMatch(
      /^Write a short title \(max 6 words\) for a conversation that starts with:\n\nPlan a trip/,
    );
    expect(content.length).toBeLessThan(2100);
  });
});
