import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { WriteCoalescer } from '../common/batch/write-coalescer.js';
import type { TenantContext } from '../common/context/request-context.js';
import { errorMessage } from '../common/errors/error-message.js';
import { ParleyError } from '../common/errors/parley-error.js';
import { TenantEvents } from '../tenants/tenant-events.service.js';
import { toConversationBlock, toConversationDto, toMessageDto } from './conversation.mapper.js';
import type {
  CompleteTurnInput,
  CompleteTurnResult,
  ConversationBlock,
  ConversationInfo,
  NewMessage,
  StartTurnInput,
  TurnStart,
} from './conversation.types.js';
import {
  ConversationsRepository,
  isUuid,
  type NewConversation,
  type TurnAppend,
  type TurnFields,
} from './conversations.repository.js';
import type {
  ConversationDto,
  ConversationListDto,
  ListConversationsQueryDto,
} from './dto/conversation.dto.js';
import type { MessageListDto } from './dto/message.dto.js';
import { assistantTurnToRows, clientTurnToRows, lastAssistantResponseId, rebuildHistory } from './history.js';
import { withRetry } from './retry.js';
import { chooseSystemPrompt } from './system-prompt-choice.js';
import { buildTitlePrompt, cleanTitle } from './title.js';
import { TurnWriteMarks } from './turn-write-marks.js';

const DEFAULT_PAGE = 20;
/** completeTurn: attempts in all, and the waits between them. */
const STORE_ATTEMPTS = 3;
const STORE_BACKOFF_MS = [200, 1000] as const;
/** Background writes an instance lets pile up before new conversations wait for their own. */
export const MAX_BACKGROUND_WRITES = 256;

function conversationNotFound(): ParleyError {
  return ParleyError.notFound('Conversation');
}

/** Hints with a value, as stored in the conversation's metadata. */
function definedHints(hints: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(hints).filter(([, value]) => value !== undefined));
}

/**
 * Conversations of one user in one tenant: the turn API of the completion path (startTurn,
 * completeTurn, the `_conversation` block, title generation) and the REST operations.
 */
/** What a turn writes on its conversation row. */
function turnFields(
  input: StartTurnInput,
  prompt: { text: string | null; activeId: string | null },
): TurnFields {
  return {
    model: input.model,
    providerId: input.providerId,
    systemPrompt: prompt.text,
    activeSystemPromptId: prompt.activeId,
    toolsEnabled: input.toolsEnabled,
    activeTools: input.activeTools,
    metadata: definedHints(input.hints),
  };
}

/** The turn that starts a conversation: its history is the client's messages, numbered from 1. */
function newConversationStart(
  conversation: ConversationInfo,
  clientRows: readonly NewMessage[],
  userMessageId: string | null,
): TurnStart {
  const rows = clientRows.map((row, index) => ({ ...row, seq: index + 1 }));
  return {
    conversation,
    history: rebuildHistory(conversation.systemPrompt, rows),
    userMessageId,
    seq: conversation.lastSeq,
    lastAssistantResponseId: null,
    isNew: true,
  };
}

@Injectable()
export class ConversationsService implements OnModuleInit {
  private readonly logger = new Logger('Conversations');
  /**
   * Turn writes (completeTurn) under way on this instance, by caller and conversation: the next
   * turn of a conversation waits for them, so that an answer the client already has is in the
   * history it continues from (and before its new messages), even when the write is slow. Every
   * instance also marks them in the shared store (TurnWriteMarks), for a next turn that reaches
   * another instance.
   */
  private readonly pendingWrites = new Map<string, Set<Promise<unknown>>>();
  /**
   * Of those, how many are not done yet. Past MAX_BACKGROUND_WRITES a new conversation's request
   * waits for its own write: when the database falls behind, requests slow to its pace instead of
   * the backlog (and the memory it holds) growing without bound.
   */
  private backgroundWrites = 0;
  /** New conversations' writes: one statement for those that queue up while others are written. */
  private readonly creations = new WriteCoalescer<NewConversation>({
    writeBatch: async (conversations) => {
      await this.repo.createConversations(conversations);
      return conversations.map(() => undefined);
    },
    writeOne: (conversation) => this.createConversation(conversation),
  });
  /** Finished turns' writes: one statement for those that queue up (each conversation's own wait in turn). */
  private readonly appends = new WriteCoalescer<TurnAppend, number[] | null>({
    writeBatch: (appends) => this.repo.appendToConversations(appends),
    writeOne: ({ ctx, conversationId, messages }) => this.repo.appendMessages(ctx, conversationId, messages),
  });

