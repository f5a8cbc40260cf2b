import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { EntityManager, Repository } from 'typeorm';
import type { TenantContext } from '../common/context/request-context.js';
import type { ConversationInfo, NewMessage, StoredMessage } from './conversation.types.js';
import { ConversationEntity, type ConversationMetadata } from './entities/conversation.entity.js';
import { MessageEntity } from './entities/message.entity.js';
import { SystemPromptEntity } from './entities/system-prompt.entity.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Conversation, message and prompt ids are UUIDs: anything else names nothing (and must never reach SQL). */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** A `conversations` row as `SELECT *` / `RETURNING *` gives it. */
interface ConversationRow {
  id: string;
  title: string | null;
  model: string | null;
  provider_id: string | null;
  active_system_prompt_id: string | null;
  system_prompt: string | null;
  tools_enabled: boolean;
  active_tools: string[];
  metadata: ConversationMetadata;
  last_seq: number;
  created_at: Date;
  updated_at: Date;
}

function toConversation(row: ConversationRow): ConversationInfo {
  return {
    id: row.id,
    title: row.title,
    model: row.model,
    providerId: row.provider_id,
    activeSystemPromptId: row.active_system_prompt_id,
    systemPrompt: row.system_prompt,
    toolsEnabled: row.tools_enabled,
    activeTools: row.active_tools,
    metadata: row.metadata,
    lastSeq: row.last_seq,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Rows of a raw query; TypeORM answers UPDATE and DELETE as `[rows, count]`. */
async function queryRows<T>(em: EntityManager, sql: string, params: unknown[]): Promise<T[]> {
  const result: unknown = await em.query(sql, params);
  if (
    Array.isArray(result) &&
    result.length === 2 &&
    Array.isArray(result[0]) &&
    typeof result[1] === 'number'
  ) {
    return result[0] as T[];
  }
  return result as T[];
}

/** The message rows as jsonb records, `i` numbering them from 1 in order. */
function messageRecords(rows: readonly NewMessage[]): Record<string, unknown>[] {
  return rows.map((m, index) => ({
    i: index + 1,
    id: m.id,
    role: m.role,
    content: m.content,
    tool_calls: m.toolCalls,
    tool_call_id: m.toolCallId,
    name: m.name,
    status: m.status,
    provider_response_id: m.providerResponseId,
    usage: m.usage,
    completion_id: m.completionId,
  }));
}

/** The message rows as one jsonb parameter. */
function messagesParam(rows: readonly NewMessage[]): string {
  return JSON.stringify(messageRecords(rows));
}

/** The columns of a message record, as `jsonb_to_recordset` reads them. */
const MESSAGE_RECORD = `("i" int, "id" uuid, "role" text, "content" jsonb, "tool_calls" jsonb, "tool_call_id" text,
  "name" text, "status" text, "provider_response_id" text, "usage" jsonb, "completion_id" text)`;

/**
 * A CTE that makes its statement commit without waiting for the WAL flush, for the background turn
 * writes: the client has its answer before they are written anyway, so a crash loses at most the
 * last fraction of a second of them, as it loses those still queued in the process; not waiting
 * for the disk lets many commit per flush. The statement must read `async_commit` for it to run.
 */
const ASYNC_COMMIT_CTE = `async_commit AS (SELECT set_config('synchronous_commit', 'off', true))`;

/** A conversation to create with its first messages; its id and creation time are chosen by the caller. */
export interface NewConversation {
  ctx: TenantContext;
  fields: TurnFields;
  messages: readonly NewMessage[];
  identity: { id: string; createdAt: Date };
}

/**
 * Creates many conversations with their first messages in one statement. A conversation whose id
 * exists already (an earlier attempt that committed) is skipped with its messages, so a retry writes
 * nothing twice.
 */
const CREATE_CONVERSATIONS = `
  WITH ${ASYNC_COMMIT_CTE}, x AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("id" uuid, "tenant_id" text, "user_id" text, "model" text,
      "provider_id" text, "system_prompt" text, "active_system_prompt_id" uuid, "tools_enabled" boolean,
      "active_tools" jsonb, "metadata" jsonb, "created_at" timestamptz, "messages" jsonb)
  ), c AS (
    INSERT INTO "conversations" ("id", "tenant_id", "user_id", "model", "provider_id", "system_prompt",
      "active_system_prompt_id", "tools_enabled", "active_tools", "metadata", "last_seq", "created_at", "updated_at")
    SELECT x."id", x."tenant_id", x."user_id", x."model", x."provider_id", x."system_prompt",
      x."active_system_prompt_id", x."tools_enabled", x."active_tools", x."metadata",
      jsonb_array_length(x."messages"), x."created_at", x."created_at"
    FROM x
    ON CONFLICT ("id") DO NOTHING
    RETURNING "id"
  )
  INSERT INTO "messages" ("id", "conversation_id", "tenant_id", "user_id", "seq", "role", "content", "tool_calls",
    "tool_call_id", "name", "status", "provider_response_id", "usage", "completion_id")
  SELECT r."id", x."id", x."tenant_id", x."user_id", r."i", r."role", r."content", r."tool_calls", r."tool_call_id",
    r."name", r."status", r."provider_response_id", r."usage", r."completion_id"
  FROM async_commit, x JOIN c ON c."id" = x."id", jsonb_to_recordset(x."messages") AS r${MESSAGE_RECORD}`;

/** Messages to append to one of the caller's conversations. */
export interface TurnAppend {
  ctx: TenantContext;
  conversationId: string;
  messages: readonly NewMessage[];
}

/**
 * Appends messages to many conversations (each at most once) in one statement: each conversation's
 * `last_seq` grows by its count and its messages are numbered after the old value, as
 * `appendMessages` does for one. Answers the stored messages' ids and seqs.
 */
const APPEND_TO_CONVERSATIONS = `
  WITH ${ASYNC_COMMIT_CTE}, x AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("conversation_id" uuid, "tenant_id" text, "user_id" text,
      "count" int, "messages" jsonb)
  ), c AS (
    UPDATE "conversations" AS conv SET "last_seq" = conv."last_seq" + x."count", "updated_at" = now()
    FROM x
    WHERE conv."id" = x."conversation_id" AND conv."tenant_id" = x."tenant_id" AND conv."user_id" = x."user_id"
    RETURNING conv."id", conv."tenant_id", conv."user_id", conv."last_seq", x."count", x."messages"
  ), m AS (
    INSERT INTO "messages" ("id", "conversation_id", "tenant_id", "user_id", "seq", "role", "content", "tool_calls",
      "tool_call_id", "name", "status", "provider_response_id", "usage", "completion_id")
    SELECT r."id", c."id", c."tenant_id", c."user_id", c."last_seq" - c."count" + r."i", r."role", r."content",
      r."tool_calls", r."tool_call_id", r."name", r."status", r."provider_response_id", r."usage", r."completion_id"
    FROM c, jsonb_to_recordset(c."messages") AS r${MESSAGE_RECORD}
    RETURNING "id", "seq"
  )
  SELECT m."id", m."seq" FROM m, async_commit`;

/**
 * The INSERT of `$messages` (a jsonb array) into the conversation of CTE `c`, numbered after
 * `c.last_seq - $count`: `c` must already have counted them into `last_seq`.
 */
function insertMessagesCte(messagesParamIndex: number, countParamIndex: number): string {
  return `m AS (
    INSERT INTO "messages" ("id", "conversation_id", "tenant_id", "user_id", "seq", "role", "content", "tool_calls",
      "tool_call_id", "name", "status", "provider_response_id", "usage", "completion_id")
    SELECT r."id", c."id", c."tenant_id", c."user_id", c."last_seq" - $${countParamIndex}::int + r."i", r."role", r."content",
      r."tool_calls", r."tool_call_id", r."name", r."status", r."provider_response_id", r."usage", r."completion_id"
    FROM c, jsonb_to_recordset($${messagesParamIndex}::jsonb) AS r${MESSAGE_RECORD}
    RETURNING "id", "seq"
  )`;
}

/** What a turn sets on its conversation. */
export interface TurnFields {
  model: string;
  providerId: string;
  systemPrompt: string | null;
  activeSystemPromptId: string | null;
  toolsEnabled: boolean;
  activeTools: string[];
  /** Merged (shallowly) into the stored metadata. */
  metadata: ConversationMetadata;
}

/** A conversation locked for a turn, with the current text of its saved prompt (if it still exists). */
export interface LockedConversation {
  conversation: ConversationInfo;
  activePromptContent: string | null;
  requestedPromptContent: string | null;
}

/** The turn fields as statement parameters, in the column order both turn statements use. */
function turnFieldParams(fields: TurnFields): unknown[] {
  return [
    fields.model,
    fields.providerId,
    fields.systemPrompt,
    fields.activeSystemPromptId,
    fields.toolsEnabled,
    JSON.stringify(fields.activeTools),
    JSON.stringify(fields.metadata),
  ];
}

/** The reads and writes of one turn's transaction, all scoped by the caller's tenant and user. */
export class TurnTransaction {
  constructor(private readonly em: EntityManager) {}

  /**
   * The caller's conversation, locked until the transaction ends (turns of one conversation take
   * their seqs one after the other), with the text of its saved prompt and of `requestedPromptId`.
   */
  async lockConversation(
    ctx: TenantContext,
    conversationId: string,
    requestedPromptId: string | null,
  ): Promise<LockedConversation | null> {
    if (!isUuid(conversationId)) return null;
    const rows = await queryRows<
      ConversationRow & { active_prompt_content: string | null; requested_prompt_content: string | null }
    >(
      this.em,
      `SELECT c.*, sp."content" AS "active_prompt_content",
         (SELECT r."content" FROM "system_prompts" r
           WHERE r."id" = $4::uuid AND r."tenant_id" = $2 AND r."user_id" = $3) AS "requested_prompt_content"
       FROM "conversations" c
       LEFT JOIN "system_prompts" sp
         ON sp."id" = c."active_system_prompt_id" AND sp."tenant_id" = c."tenant_id" AND sp."user_id" = c."user_id"
       WHERE c."id" = $1 AND c."tenant_id" = $2 AND c."user_id" = $3
       FOR UPDATE OF c`,
      [conversationId, ctx.tenantId, ctx.userId, isUuid(requestedPromptId) ? requestedPromptId : null],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      conversation: toConversation(row),
      activePromptContent: row.active_prompt_content,
      requestedPromptContent: row.requested_prompt_content,
    };
  }

  /** The content of one of the caller's saved prompts. */
  async promptContent(ctx: TenantContext, promptId: string): Promise<string | null> {
    if (!isUuid(promptId)) return null;
    const rows = await queryRows<{ content: string }>(
      this.em,
      `SELECT "content" FROM "system_prompts" WHERE "id" = $1 AND "tenant_id" = $2 AND "user_id" = $3`,
      [promptId, ctx.tenantId, ctx.userId],
    );
    return rows[0]?.content ?? null;
  }

  /** Creates the caller's conversation with its first messages (one statement). */
  /** `identity` fixes the new conversation's id and creation time (chosen before the write). */
  async createConversation(
    ctx: TenantContext,
    fields: TurnFields,
    messages: readonly NewMessage[],
    identity: { id: string; createdAt: Date },
  ): Promise<ConversationInfo> {
    const rows = await queryRows<ConversationRow>(
      this.em,
      `WITH c AS (
         INSERT INTO "conversations" ("tenant_id", "user_id", "model", "provider_id", "system_prompt",
           "active_system_prompt_id", "tools_enabled", "active_tools", "metadata", "last_seq",
           "id", "created_at", "updated_at")
         VALUES ($1, $2, $3, $4, $5, $6::uuid, $7, $8::jsonb, $9::jsonb, $10::int, $12::uuid, $13, $13)
         RETURNING *
       ), ${insertMessagesCte(11, 10)}
       SELECT c.* FROM c`,
      [
        ctx.tenantId,
        ctx.userId,
        ...turnFieldParams(fields),
        messages.length,
        messagesParam(messages),
        identity.id,
        identity.createdAt,
      ],
    );
    return toConversation(rows[0]);
  }

  /** Updates the caller's conversation for a new turn and appends its messages (one statement). */
  async continueConversation(
    ctx: TenantContext,
    conversationId: string,
    fields: TurnFields,
    messages: readonly NewMessage[],
  ): Promise<ConversationInfo | null> {
    const rows = await queryRows<ConversationRow>(
      this.em,
      `WITH c AS (
         UPDATE "conversations" SET "model" = $4, "provider_id" = $5, "system_prompt" = $6,
           "active_system_prompt_id" = $7::uuid, "tools_enabled" = $8, "active_tools" = $9::jsonb,
           "metadata" = "metadata" || $10::jsonb, "last_seq" = "last_seq" + $11::int, "updated_at" = now()
         WHERE "id" = $1 AND "tenant_id" = $2 AND "user_id" = $3
         RETURNING *
       ), ${insertMessagesCte(12, 11)}
       SELECT c.* FROM c`,
      [
        conversationId,
        ctx.tenantId,
        ctx.userId,
        ...turnFieldParams(fields),
        messages.length,
        messagesParam(messages),
      ],
    );
    return rows[0] ? toConversation(rows[0]) : null;
  }

  /** Every message of the caller's conversation, in seq order. */
  async history(ctx: TenantContext, conversationId: string): Promise<StoredMessage[]> {
    if (!isUuid(conversationId)) return [];
    return this.em.getRepository(MessageEntity).find({
      select: {
        id: true,
        seq: true,
        role: true,
        content: true,
        toolCalls: true,
        toolCallId: true,
        name: true,
        status: true,
        providerResponseId: true,
      },
      where: { conversationId, tenantId: ctx.tenantId, userId: ctx.userId },
      order: { seq: 'ASC' },
    });
  }
}

export interface ConversationPage {
  rows: ConversationInfo[];
  hasMore: boolean;
}

/**
 * The only code here that touches the database. Every method takes the caller's context first and
 * scopes every query by its tenant and user: nothing is ever looked up by id alone.
 */
@Injectable()
export class ConversationsRepository {
  constructor(
    @InjectRepository(ConversationEntity) private readonly conversations: Repository<ConversationEntity>,
    @InjectRepository(MessageEntity) private readonly messages: Repository<MessageEntity>,
    @InjectRepository(SystemPromptEntity) private readonly prompts: Repository<SystemPromptEntity>,
  ) {}

  /** Runs `work` in one transaction. */
  inTransaction<T>(work: (tx: TurnTransaction) => Promise<T>): Promise<T> {
    return this.conversations.manager.transaction((em) => work(new TurnTransaction(em)));
  }

  /** See CREATE_CONVERSATIONS: one statement for all of them. */
  async createConversations(conversations: readonly NewConversation[]): Promise<void> {
    const records = conversations.map(({ ctx, fields, messages, identity }) => ({
      id: identity.id,
      tenant_id: ctx.tenantId,
      user_id: ctx.userId,
      model: fields.model,
      provider_id: fields.providerId,
      system_prompt: fields.systemPrompt,
      active_system_prompt_id: fields.activeSystemPromptId,
      tools_enabled: fields.toolsEnabled,
      active_tools: fields.activeTools,
      metadata: fields.metadata,
      created_at: identity.createdAt.toISOString(),
      messages: messageRecords(messages),
    }));
    await this.conversations.manager.query(CREATE_CONVERSATIONS, [JSON.stringify(records)]);
  }

  /** Runs `work` without a transaction: for work whose only write is one statement. */
  withoutTransaction<T>(work: (tx: TurnTransaction) => Promise<T>): Promise<T> {
    return work(new TurnTransaction(this.conversations.manager));
  }

  /**
   * Appends messages to the caller's conversation and bumps its `updated_at` (one statement).
   * Answers their seqs in order, or null when the conversation is not the caller's (or is gone).
   */
  async appendMessages(
    ctx: TenantContext,
    conversationId: string,
    messages: readonly NewMessage[],
  ): Promise<number[] | null> {
    const [seqs] = await this.appendToConversations([{ ctx, conversationId, messages }]);
    return seqs;
  }

  /**
   * `appendMessages` for many conversations, in one statement (see APPEND_TO_CONVERSATIONS); answers
   * each one's seqs, or null as `appendMessages` does. A conversation may appear only once.
   */
  async appendToConversations(appends: readonly TurnAppend[]): Promise<(number[] | null)[]> {
    const valid = appends.filter((a) => isUuid(a.conversationId) && a.messages.length > 0);
    if (new Set(valid.map((a) => a.conversationId)).size !== valid.length) {
      throw new Error('A conversation appears twice in one batch of appends.');
    }
    const seqs = new Map<string, number>();
    if (valid.length > 0) {
      const records = valid.map(({ ctx, conversationId, messages }) => ({
        conversation_id: conversationId,
        tenant_id: ctx.tenantId,
        user_id: ctx.userId,
        count: messages.length,
        messages: messageRecords(messages),
      }));
      const rows = await queryRows<{ id: string; seq: number }>(
        this.conversations.manager,
        APPEND_TO_CONVERSATIONS,
        [JSON.stringify(records)],
      );
      for (const row of rows) seqs.set(row.id, row.seq);
    }
    return appends.map(({ messages }) => {
      const stored = messages.map((m) => seqs.get(m.id));
      return stored.length > 0 && stored.every((seq) => seq !== undefined) ? stored : null;
    });
  }

  /** The seq of one of the caller's messages, if it was stored. */
  async messageSeq(ctx: TenantContext, messageId: string): Promise<number | null> {
    if (!isUuid(messageId)) return null;
    const row = await this.messages.findOne({
      select: { seq: true },
      where: { id: messageId, tenantId: ctx.tenantId, userId: ctx.userId },
    });
    return row?.seq ?? null;
  }

  async findConversation(ctx: TenantContext, conversationId: string): Promise<ConversationInfo | null> {
    if (!isUuid(conversationId)) return null;
    const rows = await queryRows<ConversationRow>(
      this.conversations.manager,
      `SELECT * FROM "conversations" WHERE "id" = $1 AND "tenant_id" = $2 AND "user_id" = $3`,
      [conversationId, ctx.tenantId, ctx.userId],
    );
    return rows[0] ? toConversation(rows[0]) : null;
  }

  async conversationExists(ctx: TenantContext, conversationId: string): Promise<boolean> {
    if (!isUuid(conversationId)) return false;
    return this.conversations.existsBy({ id: conversationId, tenantId: ctx.tenantId, userId: ctx.userId });
  }

  /** The caller's conversations, newest first (updated_at, then id, descending), after the `after` one. */
  async listConversations(ctx: TenantContext, limit: number, after?: string): Promise<ConversationPage> {
    const params: unknown[] = [ctx.tenantId, ctx.userId, limit + 1];
    let cursor = '';
    if (after !== undefined) {
      params.push(after);
      // The cursor's own timestamp, read in SQL: a JS Date would drop the microseconds.
      cursor = `AND ("updated_at", "id") < (
        SELECT a."updated_at", a."id" FROM "conversations" a WHERE a."id" = $4::uuid AND a."tenant_id" = $1 AND a."user_id" = $2)`;
    }
    const rows = await queryRows<ConversationRow>(
      this.conversations.manager,
      `SELECT * FROM "conversations" WHERE "tenant_id" = $1 AND "user_id" = $2 ${cursor}
       ORDER BY "updated_at" DESC, "id" DESC LIMIT $3`,
      params,
    );
    return { rows: rows.slice(0, limit).map(toConversation), hasMore: rows.length > limit };
  }

  /** Sets the title (a user's rename); null when the conversation is not the caller's. */
  async renameConversation(
    ctx: TenantContext,
    conversationId: string,
    title: string,
  ): Promise<ConversationInfo | null> {
    if (!isUuid(conversationId)) return null;
    const rows = await queryRows<ConversationRow>(
      this.conversations.manager,
      `UPDATE "conversations" SET "title" = $4, "updated_at" = now()
       WHERE "id" = $1 AND "tenant_id" = $2 AND "user_id" = $3 RETURNING *`,
      [conversationId, ctx.tenantId, ctx.userId, title],
    );
    return rows[0] ? toConversation(rows[0]) : null;
  }

  /** Sets a generated title unless the conversation has one already; true when it was set. */
  async setTitleIfEmpty(ctx: TenantContext, conversationId: string, title: string): Promise<boolean> {
    if (!isUuid(conversationId)) return false;
    const result = await this.conversations
      .createQueryBuilder()
      .update()
      .set({ title, updatedAt: () => '"updated_at"' })
      .where('id = :id AND tenant_id = :tenantId AND user_id = :userId AND title IS NULL', {
        id: conversationId,
        tenantId: ctx.tenantId,
        userId: ctx.userId,
      })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /** Deletes the caller's conversation with its messages (the database cascades). */
  async deleteConversation(ctx: TenantContext, conversationId: string): Promise<boolean> {
    if (!isUuid(conversationId)) return false;
    const result = await this.conversations.delete({
      id: conversationId,
      tenantId: ctx.tenantId,
      userId: ctx.userId,
    });
    return (result.affected ?? 0) > 0;
  }

  /** Every message of the caller's conversation, in seq order. */
  async listMessages(ctx: TenantContext, conversationId: string): Promise<MessageEntity[]> {
    if (!isUuid(conversationId)) return [];
    return this.messages.find({
      where: { conversationId, tenantId: ctx.tenantId, userId: ctx.userId },
      order: { seq: 'ASC' },
    });
  }

  async createPrompt(ctx: TenantContext, name: string, content: string): Promise<SystemPromptEntity> {
    return this.prompts.save(
      this.prompts.create({ tenantId: ctx.tenantId, userId: ctx.userId, name, content }),
      {
        transaction: false,
      },
    );
  }

  async listPrompts(ctx: TenantContext): Promise<SystemPromptEntity[]> {
    return this.prompts.find({
      where: { tenantId: ctx.tenantId, userId: ctx.userId },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  async findPrompt(ctx: TenantContext, promptId: string): Promise<SystemPromptEntity | null> {
    if (!isUuid(promptId)) return null;
    return this.prompts.findOneBy({ id: promptId, tenantId: ctx.tenantId, userId: ctx.userId });
  }

  async updatePrompt(
    ctx: TenantContext,
    promptId: string,
    changes: { name?: string; content?: string },
  ): Promise<SystemPromptEntity | null> {
    if (!isUuid(promptId)) return null;
    const set: Partial<Pick<SystemPromptEntity, 'name' | 'content'>> = {};
    if (changes.name !== undefined) set.name = changes.name;
    if (changes.content !== undefined) set.content = changes.content;
    if (Object.keys(set).length > 0) {
      await this.prompts.update({ id: promptId, tenantId: ctx.tenantId, userId: ctx.userId }, set);
    }
    return this.findPrompt(ctx, promptId);
  }

  async deletePrompt(ctx: TenantContext, promptId: string): Promise<boolean> {
    if (!isUuid(promptId)) return false;
    const result = await this.prompts.delete({ id: promptId, tenantId: ctx.tenantId, userId: ctx.userId });
    return (result.affected ?? 0) > 0;
  }

  /** Removes everything a (deleted) tenant's users stored. */
  async deleteTenantData(tenantId: string): Promise<void> {
    await this.conversations.delete({ tenantId });
    await this.prompts.delete({ tenantId });
  }
}
