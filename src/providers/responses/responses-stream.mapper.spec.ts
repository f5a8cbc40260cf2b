import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type {
  Response,
  ResponseCompletedEvent,
  ResponseContentPartAddedEvent,
  ResponseContentPartDoneEvent,
  ResponseCreatedEvent,
  ResponseErrorEvent,
  ResponseFailedEvent,
  ResponseFunctionCallArgumentsDeltaEvent,
  ResponseFunctionCallArgumentsDoneEvent,
  ResponseFunctionToolCall,
  ResponseIncompleteEvent,
  ResponseInProgressEvent,
  ResponseOutputItemAddedEvent,
  ResponseOutputItemDoneEvent,
  ResponseOutputMessage,
  ResponseOutputTextAnnotationAddedEvent,
  ResponseReasoningSummaryTextDeltaEvent,
  ResponseRefusalDeltaEvent,
  ResponseRefusalDoneEvent,
  ResponseStreamEvent,
  ResponseTextDeltaEvent,
  ResponseTextDoneEvent,
  ResponseUsage,
  ResponseWebSearchCallInProgressEvent,
} from 'openai/resources/responses/responses';
import { describe, expect, it } from 'vitest';
import { ParleyError } from '../../common/errors/parley-error.js';
import { ResponsesStreamMapper } from './responses-stream.mapper.js';

// -------------------------------------------------------------------------------------------------
// Event fixtures, shaped as the SDK types them (and as the upstream simulator sends them)

const CREATED_AT = 1_700_000_000;
const USAGE: ResponseUsage = {
  input_tokens: 12,
  input_tokens_details: { cached_tokens: 2, cache_write_tokens: 0 },
  output_tokens: 40,
  output_tokens_details: { reasoning_tokens: 25 },
  total_tokens: 52,
};
const CHAT_USAGE: CompletionUsage = {
  prompt_tokens: 12,
  completion_tokens: 40,
  total_tokens: 52,
  prompt_tokens_details: { cached_tokens: 2, cache_write_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 25 },
};

function response(overrides: Partial<Response> = {}): Response {
  return {
    id: 'resp_1',
    object: 'response',
    created_at: CREATED_AT,
    model: 'gpt-upstream',
    status: 'in_progress',
    output: [],
    output_text: '',
    error: null,
    incomplete_details: null,
    instructions: null,
    metadata: null,
    parallel_tool_calls: true,
    temperature: 1,
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    ...overrides,
  };
}

const MSG = 'msg_1';
const textPart = (text: string) => ({ type: 'output_text' as const, text, annotations: [], logprobs: [] });
const messageItem = (
  text: string,
  status: ResponseOutputMessage['status'] = 'completed',
): ResponseOutputMessage => ({
  id: MSG,
  type: 'message',
  role: 'assistant',
  status,
  content: text === '' ? [] : [textPart(text)],
});
const callItem = (n: number, args: string): ResponseFunctionToolCall => ({
  id: `fc_${n}`,
  type: 'function_call',
  call_id: `call_${n}`,
  name: `tool_${n}`,
  arguments: args,
  status: 'completed',
});