  constructor(
    private readonly repo: ConversationsRepository,
    private readonly tenantEvents: TenantEvents,
    private readonly writeMarks: TurnWriteMarks,
  ) {}

  onModuleInit(): void {
    // No foreign key to tenants: a deleted tenant's conversations and prompts go by tenant_id.
    this.tenantEvents.onChange((change) => {
      if (change.scope !== 'deleted') return;
      this.repo
        .deleteTenantData(change.tenantId)
        .catch((e: unknown) =>
          this.logger.error(
            `Could not remove the conversations of deleted tenant ${change.tenantId}: ${errorMessage(e)}`,
          ),
        );
    });
  }

  /** A fresh message id, e.g. to announce the assistant message's id before `completeTurn` stores it. */
  newMessageId(): string {
    return randomUUID();
  }

  /**
   * Loads the caller's conversation (or creates one: an id that is unknown, someone else's or not
   * a UUID is ignored), settles the system prompt, stores the client's new non-system messages and
   * answers the full upstream history (after the previous turn's write, when it is still under way
   * on this instance). One short transaction (lock, update + insert in one
   * statement, history read) when continuing; a single statement for a new conversation.
   */
  async startTurn(ctx: TenantContext, input: StartTurnInput): Promise<TurnStart> {
    const client = clientTurnToRows(input.newMessages, randomUUID);
    const requestedId =
      input.systemPrompt === undefined && isUuid(input.activeSystemPromptId)
        ? input.activeSystemPromptId
        : null;
    const lastUser = [...client.rows].reverse().find((row) => row.role === 'user') ?? client.rows.at(-1);
    const userMessageId = lastUser?.id ?? null;

    const continuedId = isUuid(input.conversationId) ? input.conversationId : null;
    // The common case, a new conversation with nothing to look up, costs no round trip here.
    if (continuedId === null && requestedId === null) {
      const { start, write } = this.startNewConversation(ctx, input, client, userMessageId);
      // Its outcome is logged where it is made; the request goes on either way, as it would unthrottled.
      if (this.backgroundWrites > MAX_BACKGROUND_WRITES) await write.catch(() => undefined);
      return start;
    }
    if (continuedId !== null) await this.allWritesSettled(ctx, continuedId);
    const run =
      continuedId !== null
        ? this.repo.inTransaction.bind(this.repo)
        : this.repo.withoutTransaction.bind(this.repo);
    return run(async (tx) => {
      const locked = continuedId !== null ? await tx.lockConversation(ctx, continuedId, requestedId) : null;
      const requestedContent = locked
        ? locked.requestedPromptContent
        : requestedId !== null
          ? await tx.promptContent(ctx, requestedId)
          : null;
      const prompt = chooseSystemPrompt({
        explicitText: input.systemPrompt,
        requestedId: input.activeSystemPromptId,
        requestedContent,
        clientSystemText: client.systemText,
        remembered: locked
          ? {
              activeId: locked.conversation.activeSystemPromptId,
              activeContent: locked.activePromptContent,
              text: locked.conversation.systemPrompt,
            }
          : null,
      });
      const fields = turnFields(input, prompt);

      if (locked) {
        const id = locked.conversation.id;
        const conversation = await tx.continueConversation(ctx, id, fields, client.rows);
        if (!conversation) throw new Error(`Conversation ${id} vanished while locked`);
        const rows = await tx.history(ctx, id);
        return {
          conversation,
          history: rebuildHistory(conversation.systemPrompt, rows),
          userMessageId,
          seq: conversation.lastSeq,
          lastAssistantResponseId:
            locked.conversation.providerId === input.providerId ? lastAssistantResponseId(rows) : null,
          isNew: false,
        };
      }

      const identity = { id: randomUUID(), createdAt: new Date() };
      const conversation = await tx.createConversation(ctx, fields, client.rows, identity);
      return newConversationStart(conversation, client.rows, userMessageId);
    });
  }

