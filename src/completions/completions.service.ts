import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { concat, defer, EMPTY, filter, finalize, from, map, of, tap, type Observable } from 'rxjs';
import type { TenantContext } from '../common/context/request-context.js';
import { beforeFirst } from '../common/rx/before-first.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { ConversationBlock } from '../conversations/conversation.types.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { AdapterRegistry } from '../providers/adapter-registry.service.js';
import type { UpstreamChatRequest } from '../providers/provider-adapter.js';
import { ProviderCatalogService } from '../providers/provider-catalog.service.js';
import type { CompletionTarget } from '../providers/provider.types.js';
import { BalanceService } from '../quota/balance/balance.service.js';
import { isTokenQuotaEnforced } from '../quota/quota-settings.js';
import type { Admission } from '../quota/rate-limit/admission.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import { ToolRegistry } from '../tools/tool-registry.service.js';
import { CompletionFinalizer, type TurnStatus } from './completion-finalizer.service.js';
import { checkContextWindow, type PromptSize } from './context-window.js';
import { keepsResponse, type PreparedCompletion } from './prepared-completion.js';
import { ToolLoop, type ToolEvent } from './tool-loop.js';
import { TurnRecorder } from './turn-recorder.js';
import { UpstreamCalls } from './upstream-calls.js';
import { validateChatRequest } from './wire/chat-request.validator.js';
import { conversationChunk, normalizeCompletion, type ChunkHead } from './wire/chunks.js';
import { createStreamRewriter } from './wire/stream-rewriter.js';
import { applySystemPrompt } from './wire/system-prompt.js';

/** Request headers Parley reads besides the body. */
export interface CompletionHeaders {
  conversationId?: string;
  providerId?: string;
}

/** The JSON answer: a chat.completion, with Parley's extras when they apply. */
export type CompletionAnswer = ChatCompletion & {
  tool_events?: ToolEvent[];
  _conversation?: ConversationBlock;
};

export function newCompletionId(): string {
  // randomUUID draws from a cached entropy pool; randomBytes would cost a syscall per request.
  return `chatcmpl-${randomUUID().replaceAll('-', '')}`;
}

/** Drops reasoning controls the model does not support (valid values only reach here). */
function dropUnsupportedControls(
  request: UpstreamChatRequest,
  target: CompletionTarget,
): UpstreamChatRequest {
  const { reasoning, verbosity } = target.model.capabilities;
  if (
    (reasoning || request.reasoning_effort === undefined) &&
    (verbosity || request.verbosity === undefined)
  ) {
    return request;
  }
  const copy = { ...request };
  if (!reasoning) delete copy.reasoning_effort;
  if (!verbosity) delete copy.verbosity;
  return copy;
}

/**
 * A completion, in the contract's order: validate, resolve model and provider, expand tools,
 * check the context window, log, load the conversation, reserve tokens; then answer as JSON or
 * as a chunk stream, through the plain path or the tool loop. The rate limit's verdict may come
 * during any of that (Admission): effects wait for it, and a refusal replaces any later error.
 */
@Injectable()
export class CompletionsService {
  private readonly logger = new Logger('Completions');

