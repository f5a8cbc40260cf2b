import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageFunctionToolCall,
} from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type { ToolLoopStep } from '../conversations/conversation.types.js';
import { addUsage } from './wire/chunks.js';
import { ToolCallAccumulator } from './wire/tool-call-accumulator.js';

/**
 * What one completion produced, gathered while it is answered, so that it can be stored and
 * charged afterwards, also when it was cut short.
 */
export class TurnRecorder {
  /** The final assistant message's text so far. */
  content = '';
  /** Every text the model produced across iterations (to count tokens when no usage came). */
  producedText = '';
  /** Earlier tool-loop iterations: assistant tool calls and their results. */
  readonly steps: ToolLoopStep[] = [];
  /** Tool calls returned to the client (client-defined tools). */
  toolCalls: ChatCompletionMessageFunctionToolCall[] = [];
  usage?: CompletionUsage;
  providerResponseId?: string;
  finishReason?: string;
  private readonly pending = new ToolCallAccumulator();

  get producedOutput(): boolean {
    return (
      this.producedText.length > 0 ||
      this.steps.length > 0 ||
      this.pending.size > 0 ||
      this.toolCalls.length > 0
    );
  }

  /**
   * The client went away before the answer ended (a JSON request's connection closed, a stream
   * nobody reads any more): the provider has the prompt, so the call is charged, not released.
   */
  clientGone = false;
  /** An upstream call is under way and has not reported its usage yet (each recorder starts with one). */
  callWithoutUsage = true;
  /** Text produced since the last usage report: what an unreported call still has to be charged for. */
  textSinceUsage = '';

  /** The tool loop's next upstream call. */
  startCall(): void {
    this.callWithoutUsage = true;
    this.textSinceUsage = '';
  }

  addUsage(usage: CompletionUsage | null | undefined): void {
    if (!usage) return;
    this.usage = addUsage(this.usage, usage);
    this.callWithoutUsage = false;
    this.textSinceUsage = '';
  }

  addText(text: string): void {
    this.content += text;
    this.producedText += text;
    this.textSinceUsage += text;
  }

  /** An upstream chunk of the plain path, before it is rewritten for the client. */
  observeChunk(chunk: ChatCompletionChunk): void {
    // The first chunks of a Responses stream may come before the provider named the response.
    this.providerResponseId ||= chunk.id;
    this.addUsage(chunk.usage);
    for (const choice of chunk.choices) {
      if (choice.index !== 0) continue;
      if (typeof choice.delta.content === 'string') this.addText(choice.delta.content);
      this.pending.add(choice.delta.tool_calls);
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
    }
  }

  /** A whole upstream completion (JSON path). */
  observeCompletion(completion: ChatCompletion): void {
    this.providerResponseId ??= completion.id;
    this.addUsage(completion.usage);
    const choice = completion.choices[0];
    if (!choice) return;
    if (choice.message.content) this.addText(choice.message.content);
    this.toolCalls = (choice.message.tool_calls ?? []).filter(
      (c): c is ChatCompletionMessageFunctionToolCall => c.type === 'function',
    );
    this.finishReason = choice.finish_reason;
  }

  /** Client tool calls gathered from the plain stream. */
  finishPendingToolCalls(): void {
    if (this.pending.size > 0) this.toolCalls = this.pending.finish((i) => `call_${i}`);
  }

  /** Starts the next tool-loop iteration: the current text belonged to a step. */
  closeStep(step: ToolLoopStep): void {
    this.steps.push(step);
    this.content = '';
  }
}