const ev = {
  created: (): ResponseCreatedEvent => ({
    type: 'response.created',
    sequence_number: 0,
    response: response(),
  }),
  inProgress: (): ResponseInProgressEvent => ({
    type: 'response.in_progress',
    sequence_number: 1,
    response: response(),
  }),
  messageAdded: (outputIndex = 0): ResponseOutputItemAddedEvent => ({
    type: 'response.output_item.added',
    sequence_number: 2,
    output_index: outputIndex,
    item: messageItem('', 'in_progress'),
  }),
  partAdded: (outputIndex = 0): ResponseContentPartAddedEvent => ({
    type: 'response.content_part.added',
    sequence_number: 3,
    item_id: MSG,
    output_index: outputIndex,
    content_index: 0,
    part: textPart(''),
  }),
  text: (delta: string, outputIndex = 0): ResponseTextDeltaEvent => ({
    type: 'response.output_text.delta',
    sequence_number: 4,
    item_id: MSG,
    output_index: outputIndex,
    content_index: 0,
    delta,
    logprobs: [],
  }),
  textDone: (text: string, outputIndex = 0): ResponseTextDoneEvent => ({
    type: 'response.output_text.done',
    sequence_number: 5,
    item_id: MSG,
    output_index: outputIndex,
    content_index: 0,
    text,
    logprobs: [],
  }),
  partDone: (text: string, outputIndex = 0): ResponseContentPartDoneEvent => ({
    type: 'response.content_part.done',
    sequence_number: 6,
    item_id: MSG,
    output_index: outputIndex,
    content_index: 0,
    part: textPart(text),
  }),
  messageDone: (text: string, outputIndex = 0): ResponseOutputItemDoneEvent => ({
    type: 'response.output_item.done',
    sequence_number: 7,
    output_index: outputIndex,
    item: messageItem(text),
  }),
  refusal: (delta: string): ResponseRefusalDeltaEvent => ({
    type: 'response.refusal.delta',
    sequence_number: 4,
    item_id: MSG,
    output_index: 0,
    content_index: 0,
    delta,
  }),
  refusalDone: (refusal: string): ResponseRefusalDoneEvent => ({
    type: 'response.refusal.done',
    sequence_number: 5,
    item_id: MSG,
    output_index: 0,
    content_index: 0,
    refusal,
  }),
  /** Call `n` (item `fc_n`, id `call_n`, name `tool_n`) at output index `n`. */
  callAdded: (n: number): ResponseOutputItemAddedEvent => ({
    type: 'response.output_item.added',
    sequence_number: 8,
    output_index: n,
    item: { ...callItem(n, ''), status: 'in_progress' },
  }),
  args: (n: number, delta: string): ResponseFunctionCallArgumentsDeltaEvent => ({
    type: 'response.function_call_arguments.delta',
    sequence_number: 9,
    item_id: `fc_${n}`,
    output_index: n,
    delta,
  }),
  argsDone: (n: number, args: string): ResponseFunctionCallArgumentsDoneEvent => ({
    type: 'response.function_call_arguments.done',
    sequence_number: 10,
    item_id: `fc_${n}`,
    output_index: n,
    name: `tool_${n}`,
    arguments: args,
  }),
  callDone: (n: number, args: string): ResponseOutputItemDoneEvent => ({
    type: 'response.output_item.done',
    sequence_number: 11,
    output_index: n,
    item: callItem(n, args),
  }),
  completed: (overrides: Partial<Response> = {}): ResponseCompletedEvent => ({
    type: 'response.completed',
    sequence_number: 12,
    response: response({ status: 'completed', usage: USAGE, ...overrides }),
  }),
  incomplete: (reason: 'max_output_tokens' | 'content_filter'): ResponseIncompleteEvent => ({
    type: 'response.incomplete',
    sequence_number: 12,
    response: response({ status: 'incomplete', incomplete_details: { reason }, usage: USAGE }),
  }),
  failed: (message: string): ResponseFailedEvent => ({
    type: 'response.failed',
    sequence_number: 13,
    response: response({ status: 'failed', error: { code: 'server_error', message } }),
  }),
  error: (message: string): ResponseErrorEvent => ({
    type: 'error',
    sequence_number: 13,
    code: 'server_error',
    message,
    param: null,
  }),
  reasoningSummary: (): ResponseReasoningSummaryTextDeltaEvent => ({
    type: 'response.reasoning_summary_text.delta',
    sequence_number: 3,
    item_id: 'rs_1',
    output_index: 0,
    summary_index: 0,
    delta: 'Thinking about it',
  }),
  webSearch: (): ResponseWebSearchCallInProgressEvent => ({
    type: 'response.web_search_call.in_progress',
    sequence_number: 3,
    item_id: 'ws_1',
    output_index: 0,
  }),
  annotation: (): ResponseOutputTextAnnotationAddedEvent => ({
    type: 'response.output_text.annotation.added',
    sequence_number: 5,
    item_id: MSG,
    output_index: 0,
    content_index: 0,
    annotation_index: 0,
    annotation: { type: 'url_citation', url: 'https://d.test' },
  }),
};

/** A whole text message as OpenAI streams it. */
const textMessage = (pieces: string[], outputIndex = 0): ResponseStreamEvent[] => [
  ev.messageAdded(outputIndex),
  ev.partAdded(outputIndex),
  ...pieces.map((p) => ev.text(p, outputIndex)),
  ev.textDone(pieces.join(''), outputIndex),
  ev.partDone(pieces.join(''), outputIndex),
  ev.messageDone(pieces.join(''), outputIndex),
];

// -------------------------------------------------------------------------------------------------
// Expected chunks, summarised: the delta and finish reason of a choice chunk, or a usage chunk

type Summary =
  | { delta: ChatCompletionChunk.Choice.Delta; finish: ChatCompletionChunk.Choice['finish_reason'] }
  | { usage: CompletionUsage | null | undefined };

const summarize = (chunks: ChatCompletionChunk[]): Summary[] =>
  chunks.map((c) =>
    c.choices.length === 0
      ? { usage: c.usage }
      : { delta: c.choices[0].delta, finish: c.choices[0].finish_reason },
  );

