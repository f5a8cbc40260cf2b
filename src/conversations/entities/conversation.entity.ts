import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** Persistence hints a client sent (`streamingEnabled`, `toolsEnabled`, `qualityLevel`, `researchMode`). */
export type ConversationMetadata = Record<string, unknown>;

/** One user's conversation in one tenant. Messages hang off it (`messages.conversation_id`). */
@Entity('conversations')
@Index('IDX_conversations_owner_updated', ['tenantId', 'userId', 'updatedAt', 'id'])
export class ConversationEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'tenant_id', type: 'text' })
  tenantId!: string;

  @Column({ name: 'user_id', type: 'text' })
  userId!: string;

  @Column({ type: 'text', nullable: true })
  title!: string | null;

  @Column({ type: 'text', nullable: true })
  model!: string | null;

  @Column({ name: 'provider_id', type: 'text', nullable: true })
  providerId!: string | null;

  /** The caller's saved system prompt chosen for this conversation, if any. */
  @Column({ name: 'active_system_prompt_id', type: 'uuid', nullable: true })
  activeSystemPromptId!: string | null;

  /** The system prompt text in use, remembered so that later turns need not send it again. */
  @Column({ name: 'system_prompt', type: 'text', nullable: true })
  systemPrompt!: string | null;

  @Column({ name: 'tools_enabled', type: 'boolean' })
  toolsEnabled!: boolean;

  @Column({ name: 'active_tools', type: 'jsonb' })
  activeTools!: string[];

  @Column({ type: 'jsonb' })
  metadata!: ConversationMetadata;

  /** The highest `messages.seq` handed out so far. */
  @Column({ name: 'last_seq', type: 'integer' })
  lastSeq!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
