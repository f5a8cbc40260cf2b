import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ConversationBlock } from '../../src/conversations/conversation.types.js';
import { ConversationsRepository } from '../../src/conversations/conversations.repository.js';
import { expectConforms, expectStreamConforms } from '../utils/conformance.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { addMember, admin, setupTenant, signToken, type TenantSetup } from '../utils/factories.js';
import { balanceOf } from '../utils/quota.js';
import { parseSse, sseRequest } from '../utils/sse-client.js';
import { UpstreamSimulator, type RecordedRequest } from '../utils/upstream-simulator.js';

// GitHub issue 6: conversations end to end through POST /v1/chat/completions.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const NOBODY = '00000000-0000-4000-8000-000000000000';
const TITLE_INSTRUCTION = 'You name conversations.';

interface User {
  token: string;
}
interface Message {
  id: string;
  seq: number;
  role: string;
  content: unknown;
  status: string;
  created_at: string;
}
interface Chunk {
  id: string;
  object: string;
  choices: Array<{ index: number; delta: Record<string, unknown>; finish_reason: string | null }>;
  _conversation?: ConversationBlock;
}

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const system = (content: string) => ({ role: 'system', content });

const isChunk = (p: unknown): p is Chunk => typeof p === 'object' && p !== null && 'choices' in p;
const chunksOf = (payloads: unknown[]) => payloads.filter(isChunk);
const streamedText = (payloads: unknown[]) =>
  chunksOf(payloads)
    .map((c) => (typeof c.choices[0]?.delta.content === 'string' ? c.choices[0].delta.content : ''))
    .join('');
const blockOf = (payloads: unknown[]): ConversationBlock | undefined =>
  chunksOf(payloads).find((c) => c._conversation !== undefined)?._conversation;

const isTitleRequest = (req: RecordedRequest) => {
  const messages = req.body.messages as Array<{ role: string; content: unknown }> | undefined;
  return (
    messages?.[0]?.role === 'system' &&
    typeof messages[0].content === 'string' &&
    messages[0].content.startsWith(TITLE_INSTRUCTION)
  );
};

/** Checks `check` until it holds (the writes after an answer are off its path); fails after `timeoutMs`. */
async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  check: (value: T) => boolean,
  timeoutMs = 5000,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Contract section 4: the `_conversation` block, every field. */
function expectBlock(
  block: ConversationBlock | undefined,
  expected: Partial<ConversationBlock> = {},
): ConversationBlock {
  expect(block).toBeDefined();
  expect(Object.keys(block!).sort()).toEqual(
    [
      'id',
      'title',
      'model',
      'created_at',
      'tools_enabled',
      'active_tools',
      'active_system_prompt_id',
      'seq',
      'user_message_id',
      'assistant_message_id',
    ].sort(),
  );
  expect(block).toEqual({
    id: expect.stringMatching(UUID),
    title: null,
    model: 'sim-small',
    created_at: expect.stringMatching(ISO),
    tools_enabled: false,
    active_tools: [],
    active_system_prompt_id: null,
    seq: expect.any(Number),
    user_message_id: expect.stringMatching(UUID),
    assistant_message_id: expect.stringMatching(UUID),
    ...expected,
  });
  return block!;
}

/** Contract section 11: a conversation object. */
function expectConversationShape(body: unknown): void {
  expect(body).toEqual({
    id: expect.stringMatching(UUID),
    title: expect.toSatisfy((v: unknown) => v === null || typeof v === 'string'),
    model: expect.toSatisfy((v: unknown) => v === null || typeof v === 'string'),
    created_at: expect.stringMatching(ISO),
    updated_at: expect.stringMatching(ISO),
    metadata: expect.any(Object),
  });
}

/** Contract section 11: the message list, in order. */
function expectMessageListShape(body: { object: string; data: Message[] }): void {
  expect(Object.keys(body).sort()).toEqual(['data', 'object']);
  expect(body.object).toBe('list');
  const allowed = [
    'id',
    'seq',
    'role',
    'content',
    'tool_calls',
    'tool_call_id',
    'name',
    'status',
    'created_at',
  ];
  body.data.forEach((m, i) => {
    for (const key of Object.keys(m)) expect(allowed).toContain(key);
    expect(m.id).toMatch(UUID);
    expect(m.created_at).toMatch(ISO);
    expect(m.seq).toBe(i + 1);
    expect(['user', 'assistant', 'tool', 'function']).toContain(m.role);
    expect(m.status).toMatch(m.role === 'tool' ? /^(success|error)$/ : /^(in)?complete$/);
  });
}

