import { describe, expect, it } from 'vitest';
import {
  chooseSystemPrompt,
  type SystemPromptChoice,
  type SystemPromptChoiceInput,
} from './system-prompt-choice.js';

const SAVED = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';
const none: SystemPromptChoiceInput = { requestedContent: null, clientSystemText: null, remembered: null };
const rememberedSaved = { activeId: SAVED, activeContent: 'saved now', text: 'saved then' };
const rememberedText = { activeId: null, activeContent: null, text: 'free text' };

describe(chooseSystemPrompt.name, () => {
  it.each<[string, SystemPromptChoiceInput, SystemPromptChoice]>([
    ['nothing anywhere', none, { text: null, activeId: null }],
    [
      'system_prompt wins',
      { ...none, explicitText: 'explicit', clientSystemText: 'client', remembered: rememberedSaved },
      { text: 'explicit', activeId: null },
    ],
    [
      'system_prompt with a valid saved id keeps the id',
      { ...none, explicitText: 'explicit', requestedId: OTHER, requestedContent: 'other' },
      { text: 'explicit', activeId: OTHER },
    ],
    [
      'an empty system_prompt means none',
      { ...none, explicitText: '', remembered: rememberedText },
      { text: null, activeId: null },
    ],
    [
      'a saved prompt by id',
      {
        ...none,
        requestedId: OTHER,
        requestedContent: 'other',
        clientSystemText: 'client',
        remembered: rememberedSaved,
      },
      { text: 'other', activeId: OTHER },
    ],
    [
      'an unknown saved id is ignored',
      { ...none, requestedId: OTHER, remembered: rememberedText },
      { text: 'free text', activeId: null },
    ],
    [
      "the client's system message",
      { ...none, clientSystemText: 'client', remembered: rememberedSaved },
      { text: 'client', activeId: null },
    ],
    [
      'the remembered saved prompt, as it reads now',
      { ...none, remembered: rememberedSaved },
      { text: 'saved now', activeId: SAVED },
    ],
    [
      'the remembered saved prompt was deleted: its text stays',
      { ...none, remembered: { ...rememberedSaved, activeContent: null } },
      { text: 'saved then', activeId: null },
    ],
    [
      'the remembered free text',
      { ...none, remembered: rememberedText },
      { text: 'free text', activeId: null },
    ],
    [
      'null deselects the saved prompt',
      { ...none, requestedId: null, remembered: rememberedSaved },
      { text: null, activeId: null },
    ],
    [
      'null keeps a free text',
      { ...none, requestedId: null, remembered: rememberedText },
      { text: 'free text', activeId: null },
    ],
  ])('%s', (_name, input, expected) => {
    expect(chooseSystemPrompt(input)).toEqual(expected);
  });
});
