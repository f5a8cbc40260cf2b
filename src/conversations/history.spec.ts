import type {
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
} from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import type { StoredMessage } from './conversation.types.js';
import {
  assistantTurnToRows,
  clientTurnToRows,
  contentText,
  firstUserText,
  lastAssistantResponseId,
  rebuildHistory,
} from './history.js';

function call(id: string, name = 'get_time', args = '{}'): ChatCompletionMessageToolCall {
  return { id, type: 'function', function: { name, arguments: args } };
}

let nextSeq = 1;
function stored(fields: Partial<StoredMessage> & Pick<StoredMessage, 'role'>): StoredMessage {
  const seq = nextSeq++;
  return {
    id: `m${seq}`,
    seq,
    content: null,
    toolCalls: null,
    toolCallId: null,
    name: null,
    status: 'complete',
    providerResponseId: null,
    ...fields,
  };
}

function ids(): () => string {
  let n = 0;
  return () => `id-${++n}`;
}

describe(rebuildHistory.name, () => {
  it('puts the system prompt first, then every message in order', () => {
    const rows = [
      stored({ role: 'user', content: 'Hi' }),
      stored({ role: 'assistant', content: 'Hello!' }),
      stored({ role: 'user', content: 'Bye' }),
    ];
    expect(rebuildHistory('Be brief.', rows)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
    ]);
  });

  it('has no system message without a system prompt (null or empty)', () => {
    const rows = [stored({ role: 'user', content: 'Hi' })];
    expect(rebuildHistory(null, rows)).toEqual([{ role: 'user', content: 'Hi' }]);
    expect(rebuildHistory('', rows)).toEqual([{ role: 'user', content: 'Hi' }]);
  });

  it('rebuilds a tool loop: assistant tool calls, one tool message per call, the final answer', () => {
    const calls = [call('call_1'), call('call_2', 'calculator', '{"expression":"1+1"}')];
    const rows = [
      stored({ role: 'user', content: 'Time and 1+1?' }),
      stored({ role: 'assistant', content: null, toolCalls: calls }),
      stored({ role: 'tool', content: '12:00', toolCallId: 'call_1', name: 'get_time', status: 'success' }),
      stored({ role: 'tool', content: 'boom', toolCallId: 'call_2', name: 'calculator', status: 'error' }),
      stored({ role: 'assistant', content: 'It is noon; 1+1 failed.' }),
    ];
    expect(rebuildHistory(null, rows)).toEqual([
      { role: 'user', content: 'Time and 1+1?' },
      { role: 'assistant', content: null, tool_calls: calls },
      { role: 'tool', tool_call_id: 'call_1', content: '12:00' },
      { role: 'tool', tool_call_id: 'call_2', content: 'boom' },
      { role: 'assistant', content: 'It is noon; 1+1 failed.' },
    ]);
  });

  it('keeps content parts and names as stored', () => {
    const parts = [
      { type: 'text', text: 'What is this?' },
      { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
    ];
    const rows = [stored({ role: 'user', content: parts, name: 'ana' })];
    expect(rebuildHistory(null, rows)).toEqual([{ role: 'user', content: parts, name: 'ana' }]);
  });

  it('keeps an incomplete assistant answer, and drops one with nothing in it', () => {
    const rows = [
      stored({ role: 'user', content: 'Tell me a story' }),
      stored({ role: 'assistant', content: 'Once upon a', status: 'incomplete' }),
      stored({ role: 'user', content: 'Again' }),
      stored({ role: 'assistant', content: null, status: 'incomplete' }),
      stored({ role: 'user', content: 'Hello?' }),
    ];
    expect(rebuildHistory(null, rows).map((m) => [m.role, m.content])).toEqual([
      ['user', 'Tell me a story'],
      ['assistant', 'Once upon a'],
      ['user', 'Again'],
      ['user', 'Hello?'],
    ]);
  });

  it('leaves out tool calls nobody answered, and tool messages that answer no call', () => {
    const rows = [
      stored({ role: 'user', content: 'Weather?' }),
      // The client's own tool: it never sent the result, and asked something else instead.
      stored({ role: 'assistant', content: 'Let me check', toolCalls: [call('call_a'), call('call_b')] }),
      stored({ role: 'tool', content: 'sunny', toolCallId: 'call_a' }),
      stored({ role: 'tool', content: 'again', toolCallId: 'call_a' }),
      stored({ role: 'tool', content: 'stray', toolCallId: 'call_x' }),
      stored({ role: 'user', content: 'Never mind' }),
      stored({ role: 'assistant', content: null, toolCalls: [call('call_c')] }),
      stored({ role: 'user', content: 'Still there?' }),
    ];
    expect(rebuildHistory(null, rows)).toEqual([
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Let me check', tool_calls: [call('call_a')] },
      { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
      { role: 'user', content: 'Never mind' },
      { role: 'user', content: 'Still there?' },
    ]);
  });
});

describe(clientTurnToRows.name, () => {
  it('keeps system and developer text apart and stores the rest in order', () => {
    const messages: ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You are terse.' },
      { role: 'developer', content: [{ type: 'text', text: 'Use metric units.' }] },
      { role: 'user', content: 'Hi', name: 'ana' },
      { role: 'assistant', content: null, tool_calls: [call('call_1')] },
      { role: 'tool', content: '42', tool_call_id: 'call_1' },
    ];
    const turn = clientTurnToRows(messages, ids());
    expect(turn.systemText).toBe('You are terse.\n\nUse metric units.');
    expect(turn.rows).toEqual([
      expect.objectContaining({ id: 'id-1', role: 'user', content: 'Hi', name: 'ana', status: 'complete' }),
      expect.objectContaining({ id: 'id-2', role: 'assistant', content: null, toolCalls: [call('call_1')] }),
      expect.objectContaining({
        id: 'id-3',
        role: 'tool',
        content: '42',
        toolCallId: 'call_1',
        status: 'success',
      }),
    ]);
  });

  it('has no system text when the client sent none', () => {
    expect(clientTurnToRows([{ role: 'user', content: 'Hi' }], ids()).systemText).toBeNull();
  });
});

