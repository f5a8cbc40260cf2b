import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { firstUserText } from '../conversations/history.js';
import { BalanceService } from '../quota/balance/balance.service.js';
import { countPromptTokens, countTextTokens } from './context-window.js';
import type { PreparedCompletion } from './prepared-completion.js';
import type { TurnRecorder } from './turn-recorder.js';

export type TurnStatus = 'complete' | 'incomplete';

/**
 * After an answer: store the assistant turn (also when it was cut short), settle the reserved
 * tokens to what was used, and name a new conversation. Off the answer's path: nothing here is
 * awaited by the client, and nothing here throws.
 */
@Injectable()
export class CompletionFinalizer {
  private readonly logger = new Logger('Completions');

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

  private settle(p: PreparedCompletion, recorder: TurnRecorder): void {
    const usage = recorder.usage;
    if (usage) {
      void this.balances.settle(p.reservation, usage.total_tokens, { model: p.target.model.id, usage });
    } else if (!recorder.producedOutput) {
      void this.balances.release(p.reservation);
    } else {
      // An aborted stream brings no usage: count what was sent and what came back.
      const counted = countPromptTokens(p.upstream) + countTextTokens(recorder.producedText);
      void this.balances.settle(p.reservation, counted, { model: p.target.model.id, counted: true });
    }
  }

  private store(p: PreparedCompletion, recorder: TurnRecorder, status: TurnStatus): void {
    const turn = p.conversation!;
    const write = this.conversations.completeTurn(p.ctx, turn.conversation.id, {
      assistant: {
        id: turn.assistantMessageId,
        content: recorder.content || null,
        toolCalls: recorder.toolCalls.length > 0 ? recorder.toolCalls : undefined,
        status,
        providerResponseId: recorder.providerResponseId ?? null,
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

  /** A short, unbilled call to the same provider; a failure leaves the title empty. */
  private nameConversation(p: PreparedCompletion): void {
    const text = firstUserText(p.request.upstream.messages);
    if (!text) return;
    void this.conversations.generateTitleLater(
      p.ctx,
      p.conversation!.conversation.id,
      text,
      async (prompt) => {
        const completion = await p.adapter.complete(
          { model: p.target.model.id, messages: prompt, max_tokens: 24 },
          p.target,
          AbortSignal.timeout(this.config.upstreamTimeoutMs),
        );
        return completion.choices[0]?.message.content ?? '';
      },
    );
  }
}
