import type {
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
} from 'openai/resources/chat/completions';
import type { ConversationMetadata } from './entities/conversation.entity.js';
import type { MessageContent, MessageRole, MessageStatus } from './entities/message.entity.js';

/** A conversation as the service hands it out (camelCase domain shape). */
export interface ConversationInfo {
  id: string;
  title: string | null;
  model: string | null;
  providerId: string | null;
  activeSystemPromptId: string | null;
  /** The system prompt text in use (remembered on the conversation); null for none. */
  systemPrompt: string | null;
  toolsEnabled: boolean;
  activeTools: string[];
  metadata: ConversationMetadata;
  lastSeq: number;
  createdAt: Date;
  updatedAt: Date;
}

/** What the completion path knows at the start of a turn. */
export interface StartTurnInput {
  /** The client's `conversation_id`: unknown, foreign or malformed ids start a new conversation. */
  conversationId?: string;
  model: string;
  providerId: string;
  /** `system_prompt`: wins over everything else and is remembered. */
  systemPrompt?: string;
  /**
   * `active_system_prompt_id`: one of the caller's saved prompts (unknown or foreign ids are
   * ignored); `null` deselects the conversation's saved prompt.
   */
  activeSystemPromptId?: string | null;
  toolsEnabled: boolean;
  activeTools: string[];
  /** Persistence hints (`streamingEnabled`, `toolsEnabled`, `qualityLevel`, `researchMode`), merged into metadata. */
  hints: Record<string, unknown>;
  /** The client's messages for this turn (only the newest turn when continuing). */
  newMessages: ChatCompletionMessageParam[];
}

export interface TurnStart {
  conversation: ConversationInfo;
  /**
   * The full upstream message list: the system prompt (if any), then every stored message in seq
   * order, including the ones just stored.
   */
  history: ChatCompletionMessageParam[];
  /** The last user message stored by this turn (else the last message it stored; null if none). */
  userMessageId: string | null;
  /** The seq of the last message this turn stored (the conversation's `last_seq`). */
  seq: number;
  /**
   * The provider's id of the last assistant answer, for Responses `previous_response_id` chaining;
   * null when there is none or the previous turn went to another provider.
   */
  lastAssistantResponseId: string | null;
  isNew: boolean;
}

export interface AssistantTurnMessage {
  content: string | null;
  toolCalls?: ChatCompletionMessageToolCall[];
  status: 'complete' | 'incomplete';
  providerResponseId?: string | null;
  usage?: object | null;
  completionId: string;
}

export interface ToolResultMessage {
  toolCallId: string;
  name: string;
  content: string;
  status: 'success' | 'error';
}

/** One earlier iteration of the tool loop: the assistant's tool calls, then one result per call. */
export interface ToolLoopStep {
  assistant: AssistantTurnMessage;
  toolMessages: ToolResultMessage[];
}

export interface CompleteTurnInput {
  /**
   * The final assistant message. `id` may be chosen beforehand (`newMessageId()`) so that it can
   * be announced before the write; otherwise one is made.
   */
  assistant: AssistantTurnMessage & { id?: string };
  /** Results of the final assistant message's own tool calls, stored after it. */
  toolMessages?: ToolResultMessage[];
  /** Earlier tool-loop iterations, stored in order before the final assistant message. */
  intermediate?: ToolLoopStep[];
}

export interface CompleteTurnResult {
  assistantMessageId: string;
  /** The final assistant message's seq. */
  seq: number;
}

/** The `_conversation` object of an answer (contract section 4). */
export interface ConversationBlock {
  id: string;
  title: string | null;
  model: string | null;
  created_at: string;
  tools_enabled: boolean;
  active_tools: string[];
  active_system_prompt_id: string | null;
  seq: number;
  user_message_id: string | null;
  assistant_message_id: string | null;
}

/** A message row as stored, in the shape the history rebuild needs. */
export interface StoredMessage {
  id: string;
  seq: number;
  role: MessageRole;
  content: MessageContent;
  toolCalls: ChatCompletionMessageToolCall[] | null;
  toolCallId: string | null;
  name: string | null;
  status: MessageStatus;
  providerResponseId: string | null;
}

/** A message about to be stored; the repository gives it its seq. */
export interface NewMessage {
  id: string;
  role: MessageRole;
  content: MessageContent;
  toolCalls: ChatCompletionMessageToolCall[] | null;
  toolCallId: string | null;
  name: string | null;
  status: MessageStatus;
  providerResponseId: string | null;
  usage: object | null;
  completionId: string | null;
}
