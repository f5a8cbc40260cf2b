import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type {
  Response,
  ResponseFunctionToolCall,
  ResponseOutputItem,
  ResponseOutputMessage,
  ResponseStreamEvent,
} from 'openai/resources/responses/responses';
import { ParleyError } from '../../common/errors/parley-error.js';
import {
  chatFinishReason,
  type ChatFinishReason,
  responseFailure,
  toChatUsage,
} from './responses-response.mapper.js';

type Delta = ChatCompletionChunk.Choice.Delta;

interface CallState {
  readonly index: number;
  /** The arguments already sent to the client. */
  args: string;
}

/**
 * Responses stream events -> `chat.completion.chunk`s, for one stream. No Nest, no I/O.
 *
 * `map()` returns the chunks an event stands for (often none); it throws a ParleyError for an
 * `error` or `response.failed` event. `finish()` is called when the upstream stream ends and
 * throws `upstream_stream_truncated` when it ended without `response.completed`/`.incomplete`.
 *
 * Order: a role chunk (on `response.created`, else before the first content), content, refusal
 * and tool call deltas as they come, then a final chunk with `finish_reason` and a usage chunk
 * (`choices: []`), which is always emitted when the provider reports usage: the caller strips it
 * for a client that did not ask. The `*.done` events only fill in what the deltas did not carry,
 * so nothing is sent twice.
 */
export class ResponsesStreamMapper {
  private id = '';
  private created: number | undefined;
  private roleSent = false;
  private terminal = false;
  /** Whether any content, refusal or tool call went out. */
  private sawOutput = false;
  private sawFunctionCall = false;
  private usageValue: CompletionUsage | undefined;
  private nextCallIndex = 0;
  private readonly callsByItem = new Map<string, CallState>();
  private readonly callsByOutputIndex = new Map<number, CallState>();
  /** Text and refusal already sent, by `<kind>:<item id>:<content index>`. */
  private readonly sentText = new Map<string, string>();

  constructor(private readonly options: { model: string }) {}

  /** The provider's response id (`resp_...`), once an event carried it. */
  get responseId(): string | undefined {
    return this.id === '' ? undefined : this.id;
  }

  /** Usage in Chat Completions shape, once the terminal event reported it. */
  get usage(): CompletionUsage | undefined {
    return this.usageValue;
  }

  /** Whether the terminal event was seen: later events are ignored. */
  get done(): boolean {
    return this.terminal;
  }