  /**
   * A new conversation, settled in memory and written in the background (in one statement with the
   * other new conversations that queued up meanwhile; alone and retried when that fails). Whatever
   * reads or extends it on this instance waits for that write first. Answers the turn and the write
   * (which never rejects unobserved: its failure is logged here).
   */
  private startNewConversation(
    ctx: TenantContext,
    input: StartTurnInput,
    client: ReturnType<typeof clientTurnToRows>,
    userMessageId: string | null,
  ): { start: TurnStart; write: Promise<void> } {
    const prompt = chooseSystemPrompt({
      explicitText: input.systemPrompt,
      requestedId: input.activeSystemPromptId,
      requestedContent: null,
      clientSystemText: client.systemText,
      remembered: null,
    });
    const fields = turnFields(input, prompt);
    const identity = { id: randomUUID(), createdAt: new Date() };
    const conversation: ConversationInfo = {
      id: identity.id,
      title: null,
      model: fields.model,
      providerId: fields.providerId,
      activeSystemPromptId: fields.activeSystemPromptId,
      systemPrompt: fields.systemPrompt,
      toolsEnabled: fields.toolsEnabled,
      activeTools: fields.activeTools,
      metadata: fields.metadata,
      lastSeq: client.rows.length,
      createdAt: identity.createdAt,
      updatedAt: identity.createdAt,
    };
    const write = this.creations.write({ ctx, fields, messages: client.rows, identity });
    write.catch((e: unknown) =>
      this.logger.error(`Could not store new conversation ${identity.id}: ${errorMessage(e)}`),
    );
    this.trackWrite(ctx, identity.id, write);
    return { start: newConversationStart(conversation, client.rows, userMessageId), write };
  }

  /** One new conversation, retried; a retry after a lost answer to a committed insert writes nothing. */
  private createConversation(conversation: NewConversation): Promise<void> {
    return withRetry(() => this.repo.createConversations([conversation]), {
      attempts: STORE_ATTEMPTS,
      delaysMs: STORE_BACKOFF_MS,
      onRetry: (e, attempt, delayMs) =>
        this.logger.warn(
          `Storing new conversation ${conversation.identity.id} failed (attempt ${attempt} of ${STORE_ATTEMPTS}), retrying in ${delayMs} ms: ${errorMessage(e)}`,
        ),
    });
  }

  /**
   * Stores the finished turn in order (earlier tool-loop iterations, the final assistant message,
   * its tool results) in one statement and bumps the conversation's `updated_at`. A failed write is
   * retried (3 attempts in all, with backoff) without ever storing the turn twice. Rejects with
   * `not_found` when the conversation is not the caller's (or was deleted meanwhile).
   * Meant to be fired and forgotten: `void svc.completeTurn(...).catch(...)`; the next turn of the
   * conversation (on this instance) waits for it.
   */
  completeTurn(
    ctx: TenantContext,
    conversationId: string,
    input: CompleteTurnInput,
  ): Promise<CompleteTurnResult> {
    // After the conversation's own creation, when that is still under way.
    const write = this.writesSettled(ctx, conversationId).then(() =>
      this.writeTurn(ctx, conversationId, input),
    );
    this.trackWrite(ctx, conversationId, write);
    return write;
  }

  private writeKey(ctx: TenantContext, conversationId: string): string {
    return JSON.stringify([ctx.tenantId, ctx.userId, conversationId]);
  }

  private trackWrite(ctx: TenantContext, conversationId: string, write: Promise<unknown>): void {
    const key = this.writeKey(ctx, conversationId);
    let writes = this.pendingWrites.get(key);
    if (!writes) this.pendingWrites.set(key, (writes = new Set()));
    const pending = writes;
    pending.add(write);
    this.backgroundWrites++;
    const unmark = this.writeMarks.begin(conversationId);
    const done = () => {
      unmark();
      this.backgroundWrites--;
      pending.delete(write);
      if (pending.size === 0 && this.pendingWrites.get(key) === pending) this.pendingWrites.delete(key);
    };
    void write.then(done, done);
  }

  /** Waits for this instance's turn writes to the conversation under way (whatever their outcome). */
  private async writesSettled(ctx: TenantContext, conversationId: string): Promise<void> {
    const writes = this.pendingWrites.get(this.writeKey(ctx, conversationId));
    if (writes) await Promise.allSettled([...writes]);
  }

  /** Waits for the turn writes to the conversation under way here, then for other instances' too. */
  private async allWritesSettled(ctx: TenantContext, conversationId: string): Promise<void> {
    await this.writesSettled(ctx, conversationId);
    if (isUuid(conversationId)) await this.writeMarks.settled(conversationId);
  }