  constructor(
    private readonly catalog: ProviderCatalogService,
    private readonly adapters: AdapterRegistry,
    private readonly tools: ToolRegistry,
    private readonly conversations: ConversationsService,
    private readonly balances: BalanceService,
    private readonly loop: ToolLoop,
    private readonly upstreamCalls: UpstreamCalls,
    private readonly finalizer: CompletionFinalizer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async prepare(
    ctx: TenantContext,
    tenant: TenantConfig,
    body: unknown,
    headers: CompletionHeaders,
    admission: Admission,
  ): Promise<PreparedCompletion> {
    const request = validateChatRequest(body);
    const target = this.catalog.resolve(tenant, {
      model: request.upstream.model || undefined,
      providerId: request.parley.providerId ?? headers.providerId,
    });
    const expansion = this.tools.expand(request.toolNames, request.upstream.tools ?? []);
    let upstream: UpstreamChatRequest = {
      ...dropUnsupportedControls(request.upstream, target),
      model: target.model.id,
      messages: applySystemPrompt(request.upstream.messages, request.parley.systemPrompt),
    };
    if (expansion.tools.length > 0) upstream.tools = expansion.tools;
    else delete upstream.tools;
    const adapter = this.adapters.forKind(target.provider.kind);
    // A field the provider's wire cannot carry is a 400 now, before anything is stored or reserved.
    adapter.check?.(upstream);
    const contextLength = target.model.contextLength;
    let promptSize = checkContextWindow(upstream, contextLength);

    const id = newCompletionId();
    admission.whenAdmitted(() => {
      for (const warning of request.warnings) this.logger.warn(`${ctx.tenantId}:${id} ${warning}`);
      this.logger.log(`Processing chat completion for ${ctx.tenantId}:${id}`);
    });
    // Reserved tokens and stored turns are effects: they wait for the rate limit's verdict (which a
    // metered tenant's guard already waited for). Without them, only the upstream call waits.
    if (this.config.persistence || isTokenQuotaEnforced(tenant)) await admission.admitted();

    // Tokens are reserved before the turn is stored: a refusal (429 when a concurrent request took
    // the balance since the guard read it, or 503) leaves nothing behind in the conversation. A
    // history that makes the prompt longer extends the reservation once it is known.
    const estimate = (size: PromptSize) =>
      size.promptTokens + (size.completionBudget || Math.max(0, contextLength - size.promptTokens));
    let reservation = await this.balances.reserve(ctx, estimate(promptSize), id);
    let conversation: PreparedCompletion['conversation'];
    if (this.config.persistence) {
      try {
        const turn = await this.conversations.startTurn(ctx, {
          conversationId: request.parley.conversationId ?? headers.conversationId,
          model: target.model.id,
          providerId: target.provider.id,
          systemPrompt: request.parley.systemPrompt,
          activeSystemPromptId: request.parley.activeSystemPromptId,
          toolsEnabled: expansion.serverSide.size > 0,
          activeTools: [...expansion.serverSide],
          hints: { ...request.parley.hints },
          newMessages: request.upstream.messages,
        });
        conversation = { ...turn, assistantMessageId: this.conversations.newMessageId() };
        upstream = { ...upstream, messages: turn.history };
        if (turn.history.length > request.upstream.messages.length) {
          promptSize = checkContextWindow(upstream, contextLength);
          reservation = await this.balances.extend(reservation, estimate(promptSize));
        }
        // A Responses provider that keeps its answers continues from the last one: only the new turn goes.
        // (The last answer's id is only recorded when the provider kept it, on this same provider.)
        if (
          keepsResponse(target.provider, upstream) &&
          turn.lastAssistantResponseId &&
          !upstream.previous_response_id
        ) {
          const system = turn.history[0]?.role === 'system' ? [turn.history[0]] : [];
          const fresh = request.upstream.messages.filter(
            (m) => m.role !== 'system' && m.role !== 'developer',
          );
          upstream = {
            ...upstream,
            previous_response_id: turn.lastAssistantResponseId,
            messages: [...system, ...fresh],
          };
        }
      } catch (e) {
        void this.balances.release(reservation);
        throw e;
      }
    }

    const stream = request.stream ?? tenant.settings.stream_default ?? false;
    return {
      ctx,
      id,
      created: Math.floor(Date.now() / 1000),
      request,
      upstream,
      target,
      adapter,
      stream,
      providerStream: stream && request.parley.providerStream !== false,
      promptSize,
      tools: { serverSide: expansion.serverSide },
      conversation,
      reservation,
      admission,
    };
  }

  async complete(p: PreparedCompletion, signal: AbortSignal): Promise<CompletionAnswer> {
    const recorder = new TurnRecorder();
    let status: TurnStatus = 'incomplete';
    try {
      let answer: CompletionAnswer;
      if (p.tools.serverSide.size > 0) {
        const { completion, toolEvents } = await this.loop.complete(p, recorder, signal);
        answer = { ...completion, tool_events: toolEvents };
      } else {
        const completion = await this.upstreamCalls.complete(p, p.upstream.messages, signal);
        recorder.observeCompletion(completion);
        answer = normalizeCompletion(completion, p.id);
      }
      status = 'complete';
      const block = this.conversationBlock(p, recorder);
      return block ? { ...answer, _conversation: block } : answer;
    } finally {
      recorder.clientGone = status !== 'complete' && signal.aborted;
      this.finalizer.finish(p, recorder, status);
    }
  }

  /**
   * The chunks the client receives, in the contract's order: on the plain path `_conversation`
   * first (released with the upstream's first chunk, so an early failure keeps its status); on
   * the tool path after the final chunk.
   */
  stream(p: PreparedCompletion, signal: AbortSignal): Observable<ChatCompletionChunk> {
    const recorder = new TurnRecorder();
    const head: ChunkHead = { id: p.id, created: p.created, model: p.target.model.id };
    const conversationChunkNow = (): ChatCompletionChunk | undefined => {
      const block = this.conversationBlock(p, recorder);
      return block ? conversationChunk(head, block) : undefined;
    };
    let answer$: Observable<ChatCompletionChunk>;
    if (p.tools.serverSide.size > 0) {
      const conversation$ = defer(() => {
        const chunk = conversationChunkNow();
        return chunk ? of(chunk) : EMPTY;
      });
      answer$ = concat(from(this.loop.stream(p, recorder, signal)), conversation$);
    } else {
      const rewrite = createStreamRewriter({ id: p.id, includeUsage: p.request.includeUsage });
      answer$ = this.upstreamCalls.chunks(p, p.upstream.messages, signal).pipe(
        tap((chunk) => recorder.observeChunk(chunk)),
        map(rewrite),
        filter((chunk): chunk is ChatCompletionChunk => chunk !== null),
        beforeFirst(conversationChunkNow),
      );
    }
    // Finalized with neither: unsubscribed, because nobody reads the stream any more.
    let end: 'complete' | 'error' | undefined;
    return answer$.pipe(
      tap({ complete: () => (end = 'complete'), error: () => (end = 'error') }),
      finalize(() => {
        recorder.clientGone = end === undefined;
        this.finalizer.finish(p, recorder, end === 'complete' ? 'complete' : 'incomplete');
      }),
    );
  }

  private conversationBlock(p: PreparedCompletion, recorder: TurnRecorder): ConversationBlock | undefined {
    const turn = p.conversation;
    if (!turn) return undefined;
    // The seq the final assistant message gets: after every tool-loop step this turn stores.
    const stepMessages = recorder.steps.reduce((n, step) => n + 1 + step.toolMessages.length, 0);
    return this.conversations.conversationBlock(turn.conversation, {
      userMessageId: turn.userMessageId,
      assistantMessageId: turn.assistantMessageId,
      seq: turn.seq + stepMessages + 1,
    });
  }
}