const role: Summary = { delta: { role: 'assistant', content: '' }, finish: null };
const content = (text: string): Summary => ({ delta: { content: text }, finish: null });
const refusal = (text: string): Summary => ({ delta: { refusal: text }, finish: null });
const header = (n: number, index: number, args = ''): Summary => ({
  delta: {
    tool_calls: [
      { index, id: `call_${n}`, type: 'function', function: { name: `tool_${n}`, arguments: args } },
    ],
  },
  finish: null,
});
const args = (index: number, text: string): Summary => ({
  delta: { tool_calls: [{ index, function: { arguments: text } }] },
  finish: null,
});
const finish = (reason: ChatCompletionChunk.Choice['finish_reason']): Summary => ({
  delta: {},
  finish: reason,
});
const usage: Summary = { usage: CHAT_USAGE };

function run(events: ResponseStreamEvent[]): { sut: ResponsesStreamMapper; chunks: ChatCompletionChunk[] } {
  const sut = new ResponsesStreamMapper({ model: 'gpt-test' });
  const chunks = events.flatMap((e) => sut.map(e));
  return { sut, chunks };
}

function thrown(fn: () => void): ParleyError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ParleyError);
    return e as ParleyError;
  }
  throw new Error('expected a throw');
}

// -------------------------------------------------------------------------------------------------