describe('conversations through POST /v1/chat/completions', () => {
  let sim: UpstreamSimulator;
  let t: TestApp;
  /** Tenant A with its member `a`. */
  let a: TenantSetup;
  /** Another member of tenant A. */
  let a2: User;
  /** `a`'s user in tenant B. */
  let aInB: User;
  /** Tenant B's own member. */
  let b: TenantSetup;

  const json = async (who: User, body: object, headers: Record<string, string> = {}) => {
    const res = await request(t.url)
      .post('/v1/chat/completions')
      .set({ Authorization: `Bearer ${who.token}`, ...headers })
      .send(body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expectConforms('CreateChatCompletionResponse', res.body);
    return res.body as {
      choices: Array<{ message: { content: string } }>;
      _conversation?: ConversationBlock;
    };
  };
  const sse = async (who: User, body: object, headers: Record<string, string> = {}) => {
    const res = await sseRequest(`${t.url}/v1/chat/completions`, {
      token: who.token,
      body: { ...body, stream: true },
      headers,
    });
    expect(res.status, res.text).toBe(200);
    expectStreamConforms(res.payloads);
    return res;
  };
  const get = (who: User, path: string) =>
    request(t.url).get(path).set('Authorization', `Bearer ${who.token}`);
  const messagesOf = async (who: User, conversationId: string): Promise<Message[]> => {
    const res = await get(who, `/v1/conversations/${conversationId}/messages`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expectMessageListShape(res.body);
    return res.body.data as Message[];
  };
  /** The stored messages once the assistant message of the turn is there. */
  const storedTurn = (who: User, conversationId: string, count: number) =>
    eventually(
      `${count} stored messages`,
      () => messagesOf(who, conversationId),
      (rows) => rows.length >= count,
    );
  const upstreamMessages = () => sim.lastRequest()!.body.messages;

  /** A conversation of `who` with one finished turn (JSON). */
  const conversationOf = async (who: User, question: string, answer: string) => {
    sim.enqueue({ kind: 'text', text: answer });
    const body = await json(who, { messages: [user(question)] });
    const id = body._conversation!.id;
    await storedTurn(who, id, 2);
    return id;
  };

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp({ RESUME_GRACE_MS: '0' });
    a = await setupTenant(t, { baseUrl: sim.baseUrl });
    a2 = await addMember(t, a.tenantId);
    b = await setupTenant(t, { baseUrl: sim.baseUrl });
    const member = await admin(t).put(`/admin/tenants/${b.tenantId}/members/${a.userId}`, { role: 'member' });
    expect(member.status).toBeLessThan(300);
    await admin(t).post(`/admin/tenants/${b.tenantId}/users/${a.userId}/balance`, { delta: 1_000_000 });
    aInB = { token: signToken({ sub: a.userId, tenant_id: b.tenantId }) };
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  describe('history rebuilt server-side', () => {
    it('continues a conversation from the newest message only (JSON)', async () => {
      sim.enqueue(
        { kind: 'text', text: 'Paris.' },
        { kind: 'text', text: 'Rome.', usage: { prompt_tokens: 12, completion_tokens: 2 } },
      );
      const first = await json(a, { messages: [user('Capital of France?')] });
      expect(first.choices[0].message.content).toBe('Paris.');
      const block1 = expectBlock(first._conversation, { seq: 2 });
      expect(upstreamMessages()).toEqual([user('Capital of France?')]);

      const second = await json(a, { conversation_id: block1.id, messages: [user('And of Italy?')] });
      expect(second.choices[0].message.content).toBe('Rome.');
      const block2 = expectBlock(second._conversation, {
        id: block1.id,
        created_at: block1.created_at,
        seq: 4,
      });
      expect(upstreamMessages()).toEqual([
        user('Capital of France?'),
        assistant('Paris.'),
        user('And of Italy?'),
      ]);
      // Parley's own fields never reach the provider.
      expect(sim.lastRequest()!.body).not.toHaveProperty('conversation_id');

      const rows = await storedTurn(a, block1.id, 4);
      expect(rows.map((m) => [m.role, m.content, m.status])).toEqual([
        ['user', 'Capital of France?', 'complete'],
        ['assistant', 'Paris.', 'complete'],
        ['user', 'And of Italy?', 'complete'],
        ['assistant', 'Rome.', 'complete'],
      ]);
      expect(rows.map((m) => m.id)).toEqual([
        block1.user_message_id,
        block1.assistant_message_id,
        block2.user_message_id,
        block2.assistant_message_id,
      ]);
    });

    it('continues a conversation from the newest message only (SSE)', async () => {
      sim.enqueue(
        { kind: 'text', text: 'Blue whale.', chunks: ['Blue', ' whale.'] },
        { kind: 'text', text: 'About 30 m.', chunks: ['About', ' 30', ' m.'] },
      );
      const first = await sse(a, { messages: [user('Largest animal?')] });
      expect(streamedText(first.payloads)).toBe('Blue whale.');
      const block1 = expectBlock(blockOf(first.payloads), { seq: 2 });
      expect(upstreamMessages()).toEqual([user('Largest animal?')]);

      const second = await sse(a, { conversation_id: block1.id, messages: [user('How long?')] });
      expect(streamedText(second.payloads)).toBe('About 30 m.');
      const block2 = expectBlock(blockOf(second.payloads), { id: block1.id, seq: 4 });
      expect(upstreamMessages()).toEqual([
        user('Largest animal?'),
        assistant('Blue whale.'),
        user('How long?'),
      ]);

      const rows = await storedTurn(a, block1.id, 4);
      expect(rows.map((m) => [m.id, m.role, m.content])).toEqual([
        [block1.user_message_id, 'user', 'Largest animal?'],
        [block1.assistant_message_id, 'assistant', 'Blue whale.'],
        [block2.user_message_id, 'user', 'How long?'],
        [block2.assistant_message_id, 'assistant', 'About 30 m.'],
      ]);
    });

    it('continues across JSON and SSE turns, and the conversation is listed with the contract shape', async () => {
      sim.enqueue(
        { kind: 'text', text: 'One.' },
        { kind: 'text', text: 'Two.' },
        { kind: 'text', text: 'Three.' },
      );
      const first = await sse(a, { messages: [user('Count: 1')] });
      const id = blockOf(first.payloads)!.id;
      await json(a, { conversation_id: id, messages: [user('Count: 2')] });
      await sse(a, { conversation_id: id, messages: [user('Count: 3')] });
      expect(upstreamMessages()).toEqual([
        user('Count: 1'),
        assistant('One.'),
        user('Count: 2'),
        assistant('Two.'),
        user('Count: 3'),
      ]);
      await storedTurn(a, id, 6);

      const one = await get(a, `/v1/conversations/${id}`);
      expect(one.status).toBe(200);
      expectConversationShape(one.body);
      expect(one.body).toMatchObject({ id, title: null, model: 'sim-small' });
      const list = await get(a, '/v1/conversations?limit=100');
      expect(list.status).toBe(200);
      expect(Object.keys(list.body).sort()).toEqual(['data', 'has_more', 'object']);
      expect(list.body.object).toBe('list');
      for (const c of list.body.data as unknown[]) expectConversationShape(c);
      expect((list.body.data as Array<{ id: string }>).map((c) => c.id)).toContain(id);
    });
    it('sends the previous answer upstream on the next turn even while it is still being written', async () => {
      // A slow database: the first turn's answer is held back until the next turn's upstream call
      // (or 1 s, when the next turn rightly waits for it).
      const repo = t.app.get(ConversationsRepository);
      const real = repo.appendMessages.bind(repo);
      const slow = vi.spyOn(repo, 'appendMessages');
      const holdNextWrite = () =>
        slow.mockImplementationOnce(async (...args) => {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1000);
            sim.once('request', () => {
              clearTimeout(timer);
              resolve();
            });
          });
          return real(...args);
        });
      try {
        for (const mode of ['json', 'sse'] as const) {
          sim.reset();
          sim.enqueue({ kind: 'text', text: 'First answer.' }, { kind: 'text', text: 'Second answer.' });
          const send = async (body: object) =>
            mode === 'json' ? (await json(a, body))._conversation! : blockOf((await sse(a, body)).payloads)!;
          holdNextWrite();
          const first = await send({ messages: [user('Quick one')] });
          const second = await send({ conversation_id: first.id, messages: [user('Quick two')] });
          expect(upstreamMessages()).toEqual([
            user('Quick one'),
            assistant('First answer.'),
            user('Quick two'),
          ]);
          expectBlock(second, { id: first.id, seq: 4 });
          const rows = await storedTurn(a, first.id, 4);
          expect(rows.map((m) => [m.id, m.content])).toEqual([
            [first.user_message_id, 'Quick one'],
            [first.assistant_message_id, 'First answer.'],
            [second.user_message_id, 'Quick two'],
            [second.assistant_message_id, 'Second answer.'],
          ]);
        }
      } finally {
        slow.mockRestore();
      }
    });
  });

  describe('ids that are not the caller’s', () => {
    it.each([
      ['another user of the same tenant', () => a2],
      ['the same user in another tenant', () => aInB],
      ['another user of another tenant', () => b],
    ])(
      'starts a new conversation for a conversation of %s, leaking none of its messages',
      async (_n, owner) => {
        const foreign = await conversationOf(owner(), 'secret question', 'secret answer');
        for (const mode of ['json', 'sse'] as const) {
          sim.reset();
          sim.enqueue({ kind: 'text', text: 'Fresh answer.' });
          const body = { conversation_id: foreign, messages: [user('What did we talk about?')] };
          const block =
            mode === 'json' ? (await json(a, body))._conversation : blockOf((await sse(a, body)).payloads);
          expectBlock(block, { seq: 2 });
          expect(block!.id).not.toBe(foreign);
          expect(upstreamMessages()).toEqual([user('What did we talk about?')]);
          expect(JSON.stringify(sim.requests)).not.toContain('secret');
          const rows = await storedTurn(a, block!.id, 2);
          expect(rows.map((m) => m.content)).toEqual(['What did we talk about?', 'Fresh answer.']);
        }
        // The caller cannot read the other conversation either, and it is untouched.
        expect((await get(a, `/v1/conversations/${foreign}`)).status).toBe(404);
        expect((await messagesOf(owner(), foreign)).map((m) => m.content)).toEqual([
          'secret question',
          'secret answer',
        ]);
      },
    );

    it.each([
      ['an unknown UUID', NOBODY],
      ['a string that is not a UUID', 'not-a-uuid'],
      ['an injection attempt', "1' OR '1'='1"],
    ])('starts a new conversation for %s', async (_n, id) => {
      sim.enqueue({ kind: 'text', text: 'Hello.' }, { kind: 'text', text: 'Hello again.' });
      const block = expectBlock(
        (await json(a, { conversation_id: id, messages: [user('Hi')] }))._conversation,
        {
          seq: 2,
        },
      );
      expect(block.id).not.toBe(id);
      expect(upstreamMessages()).toEqual([user('Hi')]);
      const streamed = expectBlock(
        blockOf((await sse(a, { conversation_id: id, messages: [user('Hi')] })).payloads),
        { seq: 2 },
      );
      expect(streamed.id).not.toBe(block.id);
      expect(upstreamMessages()).toEqual([user('Hi')]);
    });
  });

  describe('x-conversation-id', () => {
    it('continues the conversation named by the header', async () => {
      const id = await conversationOf(a, 'Header question', 'Header answer');
      sim.enqueue({ kind: 'text', text: 'Continued.' });
      const body = await json(a, { messages: [user('Next')] }, { 'x-conversation-id': id });
      expectBlock(body._conversation, { id, seq: 4 });
      expect(upstreamMessages()).toEqual([user('Header question'), assistant('Header answer'), user('Next')]);

      sim.enqueue({ kind: 'text', text: 'Streamed.' });
      const res = await sse(a, { messages: [user('Streamed next')] }, { 'x-conversation-id': id });
      expectBlock(blockOf(res.payloads), { id, seq: 6 });
      expect(upstreamMessages()).toEqual([
        user('Header question'),
        assistant('Header answer'),
        user('Next'),
        assistant('Continued.'),
        user('Streamed next'),
      ]);
    });

    it('lets the body’s conversation_id win over the header', async () => {
      const fromBody = await conversationOf(a, 'Body question', 'Body answer');
      const fromHeader = await conversationOf(a, 'Header question', 'Header answer');
      sim.enqueue({ kind: 'text', text: 'Body wins.' });
      const body = await json(
        a,
        { conversation_id: fromBody, messages: [user('Which one?')] },
        { 'x-conversation-id': fromHeader },
      );
      expectBlock(body._conversation, { id: fromBody, seq: 4 });
      expect(upstreamMessages()).toEqual([
        user('Body question'),
        assistant('Body answer'),
        user('Which one?'),
      ]);
      expect((await messagesOf(a, fromHeader)).map((m) => m.content)).toEqual([
        'Header question',
        'Header answer',
      ]);
    });
  });

  describe('system prompts', () => {
    it('replaces a client system message with system_prompt and remembers it for the next turn', async () => {
      sim.enqueue({ kind: 'text', text: 'Arr.' }, { kind: 'text', text: 'Aye.' });
      const first = await json(a, {
        system_prompt: 'You are a pirate.',
        messages: [system('You are a librarian.'), user('Greet me')],
      });
      const block = expectBlock(first._conversation, { seq: 2 });
      expect(upstreamMessages()).toEqual([system('You are a pirate.'), user('Greet me')]);
      expect(sim.lastRequest()!.body).not.toHaveProperty('system_prompt');

      const res = await sse(a, { conversation_id: block.id, messages: [user('Again')] });
      expectBlock(blockOf(res.payloads), { id: block.id, seq: 4 });
      expect(upstreamMessages()).toEqual([
        system('You are a pirate.'),
        user('Greet me'),
        assistant('Arr.'),
        user('Again'),
      ]);
      // The system prompt is not a stored message.
      expect((await storedTurn(a, block.id, 4)).map((m) => m.role)).toEqual([
        'user',
        'assistant',
        'user',
        'assistant',
      ]);
    });

    it('inserts system_prompt as the first message when the client sent none (SSE)', async () => {
      sim.enqueue({ kind: 'text', text: 'Short.' });
      await sse(a, { system_prompt: 'Be brief.', messages: [user('Explain SSE')] });
      expect(upstreamMessages()).toEqual([system('Be brief.'), user('Explain SSE')]);
    });

    it('uses a saved prompt chosen by active_system_prompt_id, and remembers it', async () => {
      const created = await request(t.url)
        .post('/v1/system-prompts')
        .set('Authorization', `Bearer ${a.token}`)
        .send({ name: 'Poet', content: 'Answer in rhymes.' });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body).toEqual({
        id: expect.stringMatching(UUID),
        name: 'Poet',
        content: 'Answer in rhymes.',
        created_at: expect.stringMatching(ISO),
        updated_at: expect.stringMatching(ISO),
      });
      const promptId = created.body.id as string;

      sim.enqueue({ kind: 'text', text: 'Roses are red.' }, { kind: 'text', text: 'Violets are blue.' });
      const first = await sse(a, { active_system_prompt_id: promptId, messages: [user('A poem?')] });
      const block = expectBlock(blockOf(first.payloads), { active_system_prompt_id: promptId, seq: 2 });
      expect(upstreamMessages()).toEqual([system('Answer in rhymes.'), user('A poem?')]);
      expect(sim.lastRequest()!.body).not.toHaveProperty('active_system_prompt_id');

      const second = await json(a, { conversation_id: block.id, messages: [user('More')] });
      expectBlock(second._conversation, { id: block.id, active_system_prompt_id: promptId, seq: 4 });
      expect(upstreamMessages()).toEqual([
        system('Answer in rhymes.'),
        user('A poem?'),
        assistant('Roses are red.'),
        user('More'),
      ]);
    });

    it('ignores another user’s saved prompt id', async () => {
      const theirs = await request(t.url)
        .post('/v1/system-prompts')
        .set('Authorization', `Bearer ${a2.token}`)
        .send({ name: 'Secret', content: 'secret instructions' });
      expect(theirs.status).toBe(201);
      sim.enqueue({ kind: 'text', text: 'Hi.' });
      const body = await json(a, { active_system_prompt_id: theirs.body.id, messages: [user('Hello')] });
      expectBlock(body._conversation, { active_system_prompt_id: null, seq: 2 });
      expect(upstreamMessages()).toEqual([user('Hello')]);
    });
  });

  describe('the _conversation block', () => {
    it('comes first on the plain SSE path, then deltas, the final chunk and [DONE]', async () => {
      sim.enqueue({ kind: 'text', text: 'Alpha beta gamma', chunks: ['Alpha', ' beta', ' gamma'] });
      const res = await sse(a, { messages: [user('Three words')] });
      expect(res.events.map((e) => e.id)).toEqual(res.events.map((_e, i) => String(i + 1)));
      const [head, ...rest] = res.payloads;
      expect(isChunk(head)).toBe(true);
      const first = head as Chunk;
      expect(first).toMatchObject({ object: 'chat.completion.chunk', choices: [] });
      expect(first.id).toMatch(/^chatcmpl-/);
      const block = expectBlock(first._conversation, { seq: 2 });

      expect(rest.at(-1)).toBe('[DONE]');
      const body = rest.slice(0, -1) as Chunk[];
      expect(body.every((c) => c._conversation === undefined && c.id === first.id)).toBe(true);
      expect(body[0].choices[0].delta.role).toBe('assistant');
      expect(streamedText(body)).toBe('Alpha beta gamma');
      expect(body.at(-1)!.choices[0].finish_reason).toBe('stop');
      expect(body.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);

      const rows = await storedTurn(a, block.id, 2);
      expect(rows[0]).toMatchObject({ id: block.user_message_id, seq: 1, role: 'user' });
      expect(rows[1]).toMatchObject({
        id: block.assistant_message_id,
        seq: block.seq,
        role: 'assistant',
        content: 'Alpha beta gamma',
        status: 'complete',
      });
    });

    it('rides on the JSON answer, with the ids and seq the messages route lists', async () => {
      const id = await conversationOf(a, 'Before', 'Earlier answer');
      sim.enqueue({ kind: 'text', text: 'Later answer' });
      const body = await json(a, { conversation_id: id, messages: [user('After')] });
      const block = expectBlock(body._conversation, { id, seq: 4 });
      const rows = await storedTurn(a, id, 4);
      expect(rows[2]).toMatchObject({ id: block.user_message_id, seq: block.seq - 1, role: 'user' });
      expect(rows[3]).toMatchObject({
        id: block.assistant_message_id,
        seq: block.seq,
        role: 'assistant',
        content: 'Later answer',
      });
    });
  });

  describe('turns cut short', () => {
    it('stores the user message and the partial answer of a client that disconnected', async () => {
      sim.enqueue({
        kind: 'stall',
        text: 'Once upon a time',
        chunks: ['Once', ' upon', ' a', ' time'],
        afterChunks: 2,
      });
      const abort = new AbortController();
      const res = await fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${a.token}` },
        body: JSON.stringify({ messages: [user('Tell me a story')], stream: true }),
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      // Read until both deltas the upstream sent have arrived, then go away.
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      let payloads: unknown[] = [];
      while (streamedText(payloads) !== 'Once upon') {
        const { value, done } = await reader.read();
        expect(done).toBe(false);
        text += decoder.decode(value, { stream: true });
        payloads = parseSse(text.slice(0, text.lastIndexOf('\n\n') + 2)).events.map(
          (e) => JSON.parse(e.data) as unknown,
        );
      }
      expectStreamConforms(payloads);
      const block = expectBlock(blockOf(payloads), { seq: 2 });
      abort.abort();
      await sim.waitForAborted(1);

      const rows = await storedTurn(a, block.id, 2);
      expect(rows).toEqual([
        expect.objectContaining({ id: block.user_message_id, role: 'user', content: 'Tell me a story' }),
        expect.objectContaining({
          id: block.assistant_message_id,
          seq: 2,
          role: 'assistant',
          content: 'Once upon',
          status: 'incomplete',
        }),
      ]);
    });

    it('stores an incomplete answer when the upstream fails before any output (JSON, new conversation)', async () => {
      const fresh = await addMember(t, a.tenantId);
      sim.enqueue({ kind: 'error', status: 500, message: 'upstream exploded' });
      const res = await request(t.url)
        .post('/v1/chat/completions')
        .set('Authorization', `Bearer ${fresh.token}`)
        .send({ messages: [user('Will this fail?')] });
      expect(res.status).toBe(502);
      expectConforms('ErrorResponse', res.body);

      const list = await get(fresh, '/v1/conversations');
      expect(list.body.data).toHaveLength(1);
      const rows = await storedTurn(fresh, list.body.data[0].id, 2);
      expect(rows.map((m) => [m.role, m.content, m.status])).toEqual([
        ['user', 'Will this fail?', 'complete'],
        ['assistant', null, 'incomplete'],
      ]);
    });

    it('stores an incomplete answer when the upstream fails before any output (SSE, continued)', async () => {
      const id = await conversationOf(a, 'First', 'First answer');
      sim.enqueue({ kind: 'error', status: 500, message: 'upstream exploded' });
      const res = await sseRequest(`${t.url}/v1/chat/completions`, {
        token: a.token,
        body: { conversation_id: id, messages: [user('Second')], stream: true },
      });
      expect(res.status).toBe(502);
      expectConforms('ErrorResponse', JSON.parse(res.text));
      const rows = await storedTurn(a, id, 4);
      expect(rows.map((m) => [m.role, m.content, m.status])).toEqual([
        ['user', 'First', 'complete'],
        ['assistant', 'First answer', 'complete'],
        ['user', 'Second', 'complete'],
        ['assistant', null, 'incomplete'],
      ]);

      // The failed turn's empty answer is not sent upstream on the next turn; the question is.
      sim.enqueue({ kind: 'text', text: 'Third answer' });
      await json(a, { conversation_id: id, messages: [user('Third')] });
      expect(upstreamMessages()).toEqual([
        user('First'),
        assistant('First answer'),
        user('Second'),
        user('Third'),
      ]);
    });

    it('stores the partial answer as incomplete after a stream error', async () => {
      sim.enqueue({
        kind: 'stream_error',
        text: 'Partial answer here',
        chunks: ['Partial', ' answer', ' here'],
        afterChunks: 2,
        message: 'model crashed',
      });
      const res = await sse(a, { messages: [user('Go')] });
      const block = expectBlock(blockOf(res.payloads), { seq: 2 });
      expect(streamedText(res.payloads)).toBe('Partial answer');
      expect(res.payloads.at(-2)).toMatchObject({ error: expect.any(Object) });
      expect(res.payloads.at(-1)).toBe('[DONE]');
      const rows = await storedTurn(a, block.id, 2);
      expect(rows[1]).toMatchObject({
        id: block.assistant_message_id,
        role: 'assistant',
        content: 'Partial answer',
        status: 'incomplete',
      });
      expect(rows[0]).toMatchObject({ id: block.user_message_id, content: 'Go', status: 'complete' });
    });
  });
});

describe('conversations with PERSISTENCE=off', () => {
  let sim: UpstreamSimulator;
  let t: TestApp;
  let a: TenantSetup;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp({ PERSISTENCE: 'off' });
    a = await setupTenant(t, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });

  it('answers without _conversation, stores nothing, and still completes', async () => {
    sim.enqueue({ kind: 'text', text: 'Plain JSON.' }, { kind: 'text', text: 'Plain SSE.' });
    const res = await request(t.url)
      .post('/v1/chat/completions')
      .set('Authorization', `Bearer ${a.token}`)
      .send({ messages: [user('Hi')], conversation_id: NOBODY });
    expect(res.status).toBe(200);
    expectConforms('CreateChatCompletionResponse', res.body);
    expect(res.body.choices[0].message.content).toBe('Plain JSON.');
    expect(res.body).not.toHaveProperty('_conversation');
    expect(sim.lastRequest()!.body.messages).toEqual([user('Hi')]);

    const streamed = await sseRequest(`${t.url}/v1/chat/completions`, {
      token: a.token,
      body: { messages: [user('Hi again')], stream: true },
    });
    expect(streamed.status).toBe(200);
    expectStreamConforms(streamed.payloads);
    expect(streamed.text).not.toContain('_conversation');
    expect(streamedText(streamed.payloads)).toBe('Plain SSE.');
    // Straight to the answer: no extra chunk with empty choices.
    expect(chunksOf(streamed.payloads)[0].choices[0].delta.role).toBe('assistant');
    expect(streamed.payloads.at(-1)).toBe('[DONE]');

    const list = await request(t.url).get('/v1/conversations').set('Authorization', `Bearer ${a.token}`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ object: 'list', data: [], has_more: false });
  });
});

describe('conversation titles', () => {
  let sim: UpstreamSimulator;
  let t: TestApp;
  let a: TenantSetup;

  const getConversation = (id: string) =>
    request(t.url).get(`/v1/conversations/${id}`).set('Authorization', `Bearer ${a.token}`);

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    t = await createTestApp({ CONVERSATION_TITLES: 'on' });
    a = await setupTenant(t, { baseUrl: sim.baseUrl });
  });
  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });
  beforeEach(() => sim.reset());

  it('names a new conversation with a short unbilled call, once', async () => {
    const before = await balanceOf(t, a.tenantId, a.userId);
    sim.onRequest = (req) =>
      isTitleRequest(req)
        ? {
            kind: 'text',
            text: '"Weekend trip to Paris."',
            usage: { prompt_tokens: 400, completion_tokens: 600 },
          }
        : undefined;
    sim.enqueue({
      kind: 'text',
      text: 'Go to the Louvre.',
      usage: { prompt_tokens: 20, completion_tokens: 10 },
    });

    const res = await request(t.url)
      .post('/v1/chat/completions')
      .set('Authorization', `Bearer ${a.token}`)
      .send({ messages: [user('Plan my weekend in Paris')] });
    expect(res.status).toBe(200);
    expect(res.body._conversation.title).toBeNull();
    const id = res.body._conversation.id as string;

    const named = await eventually(
      'the title',
      () => getConversation(id),
      (r) => r.body.title !== null,
    );
    expect(named.status).toBe(200);
    expectConversationShape(named.body);
    expect(named.body.title).toBe('Weekend trip to Paris');

    const titleCalls = sim.requests.filter(isTitleRequest);
    expect(titleCalls).toHaveLength(1);
    expect(titleCalls[0].stream).toBe(false);
    expect(titleCalls[0].body.model).toBe('sim-small');
    expect(JSON.stringify(titleCalls[0].body.messages)).toContain('Plan my weekend in Paris');

    // Only the turn's 30 tokens are charged, not the title call's 1000.
    await eventually(
      'the settled balance',
      () => balanceOf(t, a.tenantId, a.userId),
      (balance) => balance === before - 30,
    );

    // The next turn carries the title, and does not ask for another one.
    sim.enqueue({ kind: 'text', text: 'And Versailles.' });
    const next = await request(t.url)
      .post('/v1/chat/completions')
      .set('Authorization', `Bearer ${a.token}`)
      .send({ conversation_id: id, messages: [user('Anything else?')], stream: true });
    expect(next.status).toBe(200);
    const payloads = parseSse(next.text).events.map((e) =>
      e.data === '[DONE]' ? e.data : (JSON.parse(e.data) as unknown),
    );
    expectBlock(blockOf(payloads), { id, title: 'Weekend trip to Paris', seq: 4 });
    await eventually(
      'the second answer stored',
      async () =>
        (
          await request(t.url)
            .get(`/v1/conversations/${id}/messages`)
            .set('Authorization', `Bearer ${a.token}`)
        ).body.data.length as number,
      (n) => n === 4,
    );
    expect(sim.requests.filter(isTitleRequest)).toHaveLength(1);
    expect(await balanceOf(t, a.tenantId, a.userId)).toBeLessThan(before - 30);
  });

  it('leaves the title empty when the title call fails, keeping the turn', async () => {
    sim.onRequest = (req) =>
      isTitleRequest(req) ? { kind: 'error', status: 500, message: 'no titles' } : undefined;
    sim.enqueue({ kind: 'text', text: 'Fine, thanks.' });
    const res = await request(t.url)
      .post('/v1/chat/completions')
      .set('Authorization', `Bearer ${a.token}`)
      .send({ messages: [user('How are you?')] });
    expect(res.status).toBe(200);
    const id = res.body._conversation.id as string;
    await eventually(
      'the failed title call to be logged',
      async () => t.logs.some((l) => l.includes(`Title generation failed for conversation ${id}`)),
      (logged) => logged,
    );
    const conversation = await getConversation(id);
    expect(conversation.status).toBe(200);
    expect(conversation.body.title).toBeNull();
    const messages = await request(t.url)
      .get(`/v1/conversations/${id}/messages`)
      .set('Authorization', `Bearer ${a.token}`);
    expect((messages.body.data as Message[]).map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'How are you?', 'complete'],
      ['assistant', 'Fine, thanks.', 'complete'],
    ]);
  });
});
