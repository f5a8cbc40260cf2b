import { Inject, Injectable } from '@nestjs/common';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageFunctionToolCall,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { toAsyncIterator } from '../common/rx/to-async-iterator.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { ToolResultMessage } from '../conversations/conversation.types.js';
import { ToolRunner, type ToolOutcome } from '../tools/tool-runner.service.js';
import type { PreparedCompletion } from './prepared-completion.js';
import type { TurnRecorder } from './turn-recorder.js';
import { UpstreamCalls, type LoopCall } from './upstream-calls.js';
import {
  chunk,
  deltaChoice,
  normalizeCompletion,
  toolCallsChunk,
  toolOutputChunk,
  usageChunk,
  type ChunkHead,
} from './wire/chunks.js';
import { ToolCallAccumulator } from './wire/tool-call-accumulator.js';

export const MAX_TOOL_ITERATIONS = 10;
export const MAX_ITERATIONS_NOTE = '[Maximum iterations reached]';

export type ToolEvent =
  | { type: 'text'; value: string }
  | { type: 'tool_call'; value: ChatCompletionMessageFunctionToolCall }
  | { type: 'tool_output'; value: { tool_call_id: string; name: string; output: string } };

/**
 * The tools the client defined itself: sent upstream, never run by Parley. A call to any other
 * name that is not server-side (a name the model made up) is answered with an error output.
 */
function clientToolNames(p: PreparedCompletion): Set<string> {
  const names = new Set<string>();
  for (const tool of p.upstream.tools ?? []) {
    const name =
      tool.type === 'function' ? tool.function.name : tool.type === 'custom' ? tool.custom.name : '';
    if (name && !p.tools.serverSide.has(name)) names.add(name);
  }
  return names;
}

/** Providers send `""` for a call without arguments: it means `{}` (as the streamed path makes it). */
function withArguments(call: ChatCompletionMessageFunctionToolCall): ChatCompletionMessageFunctionToolCall {
  const args = call.function.arguments;
  return typeof args === 'string' && args.trim() !== ''
    ? call
    : { ...call, function: { ...call.function, arguments: '{}' } };
}

/**
 * The iterative tool loop: call the model, run the server-side tools it asks for, give it the
 * results, call again; at most MAX_TOOL_ITERATIONS upstream calls. Calls to tools the client
 * defined end the loop and go back to the client, as OpenAI returns them.
 */
