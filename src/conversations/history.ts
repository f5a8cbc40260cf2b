import type {
  ChatCompletionAssistantMessageParam,
  ChatCompletionContentPartText,
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
  ChatCompletionUserMessageParam,
} from 'openai/resources/chat/completions';
import type {
  AssistantTurnMessage,
  CompleteTurnInput,
  NewMessage,
  StoredMessage,
  ToolResultMessage,
} from './conversation.types.js';
import type { MessageContent } from './entities/message.entity.js';

/**
 * Pure conversions between OpenAI chat messages and stored message rows: what a turn stores of the
 * client's messages, and the upstream message list rebuilt from the stored rows. No Nest, no IO.
 */

/** The text of a message content: the string, or its text parts joined by newlines. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content as unknown[]) {
    if (typeof part !== 'object' || part === null) continue;
    const { type, text } = part as { type?: unknown; text?: unknown };
    if (type === 'text' && typeof text === 'string' && text !== '') texts.push(text);
  }
  return texts.join('\n');
}

/** The text of the first user message (for the title), or null when there is none with text. */
export function firstUserText(messages: readonly ChatCompletionMessageParam[]): string | null {
  for (const message of messages) {
    if (message.role !== 'user') continue;
    const text = contentText(message.content).trim();
    if (text !== '') return text;
  }
  return null;
}

function storableContent(content: unknown): MessageContent {
  if (typeof content === 'string' || Array.isArray(content)) return content as MessageContent;
  return null;
}

export interface ClientTurn {
  /** The text of the client's system/developer messages (joined), or null when it sent none. */
  systemText: string | null;
  /** The rest, as rows to store, in order. */
  rows: NewMessage[];
}

/**
 * Splits the client's messages for a turn: system and developer messages are not stored (their
 * text can serve as the system prompt); user, assistant, tool and function messages are.
 */
export function clientTurnToRows(
  messages: readonly ChatCompletionMessageParam[],
  newId: () => string,
): ClientTurn {
  const system: string[] = [];
  const rows: NewMessage[] = [];
  const row = (fields: Partial<NewMessage> & Pick<NewMessage, 'role' | 'status'>): NewMessage => ({
    id: newId(),
    content: null,
    toolCalls: null,
    toolCallId: null,
    name: null,
    providerResponseId: null,
    usage: null,
    completionId: null,
    ...fields,
  });
  for (const message of messages) {
    switch (message.role) {
      case 'system':
      case 'developer': {
        const text = contentText(message.content);
        if (text.trim() !== '') system.push(text);
        break;
      }
      case 'user':
        rows.push(
          row({
            role: 'user',
            status: 'complete',
            content: storableContent(message.content),
            name: message.name ?? null,
          }),
        );
        break;
      case 'assistant': {
        let content = storableContent(message.content);
        if ((content === null || content === '') && typeof message.refusal === 'string')
          content = message.refusal;
        rows.push(
          row({
            role: 'assistant',
            status: 'complete',
            content,
            toolCalls: message.tool_calls && message.tool_calls.length > 0 ? message.tool_calls : null,
            name: message.name ?? null,
          }),
        );
        break;
      }
      case 'tool':
        rows.push(
          row({
            role: 'tool',
            status: 'success',
            content: storableContent(message.content),
            toolCallId: message.tool_call_id,
          }),
        );
        break;
      case 'function':
        rows.push(row({ role: 'function', status: 'success', content: message.content, name: message.name }));
        break;
    }
  }
  return { systemText: system.length > 0 ? system.join('\n\n') : null, rows };
}

/** The provider's id of the last assistant message, if it has one. */
export function lastAssistantResponseId(rows: readonly StoredMessage[]): string | null {
  for (let i = rows.length - 1; i >= 0; i--) {
    if (rows[i].role === 'assistant') return rows[i].providerResponseId;
  }
  return null;
}

/** Tool call ids answered by the `tool` messages right after `index`. */
function answeredCallIds(rows: readonly StoredMessage[], index: number): Set<string> {
  const ids = new Set<string>();
  for (let j = index + 1; j < rows.length && rows[j].role === 'tool'; j++) {
    const id = rows[j].toolCallId;
    if (id !== null) ids.add(id);
  }
  return ids;
}

function isEmptyContent(content: MessageContent): boolean {
  return (
    content === null ||
    (typeof content === 'string' && content === '') ||
    (Array.isArray(content) && content.length === 0)
  );
}

