import type { ChatCompletionMessageToolCall } from 'openai/resources/chat/completions';
import {
  Column,
  CreateDateColumn,
  Entity,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  Unique,
} from 'typeorm';
import { ConversationEntity } from './conversation.entity.js';

export const MESSAGE_ROLES = ['system', 'user', 'assistant', 'tool', 'function'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];

/** `complete`/`incomplete` on assistant messages, `success`/`error` on tool ones, `complete` otherwise. */
export const MESSAGE_STATUSES = ['complete', 'incomplete', 'success', 'error'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** A text, or OpenAI content parts as the client sent them. */
export type MessageContent = string | readonly unknown[] | null;

/** One message of a conversation, numbered by `seq` (1, 2, ...) within it. */
@Entity('messages')
@Unique('UQ_messages_conversation_seq', ['conversationId', 'seq'])
export class MessageEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'conversation_id', type: 'uuid' })
  conversationId!: string;

  @ManyToOne(() => ConversationEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'conversation_id' })
  conversation?: ConversationEntity;

  @Column({ name: 'tenant_id', type: 'text' })
  tenantId!: string;

  @Column({ name: 'user_id', type: 'text' })
  userId!: string;

  @Column({ type: 'integer' })
  seq!: number;

  @Column({ type: 'text' })
  role!: MessageRole;

  @Column({ type: 'jsonb', nullable: true })
  content!: MessageContent;

  @Column({ name: 'tool_calls', type: 'jsonb', nullable: true })
  toolCalls!: ChatCompletionMessageToolCall[] | null;

  @Column({ name: 'tool_call_id', type: 'text', nullable: true })
  toolCallId!: string | null;

  @Column({ type: 'text', nullable: true })
  name!: string | null;

  @Column({ type: 'text' })
  status!: MessageStatus;

  /** The provider's own id for this answer (Responses `resp_...`), for `previous_response_id` chaining. */
  @Column({ name: 'provider_response_id', type: 'text', nullable: true })
  providerResponseId!: string | null;

  @Column({ type: 'jsonb', nullable: true })
  usage!: Record<string, unknown> | null;

  /** Parley's completion id (`chatcmpl-...`) that produced this message. */
  @Column({ name: 'completion_id', type: 'text', nullable: true })
  completionId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