@Injectable()
export class ToolLoop {
  constructor(
    private readonly runner: ToolRunner,
    private readonly upstream: UpstreamCalls,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Streaming: deltas, one consolidated tool_calls chunk, tool_output chunks, ..., the final chunk. */
  async *stream(
    p: PreparedCompletion,
    recorder: TurnRecorder,
    signal: AbortSignal,
  ): AsyncGenerator<ChatCompletionChunk> {
    const head: ChunkHead = { id: p.id, created: p.created, model: p.target.model.id };
    const messages = [...p.upstream.messages];
    const clientTools = clientToolNames(p);
    let callIndex = 0;
    let roleSent = false;
    for (let iteration = 1; ; iteration++) {
      if (iteration > 1) recorder.startCall();
      const calls = new ToolCallAccumulator();
      let finishReason: string | null = null;
      const source = toAsyncIterator(this.upstream.chunks(p, messages, signal, this.loopCall(iteration)));
      try {
        for (;;) {
          const next = await source.next();
          if (next.done) break;
          const upstreamChunk = next.value;
          recorder.providerResponseId = upstreamChunk.id;
          recorder.addUsage(upstreamChunk.usage);
          const choice = upstreamChunk.choices[0];
          if (!choice) continue;
          calls.add(choice.delta.tool_calls);
          if (choice.finish_reason) finishReason = choice.finish_reason;
          const text = choice.delta.content;
          if (typeof text === 'string' && text.length > 0) {
            recorder.addText(text);
            yield chunk(head, [
              deltaChoice(roleSent ? { content: text } : { role: 'assistant', content: text }),
            ]);
            roleSent = true;
          }
        }
      } finally {
        await source.return();
      }

      const requested = calls.finish((i) => `call_${p.id.slice(-8)}_${iteration}_${i}`);
      if (requested.length === 0 || finishReason === 'length' || finishReason === 'content_filter') {
        if (!roleSent) yield chunk(head, [deltaChoice({ role: 'assistant', content: '' })]);
        yield chunk(head, [
          deltaChoice({}, (finishReason ?? 'stop') as ChatCompletionChunk.Choice['finish_reason']),
        ]);
        recorder.finishReason = finishReason ?? 'stop';
        break;
      }
      const indexed = requested.map((call) => ({
        index: callIndex++,
        id: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
      }));
      const callsChunk = toolCallsChunk(head, indexed);
      // A turn that starts with tool calls still says who speaks (SDK stream helpers need a role).
      if (!roleSent) callsChunk.choices[0].delta = { role: 'assistant', ...callsChunk.choices[0].delta };
      roleSent = true;
      if (requested.some((call) => clientTools.has(call.function.name))) {
        // A client-defined tool: the client runs it, so the turn ends here.
        yield callsChunk;
        yield chunk(head, [deltaChoice({}, 'tool_calls')]);
        recorder.toolCalls = requested;
        recorder.finishReason = 'tool_calls';
        break;
      }
      if (iteration >= MAX_TOOL_ITERATIONS) {
        recorder.addText(MAX_ITERATIONS_NOTE);
        yield chunk(head, [deltaChoice({ content: MAX_ITERATIONS_NOTE })]);
        yield chunk(head, [deltaChoice({}, 'stop')]);
        recorder.finishReason = 'stop';
        break;
      }
      yield callsChunk;
      const outcomes = await this.runTools(p, requested, signal);
      for (const outcome of outcomes) {
        yield toolOutputChunk(head, {
          tool_call_id: outcome.toolCallId,
          name: outcome.name,
          output: outcome.output,
        });
      }
      this.appendIteration(messages, recorder, requested, outcomes, p.id);
    }
    if (p.request.includeUsage && recorder.usage) yield usageChunk(head, recorder.usage);
  }

  /** Non-streaming: the final completion, plus the loop's events in order. */
  async complete(
    p: PreparedCompletion,
    recorder: TurnRecorder,
    signal: AbortSignal,
  ): Promise<{ completion: ChatCompletion; toolEvents: ToolEvent[] }> {
    const messages = [...p.upstream.messages];
    const clientTools = clientToolNames(p);
    const events: ToolEvent[] = [];
    for (let iteration = 1; ; iteration++) {
      if (iteration > 1) recorder.startCall();
      const completion = await this.upstream.complete(p, messages, signal, this.loopCall(iteration));
      recorder.providerResponseId = completion.id;
      recorder.addUsage(completion.usage);
      const choice = completion.choices[0];
      const message = choice?.message;
      const text = message?.content ?? '';
      const requested = (message?.tool_calls ?? [])
        .filter((c): c is ChatCompletionMessageFunctionToolCall => c.type === 'function')
        .map(withArguments);
      if (text) events.push({ type: 'text', value: text });
      const finish = (
        content: string,
        toolCalls: ChatCompletionMessageFunctionToolCall[],
        finishReason: ChatCompletion.Choice['finish_reason'],
      ) => {
        recorder.addText(content);
        recorder.toolCalls = toolCalls;
        recorder.finishReason = finishReason;
        const final: ChatCompletion = {
          ...completion,
          usage: recorder.usage,
          choices: [
            {
              index: 0,
              logprobs: null,
              finish_reason: finishReason,
              message: {
                role: 'assistant',
                content,
                refusal: message?.refusal ?? null,
                ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
              },
            },
          ],
        };
        return { completion: normalizeCompletion(final, p.id), toolEvents: events };
      };
      if (
        requested.length === 0 ||
        choice?.finish_reason === 'length' ||
        choice?.finish_reason === 'content_filter'
      ) {
        return finish(text, [], choice?.finish_reason ?? 'stop');
      }
      if (requested.some((call) => clientTools.has(call.function.name))) {
        for (const call of requested) events.push({ type: 'tool_call', value: call });
        return finish(text, requested, 'tool_calls');
      }
      if (iteration >= MAX_TOOL_ITERATIONS) {
        // The note ends the events as it ends the answer (a stream sends it as its last delta).
        events.push({ type: 'text', value: MAX_ITERATIONS_NOTE });
        return finish(`${text}${MAX_ITERATIONS_NOTE}`, [], 'stop');
      }
      for (const call of requested) events.push({ type: 'tool_call', value: call });
      recorder.addText(text);
      const outcomes = await this.runTools(p, requested, signal);
      for (const o of outcomes)
        events.push({
          type: 'tool_output',
          value: { tool_call_id: o.toolCallId, name: o.name, output: o.output },
        });
      this.appendIteration(messages, recorder, requested, outcomes, p.id);
    }
  }

  private runTools(
    p: PreparedCompletion,
    calls: ChatCompletionMessageFunctionToolCall[],
    signal: AbortSignal,
  ): Promise<ToolOutcome[]> {
    const { tenantId, userId } = p.ctx;
    return Promise.all(
      calls.map((call) =>
        this.runner.run(
          { id: call.id, name: call.function.name, arguments: call.function.arguments },
          // Only the tools this request enabled run; any other name is "no such tool".
          { tenantId, userId, signal, enabled: p.tools.serverSide },
        ),
      ),
    );
  }

  /** The model's tool calls and their results join the history for the next call, and the record. */
  private appendIteration(
    messages: ChatCompletionMessageParam[],
    recorder: TurnRecorder,
    calls: ChatCompletionMessageFunctionToolCall[],
    outcomes: ToolOutcome[],
    completionId: string,
  ): void {
    const text = recorder.content;
    messages.push({ role: 'assistant', content: text || null, tool_calls: calls });
    const toolMessages: ToolResultMessage[] = outcomes.map((o) => ({
      toolCallId: o.toolCallId,
      name: o.name,
      content: o.output,
      status: o.status,
    }));
    for (const m of toolMessages)
      messages.push({ role: 'tool', tool_call_id: m.toolCallId, content: m.content });
    recorder.closeStep({
      assistant: { content: text || null, toolCalls: calls, status: 'complete', completionId },
      toolMessages,
    });
  }

  /** Every call of the loop is given up on after TOOL_INACTIVITY_MS of silence (`upstream_timeout`). */
  private loopCall(iteration: number): LoopCall {
    return { silenceMs: this.config.toolInactivityMs, afterToolOutputs: iteration > 1 };
  }
}