/**
 * The upstream message list: the system prompt first (if any), then the stored messages in seq
 * order as OpenAI messages: user, assistant (with `tool_calls`), tool (with `tool_call_id`).
 * The list is kept valid for any OpenAI-compatible upstream: an assistant's tool calls that no
 * `tool` message answers right after it (a turn cut short, a client that never sent the results)
 * are left out, as are `tool` messages that answer no preceding call, and assistant messages
 * left with neither content nor tool calls.
 */
export function rebuildHistory(
  systemPrompt: string | null,
  rows: readonly StoredMessage[],
): ChatCompletionMessageParam[] {
  const messages: ChatCompletionMessageParam[] = [];
  if (systemPrompt !== null && systemPrompt !== '') messages.push({ role: 'system', content: systemPrompt });
  // Call ids the current run of tool messages may answer (each once).
  let openCalls = new Set<string>();
  rows.forEach((row, index) => {
    if (row.role !== 'tool') openCalls = new Set();
    switch (row.role) {
      case 'system':
        messages.push({ role: 'system', content: contentText(row.content) });
        break;
      case 'user': {
        const user: ChatCompletionUserMessageParam = {
          role: 'user',
          content: (row.content ?? '') as ChatCompletionUserMessageParam['content'],
        };
        if (row.name !== null) user.name = row.name;
        messages.push(user);
        break;
      }
      case 'assistant': {
        let toolCalls: ChatCompletionMessageToolCall[] = [];
        if (row.toolCalls && row.toolCalls.length > 0) {
          const answered = answeredCallIds(rows, index);
          toolCalls = row.toolCalls.filter((call) => answered.has(call.id));
          openCalls = new Set(toolCalls.map((call) => call.id));
        }
        if (toolCalls.length === 0 && isEmptyContent(row.content)) break;
        const assistant: ChatCompletionAssistantMessageParam = {
          role: 'assistant',
          content: row.content as ChatCompletionAssistantMessageParam['content'],
        };
        if (toolCalls.length > 0) assistant.tool_calls = toolCalls;
        if (row.name !== null) assistant.name = row.name;
        messages.push(assistant);
        break;
      }
      case 'tool': {
        const id = row.toolCallId;
        if (id === null || !openCalls.has(id)) break;
        openCalls.delete(id);
        messages.push({
          role: 'tool',
          tool_call_id: id,
          content: (row.content ?? '') as string | ChatCompletionContentPartText[],
        });
        break;
      }
      case 'function':
        messages.push({ role: 'function', name: row.name ?? '', content: contentText(row.content) });
        break;
    }
  });
  return messages;
}

export interface AssistantTurnRows {
  rows: NewMessage[];
  /** The final assistant message's place in `rows`. */
  assistantIndex: number;
}

/**
 * The rows a finished turn stores, in order: each earlier tool-loop iteration (its assistant
 * message with the tool calls, then one `tool` message per result), the final assistant message,
 * then the results of the final message's own tool calls.
 */
export function assistantTurnToRows(input: CompleteTurnInput, newId: () => string): AssistantTurnRows {
  const assistantRow = (assistant: AssistantTurnMessage, id: string): NewMessage => ({
    id,
    role: 'assistant',
    content: assistant.content,
    toolCalls: assistant.toolCalls && assistant.toolCalls.length > 0 ? assistant.toolCalls : null,
    toolCallId: null,
    name: null,
    status: assistant.status,
    providerResponseId: assistant.providerResponseId ?? null,
    usage: assistant.usage ?? null,
    completionId: assistant.completionId,
  });
  const toolRow = (tool: ToolResultMessage, completionId: string): NewMessage => ({
    id: newId(),
    role: 'tool',
    content: tool.content,
    toolCalls: null,
    toolCallId: tool.toolCallId,
    name: tool.name,
    status: tool.status,
    providerResponseId: null,
    usage: null,
    completionId,
  });
  const rows: NewMessage[] = [];
  for (const step of input.intermediate ?? []) {
    rows.push(assistantRow(step.assistant, newId()));
    for (const tool of step.toolMessages) rows.push(toolRow(tool, step.assistant.completionId));
  }
  const assistantIndex = rows.length;
  rows.push(assistantRow(input.assistant, input.assistant.id ?? newId()));
  for (const tool of input.toolMessages ?? []) rows.push(toolRow(tool, input.assistant.completionId));
  return { rows, assistantIndex };
}