  map(event: ResponseStreamEvent): ChatCompletionChunk[] {
    if (this.terminal) return [];
    switch (event.type) {
      case 'response.created':
        this.remember(event.response);
        return this.ensureRole();
      case 'response.queued':
      case 'response.in_progress':
        this.remember(event.response);
        return [];
      case 'response.output_text.delta':
        return this.textDelta('content', event.item_id, event.content_index, event.delta);
      case 'response.output_text.done':
        return this.textRemainder('content', event.item_id, event.content_index, event.text);
      case 'response.refusal.delta':
        return this.textDelta('refusal', event.item_id, event.content_index, event.delta);
      case 'response.refusal.done':
        return this.textRemainder('refusal', event.item_id, event.content_index, event.refusal);
      case 'response.content_part.done':
        if (event.part.type === 'output_text') {
          return this.textRemainder('content', event.item_id, event.content_index, event.part.text);
        }
        if (event.part.type === 'refusal') {
          return this.textRemainder('refusal', event.item_id, event.content_index, event.part.refusal);
        }
        return [];
      case 'response.output_item.added':
        return event.item.type === 'function_call' ? this.announceCall(event.item, event.output_index) : [];
      case 'response.function_call_arguments.delta':
        return this.argumentsDelta(event.item_id, event.output_index, event.delta);
      case 'response.function_call_arguments.done': {
        const call = this.findCall(event.item_id, event.output_index);
        // An unannounced call is announced, arguments included, by its `output_item.done`.
        return call ? this.argumentsRemainder(call, event.arguments) : [];
      }
      case 'response.output_item.done':
        return this.itemDone(event.item, event.output_index);
      case 'response.completed':
        return this.finishWith(event.response, 'completed');
      case 'response.incomplete':
        return this.finishWith(event.response, 'incomplete');
      case 'response.failed':
        throw (
          responseFailure({ status: 'failed', error: event.response.error }) ??
          new ParleyError('upstream_error', 'The provider failed.')
        );
      case 'error':
        throw new ParleyError('upstream_error', `The provider failed: ${event.message}`);
      // Nothing for a Chat Completions client: empty part openings, annotations, reasoning, audio
      // output, and server-side tools (never requested: the request mapper takes function tools only).
      case 'response.content_part.added':
      case 'response.output_text.annotation.added':
      case 'response.reasoning_summary_part.added':
      case 'response.reasoning_summary_part.done':
      case 'response.reasoning_summary_text.delta':
      case 'response.reasoning_summary_text.done':
      case 'response.reasoning_text.delta':
      case 'response.reasoning_text.done':
      case 'response.audio.delta':
      case 'response.audio.done':
      case 'response.audio.transcript.delta':
      case 'response.audio.transcript.done':
      case 'response.custom_tool_call_input.delta':
      case 'response.custom_tool_call_input.done':
      case 'response.code_interpreter_call_code.delta':
      case 'response.code_interpreter_call_code.done':
      case 'response.code_interpreter_call.completed':
      case 'response.code_interpreter_call.in_progress':
      case 'response.code_interpreter_call.interpreting':
      case 'response.file_search_call.completed':
      case 'response.file_search_call.in_progress':
      case 'response.file_search_call.searching':
      case 'response.image_generation_call.completed':
      case 'response.image_generation_call.generating':
      case 'response.image_generation_call.in_progress':
      case 'response.image_generation_call.partial_image':
      case 'response.mcp_call_arguments.delta':
      case 'response.mcp_call_arguments.done':
      case 'response.mcp_call.completed':
      case 'response.mcp_call.failed':
      case 'response.mcp_call.in_progress':
      case 'response.mcp_list_tools.completed':
      case 'response.mcp_list_tools.failed':
      case 'response.mcp_list_tools.in_progress':
      case 'response.web_search_call.completed':
      case 'response.web_search_call.in_progress':
      case 'response.web_search_call.searching':
        return [];
      default:
        // An event this SDK version does not know: ignored, like the ones above.
        return [];
    }
  }

  /** Call when the upstream stream ended. */
  finish(): void {
    if (!this.terminal) {
      throw new ParleyError(
        'upstream_stream_truncated',
        'The provider ended the stream before the response was complete.',
      );
    }
  }

  // -----------------------------------------------------------------------------------------------

  private remember(response: Pick<Response, 'id' | 'created_at'>): void {
    if (response.id) this.id = response.id;
    if (this.created === undefined && typeof response.created_at === 'number') {
      this.created = Math.floor(response.created_at);
    }
  }

  private chunk(delta: Delta, finishReason: ChatFinishReason | null = null): ChatCompletionChunk {
    return {
      ...this.envelope(),
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    };
  }

  private envelope(): Omit<ChatCompletionChunk, 'choices'> {
    return {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created ?? Math.floor(Date.now() / 1000),
      model: this.options.model,
    };
  }

  private ensureRole(): ChatCompletionChunk[] {
    if (this.roleSent) return [];
    this.roleSent = true;
    return [this.chunk({ role: 'assistant', content: '' })];
  }

  /** An output chunk, preceded by the role chunk when that has not gone out yet. */
  private output(delta: Delta): ChatCompletionChunk[] {
    this.sawOutput = true;
    return [...this.ensureRole(), this.chunk(delta)];
  }

  private textDelta(
    kind: 'content' | 'refusal',
    itemId: string,
    contentIndex: number,
    delta: string,
  ): ChatCompletionChunk[] {
    if (delta === '') return [];
    const key = `${kind}:${itemId}:${contentIndex}`;
    this.sentText.set(key, (this.sentText.get(key) ?? '') + delta);
    return this.output(kind === 'content' ? { content: delta } : { refusal: delta });
  }

