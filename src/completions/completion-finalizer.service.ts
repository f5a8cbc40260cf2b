import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { firstUserText } from '../conversations/history.js';
import { BalanceService } from '../quota/balance/balance.service.js';
import { countPromptTokens, countTextTokens } from './context-window.js';
import { keepsResponse, type PreparedCompletion } from './prepared-completion.js';
import type { TurnRecorder } from './turn-recorder.js';

export type TurnStatus = 'complete' | 'incomplete';

const MAX_TITLES_IN_FLIGHT = 16;

/**
 * After an answer: store the assistant turn (also when it was cut short), settle the reserved
 * tokens to what was used, and name a new conversation. Off the answer's path: nothing here is
 * awaited by the client, and nothing here throws.
 */
@Injectable()
export class CompletionFinalizer {
  private readonly logger = new Logger('Completions');
  private titlesInFlight = 0;

  constructor(
    private readonly conversations: ConversationsService,
    private readonly balances: BalanceService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  finish(p: PreparedCompletion, recorder: TurnRecorder, status: TurnStatus): void {
    recorder.finishPendingToolCalls();
    this.settle(p, recorder);
    if (p.conversation) this.store(p, recorder, status);
  }

  /**
   * Charges the provider's reported usage; a call cut short before it reported any (an aborted
   * stream or JSON request, a tool loop stopped mid-iteration) is counted by Parley: its prompt and
   * the text it produced. A call that failed before producing anything releases the reservation.
   */
  private settle(p: PreparedCompletion, recorder: TurnRecorder): void {
    const { usage } = recorder;
    if (!usage && !recorder.producedOutput && !recorder.clientGone) {
      void this.balances.release(p.reservation);
      return;
    }
    const counted = recorder.callWithoutUsage
      ? countPromptTokens(p.upstream) + countTextTokens(recorder.textSinceUsage)
      : 0;
    const total = (usage?.total_tokens ?? 0) + counted;
    void this.balances.settle(p.reservation, total, {
      model: p.target.model.id,
      usage,
      counted: counted > 0,
    });
  }

  private store(p: PreparedCompletion, recorder: TurnRecorder, status: TurnStatus): void {
    const turn = p.conversation!;
    // The id the next turn continues from (`previous_response_id`): only an answer that ended and
    // that the provider kept can be continued from; otherwise the next turn sends the whole history.
    const continuable = status === 'complete' && keepsResponse(p.target.provider, p.upstream);
    const write = this.conversations.completeTurn(p.ctx, turn.conversation.id, {
      assistant: {
        id: turn.assistantMessageId,
        content: recorder.content || null,
        toolCalls: recorder.toolCalls.length > 0 ? recorder.toolCalls : undefined,
        status,
        providerResponseId: continuable ? recorder.providerResponseId || null : null,
        usage: recorder.usage ?? null,
        completionId: p.id,
      },
      intermediate: recorder.steps,
    });
    write
      .then(() => {
        if (turn.isNew && status === 'complete' && this.config.conversationTitles) this.nameConversation(p);
      })
      .catch((e: unknown) =>
        this.logger.error(`Could not store the answer of ${p.ctx.tenantId}:${p.id}: ${(e as Error).message}`),
      );
  }

  /**
   * A short, unbilled call to the same provider; a failure leaves the title empty. Titles are best
   * effort: past MAX_TITLES_IN_FLIGHT concurrent calls a conversation stays untitled rather than
   * piling background calls onto a busy provider.
   */
  private nameConversation(p: PreparedCompletion): void {
    const text = firstUserText(p.request.upstream.messages);
    if (!text) return;
    if (this.titlesInFlight >= MAX_TITLES_IN_FLIGHT) {
      this.logger.debug(
        `Too many title calls in flight: conversation ${p.conversation!.conversation.id} stays untitled`,
      );
      return;
    }
    this.titlesInFlight++;
    const done = (): void => {
      this.titlesInFlight--;
    };
    this.conversations
      .generateTitleLater(p.ctx, p.conversation!.conversation.id, text, async (prompt) => {
        const completion = await p.adapter.complete(
          { model: p.target.model.id, messages: prompt, max_tokens: 24 },
          p.target,
          { signal: AbortSignal.timeout(this.config.upstreamTimeoutMs) },
        );
        return completion.choices[0]?.message.content ?? '';
      })
      .then(done, done);
  }
}