  private async writeTurn(
    ctx: TenantContext,
    conversationId: string,
    input: CompleteTurnInput,
  ): Promise<CompleteTurnResult> {
    const { rows, assistantIndex } = assistantTurnToRows(input, randomUUID);
    const assistantMessageId = rows[assistantIndex].id;
    try {
      return await withRetry(
        async (attempt) => {
          // An earlier attempt may have committed although it looked failed (a lost answer): the
          // rows go in one statement, so a stored final message means the whole turn is stored.
          if (attempt > 1) {
            const seq = await this.repo.messageSeq(ctx, assistantMessageId);
            if (seq !== null) return { assistantMessageId, seq };
          }
          const seqs = await this.appends.write({ ctx, conversationId, messages: rows });
          if (seqs === null) throw conversationNotFound();
          return { assistantMessageId, seq: seqs[assistantIndex] };
        },
        {
          attempts: STORE_ATTEMPTS,
          delaysMs: STORE_BACKOFF_MS,
          retryable: (e) => !(e instanceof ParleyError),
          onRetry: (e, attempt, delayMs) =>
            this.logger.warn(
              `Storing the turn of conversation ${conversationId} failed (attempt ${attempt} of ${STORE_ATTEMPTS}), retrying in ${delayMs} ms: ${errorMessage(e)}`,
            ),
        },
      );
    } catch (e) {
      if (e instanceof ParleyError) {
        this.logger.warn(`Not storing a turn: conversation ${conversationId} is gone (${ctx.tenantId})`);
      } else {
        this.logger.error(
          `Could not store the turn of conversation ${conversationId} (${ctx.tenantId}, completion ${input.assistant.completionId}) after ${STORE_ATTEMPTS} attempts: ${errorMessage(e)}`,
        );
      }
      throw e;
    }
  }

  /** The `_conversation` object of an answer. Pure. */
  conversationBlock(
    conversation: ConversationInfo,
    extra: { userMessageId: string | null; assistantMessageId: string | null; seq: number },
  ): ConversationBlock {
    return toConversationBlock(conversation, extra);
  }

  /**
   * Names the conversation in the background (after the current tick): asks `generate` (a short
   * call to the provider) with a title prompt, cleans the answer and stores it unless the
   * conversation has a title by then. Never rejects: a failure leaves the title empty and is
   * logged. Resolves with the stored title, or null.
   */
  generateTitleLater(
    ctx: TenantContext,
    conversationId: string,
    firstUserText: string,
    generate: (prompt: ChatCompletionMessageParam[]) => Promise<string>,
  ): Promise<string | null> {
    return new Promise((resolve) => {
      setImmediate(() => {
        this.generateTitle(ctx, conversationId, firstUserText, generate).then(resolve, (e: unknown) => {
          this.logger.warn(`Title generation failed for conversation ${conversationId}: ${errorMessage(e)}`);
          resolve(null);
        });
      });
    });
  }

  private async generateTitle(
    ctx: TenantContext,
    conversationId: string,
    firstUserText: string,
    generate: (prompt: ChatCompletionMessageParam[]) => Promise<string>,
  ): Promise<string | null> {
    if (firstUserText.trim() === '') return null;
    const title = cleanTitle(await generate(buildTitlePrompt(firstUserText)));
    if (title === null) {
      this.logger.warn(`Title generation for conversation ${conversationId} gave no usable title`);
      return null;
    }
    return (await this.repo.setTitleIfEmpty(ctx, conversationId, title)) ? title : null;
  }

  async list(ctx: TenantContext, query: ListConversationsQueryDto): Promise<ConversationListDto> {
    if (query.after !== undefined && !(await this.repo.conversationExists(ctx, query.after))) {
      throw ParleyError.invalid('after', 'after must be the id of one of your conversations');
    }
    const page = await this.repo.listConversations(ctx, query.limit ?? DEFAULT_PAGE, query.after);
    return { object: 'list', data: page.rows.map(toConversationDto), has_more: page.hasMore };
  }

  async get(ctx: TenantContext, conversationId: string): Promise<ConversationDto> {
    await this.allWritesSettled(ctx, conversationId);
    const conversation = await this.repo.findConversation(ctx, conversationId);
    if (!conversation) throw conversationNotFound();
    return toConversationDto(conversation);
  }

  async rename(ctx: TenantContext, conversationId: string, title: string): Promise<ConversationDto> {
    const conversation = await this.repo.renameConversation(ctx, conversationId, title);
    if (!conversation) throw conversationNotFound();
    return toConversationDto(conversation);
  }

  async delete(ctx: TenantContext, conversationId: string): Promise<void> {
    if (!(await this.repo.deleteConversation(ctx, conversationId))) throw conversationNotFound();
  }

  async listMessages(ctx: TenantContext, conversationId: string): Promise<MessageListDto> {
    await this.allWritesSettled(ctx, conversationId);
    // Two reads, so that a conversation without messages answers an empty list, not 404.
    if (!(await this.repo.conversationExists(ctx, conversationId))) throw conversationNotFound();
    const rows = await this.repo.listMessages(ctx, conversationId);
    return { object: 'list', data: rows.map(toMessageDto) };
  }
}
