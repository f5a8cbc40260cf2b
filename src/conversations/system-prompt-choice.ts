/** Which system prompt a turn uses, and what the conversation remembers of the choice. Pure. */

export interface SystemPromptChoiceInput {
  /** `system_prompt` as sent (undefined: not sent; an empty text means none). */
  explicitText?: string;
  /** `active_system_prompt_id` as sent (undefined: not sent; null: deselect the saved prompt). */
  requestedId?: string | null;
  /** The text of `requestedId` when it is one of the caller's saved prompts, else null. */
  requestedContent: string | null;
  /** The text of the system/developer messages the client sent in this turn, else null. */
  clientSystemText: string | null;
  /** What the conversation remembers; null for a new conversation. */
  remembered: {
    activeId: string | null;
    /** The current text of the remembered saved prompt; null if it has been deleted. */
    activeContent: string | null;
    text: string | null;
  } | null;
}

export interface SystemPromptChoice {
  text: string | null;
  activeId: string | null;
}

/**
 * This request's own choices first (`system_prompt`, then a saved prompt by id, then the client's
 * system message), then what the conversation remembers: its saved prompt (as it reads now), else
 * the remembered text. Unknown or foreign saved prompt ids are ignored.
 */
export function chooseSystemPrompt(input: SystemPromptChoiceInput): SystemPromptChoice {
  const requestedValid = typeof input.requestedId === 'string' && input.requestedContent !== null;
  if (input.explicitText !== undefined) {
    return {
      text: input.explicitText === '' ? null : input.explicitText,
      activeId: requestedValid ? (input.requestedId as string) : null,
    };
  }
  if (requestedValid) return { text: input.requestedContent, activeId: input.requestedId as string };
  if (input.clientSystemText !== null) return { text: input.clientSystemText, activeId: null };
  const remembered = input.remembered;
  if (!remembered) return { text: null, activeId: null };
  if (remembered.activeId !== null) {
    if (input.requestedId === null) return { text: null, activeId: null };
    if (remembered.activeContent !== null)
      return { text: remembered.activeContent, activeId: remembered.activeId };
    // The saved prompt was deleted: keep the text it had, forget the id.
    return { text: remembered.text, activeId: null };
  }
  return { text: remembered.text, activeId: null };
}
