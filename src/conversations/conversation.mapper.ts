import type { ConversationBlock, ConversationInfo } from './conversation.types.js';
import type { ConversationDto } from './dto/conversation.dto.js';
import type { MessageDto } from './dto/message.dto.js';
import type { SystemPromptDto } from './dto/system-prompt.dto.js';
import type { MessageEntity } from './entities/message.entity.js';
import type { SystemPromptEntity } from './entities/system-prompt.entity.js';

export function toConversationDto(conversation: ConversationInfo): ConversationDto {
  return {
    id: conversation.id,
    title: conversation.title,
    model: conversation.model,
    created_at: conversation.createdAt.toISOString(),
    updated_at: conversation.updatedAt.toISOString(),
    metadata: conversation.metadata,
  };
}

export function toMessageDto(row: MessageEntity): MessageDto {
  return {
    id: row.id,
    seq: row.seq,
    role: row.role,
    content: row.content,
    ...(row.toolCalls !== null ? { tool_calls: row.toolCalls } : {}),
    ...(row.toolCallId !== null ? { tool_call_id: row.toolCallId } : {}),
    ...(row.name !== null ? { name: row.name } : {}),
    status: row.status,
    created_at: row.createdAt.toISOString(),
  };
}

export function toSystemPromptDto(row: SystemPromptEntity): SystemPromptDto {
  return {
    id: row.id,
    name: row.name,
    content: row.content,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** The `_conversation` object of an answer (contract section 4). */
export function toConversationBlock(
  conversation: ConversationInfo,
  extra: { userMessageId: string | null; assistantMessageId: string | null; seq: number },
): ConversationBlock {
  return {
    id: conversation.id,
    title: conversation.title,
    model: conversation.model,
    created_at: conversation.createdAt.toISOString(),
    tools_enabled: conversation.toolsEnabled,
    active_tools: conversation.activeTools,
    active_system_prompt_id: conversation.activeSystemPromptId,
    seq: extra.seq,
    user_message_id: extra.userMessageId,
    assistant_message_id: extra.assistantMessageId,
  };
}