  /** The part of a `done` text the deltas did not carry (all of it when there were none). */
  private textRemainder(
    kind: 'content' | 'refusal',
    itemId: string,
    contentIndex: number,
    full: string,
  ): ChatCompletionChunk[] {
    const sent = this.sentText.get(`${kind}:${itemId}:${contentIndex}`) ?? '';
    return this.textDelta(kind, itemId, contentIndex, remainder(sent, full));
  }

  private findCall(itemId: string | undefined, outputIndex: number): CallState | undefined {
    return (
      (itemId !== undefined ? this.callsByItem.get(itemId) : undefined) ??
      this.callsByOutputIndex.get(outputIndex)
    );
  }

  /** The first delta of a tool call: index, id, name (and any arguments the item already holds). */
  private announceCall(item: ResponseFunctionToolCall, outputIndex: number): ChatCompletionChunk[] {
    if (this.findCall(item.id, outputIndex)) return [];
    const args = item.arguments ?? '';
    const call: CallState = { index: this.nextCallIndex++, args };
    if (item.id !== undefined) this.callsByItem.set(item.id, call);
    this.callsByOutputIndex.set(outputIndex, call);
    this.sawFunctionCall = true;
    return this.output({
      tool_calls: [
        {
          index: call.index,
          id: item.call_id,
          type: 'function',
          function: { name: item.name, arguments: args },
        },
      ],
    });
  }

  private argumentsDelta(itemId: string, outputIndex: number, delta: string): ChatCompletionChunk[] {
    const call = this.findCall(itemId, outputIndex);
    // Without `output_item.added` there is no call id or name to send yet; `output_item.done` will
    // announce the call with its full arguments.
    if (!call || delta === '') return [];
    call.args += delta;
    return this.output({ tool_calls: [{ index: call.index, function: { arguments: delta } }] });
  }

  private argumentsRemainder(call: CallState, full: string): ChatCompletionChunk[] {
    const rest = remainder(call.args, full);
    if (rest === '') return [];
    call.args += rest;
    return this.output({ tool_calls: [{ index: call.index, function: { arguments: rest } }] });
  }

  private itemDone(item: ResponseOutputItem, outputIndex: number): ChatCompletionChunk[] {
    if (item.type === 'function_call') {
      const call = this.findCall(item.id, outputIndex);
      return call ? this.argumentsRemainder(call, item.arguments) : this.announceCall(item, outputIndex);
    }
    if (item.type === 'message') return this.messageRemainder(item);
    return [];
  }

  private messageRemainder(item: ResponseOutputMessage): ChatCompletionChunk[] {
    return item.content.flatMap((part, contentIndex) =>
      part.type === 'output_text'
        ? this.textRemainder('content', item.id, contentIndex, part.text)
        : this.textRemainder('refusal', item.id, contentIndex, part.refusal),
    );
  }

  private finishWith(response: Response, status: 'completed' | 'incomplete'): ChatCompletionChunk[] {
    this.remember(response);
    const chunks: ChatCompletionChunk[] = [];
    // A provider that streams nothing but the final response: its output is the answer. When
    // anything was streamed, the events were the answer (their item ids need not match the final
    // output's, so filling in from it could send things twice).
    if (!this.sawOutput) {
      (response.output ?? []).forEach((item, i) => chunks.push(...this.itemDone(item, i)));
    }
    chunks.push(...this.ensureRole());
    chunks.push(
      this.chunk(
        {},
        chatFinishReason({ status, incomplete_details: response.incomplete_details }, this.sawFunctionCall),
      ),
    );
    if (response.usage) {
      this.usageValue = toChatUsage(response.usage);
      chunks.push({ ...this.envelope(), choices: [], usage: this.usageValue });
    }
    this.terminal = true;
    return chunks;
  }
}

/** What `full` adds to `sent`; nothing when `full` does not continue what was sent. */
function remainder(sent: string, full: string): string {
  return full.length > sent.length && full.startsWith(sent) ? full.slice(sent.length) : '';
}