describe(ResponsesStreamMapper.name, () => {
  it.each<[string, ResponseStreamEvent[], Summary[]]>([
    [
      'a text stream (role first, done events add nothing)',
      [ev.created(), ev.inProgress(), ...textMessage(['Hel', 'lo']), ev.completed()],
      [role, content('Hel'), content('lo'), finish('stop'), usage],
    ],
    [
      'two function calls with interleaved argument deltas: stable indexes, done events add nothing',
      [
        ev.created(),
        ev.callAdded(0),
        ev.callAdded(1),
        ev.args(0, '{"a"'),
        ev.args(1, '{"b"'),
        ev.args(0, ':1}'),
        ev.args(1, ':2}'),
        ev.argsDone(0, '{"a":1}'),
        ev.argsDone(1, '{"b":2}'),
        ev.callDone(0, '{"a":1}'),
        ev.callDone(1, '{"b":2}'),
        ev.completed(),
      ],
      [
        role,
        header(0, 0),
        header(1, 1),
        args(0, '{"a"'),
        args(1, '{"b"'),
        args(0, ':1}'),
        args(1, ':2}'),
        finish('tool_calls'),
        usage,
      ],
    ],
    [
      'text, then a call at output index 1 (tool indexes count calls, not output items)',
      [
        ev.created(),
        ...textMessage(['Checking.']),
        ev.callAdded(1),
        ev.args(1, '{}'),
        ev.argsDone(1, '{}'),
        ev.callDone(1, '{}'),
        ev.completed(),
      ],
      [role, content('Checking.'), header(1, 0), args(0, '{}'), finish('tool_calls'), usage],
    ],
    [
      'done events without deltas: what they hold, once',
      [
        ev.created(),
        ev.messageAdded(),
        ev.textDone('Hello'),
        ev.partDone('Hello'),
        ev.messageDone('Hello'),
        ev.callAdded(1),
        ev.argsDone(1, '{"x":1}'),
        ev.callDone(1, '{"x":1}'),
        ev.completed(),
      ],
      [role, content('Hello'), header(1, 0), args(0, '{"x":1}'), finish('tool_calls'), usage],
    ],
    [
      'deltas that stop short: only the missing remainder from the done events',
      [
        ev.created(),
        ev.text('Hel'),
        ev.textDone('Hello'),
        ev.messageDone('Hello'),
        ev.callAdded(1),
        ev.args(1, '{"x"'),
        ev.argsDone(1, '{"x":1}'),
        ev.callDone(1, '{"x":1}'),
        ev.completed(),
      ],
      [
        role,
        content('Hel'),
        content('lo'),
        header(1, 0),
        args(0, '{"x"'),
        args(0, ':1}'),
        finish('tool_calls'),
        usage,
      ],
    ],
    [
      'a call first seen at output_item.done: announced with its arguments',
      [ev.created(), ev.args(0, '{"lost"'), ev.callDone(0, '{"q":1}'), ev.completed()],
      [role, header(0, 0, '{"q":1}'), finish('tool_calls'), usage],
    ],
    [
      'refusal deltas',
      [
        ev.created(),
        ev.messageAdded(),
        ev.refusal('I cannot'),
        ev.refusal(' help.'),
        ev.refusalDone('I cannot help.'),
        ev.completed(),
      ],
      [role, refusal('I cannot'), refusal(' help.'), finish('stop'), usage],
    ],
    [
      'incomplete at the output cap: length',
      [ev.created(), ...textMessage(['Once', ' upon']), ev.incomplete('max_output_tokens')],
      [role, content('Once'), content(' upon'), finish('length'), usage],
    ],
    [
      'incomplete by the content filter: content_filter',
      [ev.created(), ...textMessage(['Well']), ev.incomplete('content_filter')],
      [role, content('Well'), finish('content_filter'), usage],
    ],
    [
      'incomplete inside a function call: length, not tool_calls',
      [ev.created(), ev.callAdded(0), ev.args(0, '{"a":'), ev.incomplete('max_output_tokens')],
      [role, header(0, 0), args(0, '{"a":'), finish('length'), usage],
    ],
    [
      'no response.created: the role chunk goes before the first content',
      [ev.text('Hi'), ev.completed()],
      [role, content('Hi'), finish('stop'), usage],
    ],
    ['an empty answer: role, finish, usage', [ev.created(), ev.completed()], [role, finish('stop'), usage]],
    [
      'only the final event: the answer is taken from its output',
      [ev.completed({ output: [messageItem('All at once.'), callItem(1, '{"z":0}')] })],
      [role, content('All at once.'), header(1, 0, '{"z":0}'), finish('tool_calls'), usage],
    ],
    [
      'events it has no use for (reasoning summaries, web search progress, annotations), ignored',
      [ev.created(), ev.reasoningSummary(), ev.webSearch(), ev.text('A'), ev.annotation(), ev.completed()],
      [role, content('A'), finish('stop'), usage],
    ],
    [
      'events after the terminal one, ignored',
      [ev.created(), ev.text('A'), ev.completed(), ev.text('B'), ev.completed(), ev.error('late')],
      [role, content('A'), finish('stop'), usage],
    ],
    [
      'a final event without usage: no usage chunk',
      [ev.created(), ev.text('A'), ev.completed({ usage: undefined })],
      [role, content('A'), finish('stop')],
    ],
  ])('maps %s', (_name, events, expected) => {
    const { sut, chunks } = run(events);
    expect(summarize(chunks)).toEqual(expected);
    expect(() => sut.finish()).not.toThrow();
  });

  it('puts the response id, its created_at and the model on every chunk, with logprobs null', () => {
    const { sut, chunks } = run([
      ev.created(),
      ev.text('Hi'),
      ev.callAdded(1),
      ev.args(1, '{}'),
      ev.completed(),
    ]);
    expect(sut.responseId).toBe('resp_1');
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({
        id: 'resp_1',
        object: 'chat.completion.chunk',
        created: CREATED_AT,
        model: 'gpt-test',
      });
      for (const choice of chunk.choices) expect(choice).toMatchObject({ index: 0, logprobs: null });
    }
  });

  it('reports usage in chat shape with reasoning and cached tokens, as a chunk with empty choices', () => {
    const { sut, chunks } = run([ev.created(), ev.text('Hi'), ev.completed()]);
    expect(sut.usage).toEqual(CHAT_USAGE);
    expect(chunks.at(-1)).toEqual({
      id: 'resp_1',
      object: 'chat.completion.chunk',
      created: CREATED_AT,
      model: 'gpt-test',
      choices: [],
      usage: CHAT_USAGE,
    });
  });

  it('has no response id or usage before the events carry them', () => {
    const sut = new ResponsesStreamMapper({ model: 'gpt-test' });
    expect([sut.responseId, sut.usage, sut.done]).toEqual([undefined, undefined, false]);
  });

  it.each<[string, ResponseStreamEvent[], string]>([
    [
      'an error event',
      [ev.created(), ev.text('Hal'), ev.error('Overloaded')],
      'The provider failed: Overloaded',
    ],
    [
      'response.failed',
      [ev.created(), ev.failed('The model crashed.')],
      'The provider failed: The model crashed.',
    ],
  ])('throws a 502 upstream_error on %s', (_name, events, message) => {
    const sut = new ResponsesStreamMapper({ model: 'gpt-test' });
    const error = thrown(() => events.forEach((e) => sut.map(e)));
    expect(error).toMatchObject({ code: 'upstream_error', status: 502, message });
  });

  it.each<[string, ResponseStreamEvent[]]>([
    ['no events at all', []],
    ['only response.created', [ev.created(), ev.inProgress()]],
    ['mid-text', [ev.created(), ...textMessage(['Hel', 'lo']).slice(0, 3)]],
    ['mid-call', [ev.created(), ev.callAdded(0), ev.args(0, '{"a"')]],
  ])('finish() throws upstream_stream_truncated when the stream ended after %s', (_name, events) => {
    const { sut } = run(events);
    expect(sut.done).toBe(false);
    expect(thrown(() => sut.finish())).toMatchObject({ code: 'upstream_stream_truncated', status: 502 });
  });
});