describe(assistantTurnToRows.name, () => {
  it('orders tool-loop iterations, the final answer, then its own tool results', () => {
    const turn = assistantTurnToRows(
      {
        intermediate: [
          {
            assistant: {
              content: 'Checking',
              toolCalls: [call('c1')],
              status: 'complete',
              completionId: 'chatcmpl-1',
            },
            toolMessages: [{ toolCallId: 'c1', name: 'get_time', content: '12:00', status: 'success' }],
          },
        ],
        assistant: {
          id: 'final',
          content: 'Noon.',
          status: 'complete',
          providerResponseId: 'resp_1',
          usage: { total_tokens: 5 },
          completionId: 'chatcmpl-1',
        },
        toolMessages: [],
      },
      ids(),
    );
    expect(turn.rows.map((r) => [r.id, r.role, r.content, r.status])).toEqual([
      ['id-1', 'assistant', 'Checking', 'complete'],
      ['id-2', 'tool', '12:00', 'success'],
      ['final', 'assistant', 'Noon.', 'complete'],
    ]);
    expect(turn.assistantIndex).toBe(2);
    expect(turn.rows[1]).toMatchObject({ toolCallId: 'c1', name: 'get_time', completionId: 'chatcmpl-1' });
    expect(turn.rows[2]).toMatchObject({
      providerResponseId: 'resp_1',
      usage: { total_tokens: 5 },
      toolCalls: null,
    });
  });

  it('turns its rows back into the same OpenAI messages', () => {
    const turn = assistantTurnToRows(
      {
        intermediate: [
          {
            assistant: { content: null, toolCalls: [call('c1')], status: 'complete', completionId: 'x' },
            toolMessages: [{ toolCallId: 'c1', name: 'get_time', content: '12:00', status: 'error' }],
          },
        ],
        assistant: { content: 'Done', status: 'incomplete', completionId: 'x' },
      },
      ids(),
    );
    const rows = turn.rows.map((row, i) => ({ ...row, seq: i + 1 }));
    expect(rebuildHistory(null, rows)).toEqual([
      { role: 'assistant', content: null, tool_calls: [call('c1')] },
      { role: 'tool', tool_call_id: 'c1', content: '12:00' },
      { role: 'assistant', content: 'Done' },
    ]);
  });
});

describe(lastAssistantResponseId.name, () => {
  it('is the provider id of the last assistant message', () => {
    expect(
      lastAssistantResponseId([
        stored({ role: 'assistant', content: 'a', providerResponseId: 'resp_1' }),
        stored({ role: 'assistant', content: 'b', providerResponseId: 'resp_2' }),
        stored({ role: 'user', content: 'c' }),
      ]),
    ).toBe('resp_2');
    expect(lastAssistantResponseId([stored({ role: 'user', content: 'c' })])).toBeNull();
  });
});

describe(firstUserText.name, () => {
  it('is the text of the first user message with text', () => {
    expect(
      firstUserText([
        { role: 'system', content: 'x' },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://e/x.png' } }] },
        { role: 'user', content: [{ type: 'text', text: ' Plan a trip ' }] },
      ]),
    ).toBe('Plan a trip');
    expect(firstUserText([{ role: 'system', content: 'x' }])).toBeNull();
  });

  it('reads text parts and ignores the rest', () => {
    expect(
      contentText([
        { type: 'text', text: 'a' },
        { type: 'refusal', refusal: 'no' },
        5,
        { type: 'text', text: 'b' },
      ]),
    ).toBe('a\nb');
    expect(contentText(null)).toBe('');
  });
});
