import { randomUUID } from 'node:crypto';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TenantContext } from '../../src/common/context/request-context.js';
import type { NewMessage, StartTurnInput } from '../../src/conversations/conversation.types.js';
import { ConversationsRepository } from '../../src/conversations/conversations.repository.js';
import { ConversationsService } from '../../src/conversations/conversations.service.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { addMember, admin, setupTenant, signToken, type TenantSetup } from '../utils/factories.js';

// No completion is made here: the provider only has to exist.
const UPSTREAM = 'http://127.0.0.1:9/v1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NOBODY = '00000000-0000-4000-8000-000000000000';

/** A message row as the repository stores it: text only, complete. */
function storedRow(role: 'user' | 'assistant', content: string): NewMessage {
  return {
    id: randomUUID(),
    role,
    content,
    toolCalls: null,
    toolCallId: null,
    name: null,
    status: 'complete',
    providerResponseId: null,
    usage: null,
    completionId: null,
  };
}

function ctxOf(tenantId: string, userId: string): TenantContext {
  return { userId, tenantId, claims: { sub: userId }, isAdmin: false };
}

describe('conversations', () => {
  let t: TestApp;
  let svc: ConversationsService;
  /** Tenant A: owner (`a`) and a second member (`a2`). */
  let a: TenantSetup;
  let a2: { userId: string; token: string };
  /** Tenant B, of which `a`'s user is a member too. */
  let b: TenantSetup;
  let aInB: { ctx: TenantContext; token: string };
  let ctxA: TenantContext;
  let ctxA2: TenantContext;

  const http = (token: string) => {
    const auth = { Authorization: `Bearer ${token}` };
    return {
      get: (path: string) => request(t.url).get(path).set(auth),
      post: (path: string, body: object) => request(t.url).post(path).set(auth).send(body),
      patch: (path: string, body: object) => request(t.url).patch(path).set(auth).send(body),
      delete: (path: string) => request(t.url).delete(path).set(auth),
    };
  };

  const turn = (overrides: Partial<StartTurnInput> = {}): StartTurnInput => ({
    model: 'sim-small',
    providerId: a.providerId,
    toolsEnabled: false,
    activeTools: [],
    hints: {},
    newMessages: [{ role: 'user', content: 'Hello' }],
    ...overrides,
  });

  /** A conversation of `ctx` with one finished turn. */
  const conversationOf = async (ctx: TenantContext, text = 'Hello', answer = 'Hi there') => {
    const start = await svc.startTurn(ctx, turn({ newMessages: [{ role: 'user', content: text }] }));
    const done = await svc.completeTurn(ctx, start.conversation.id, {
      assistant: { content: answer, status: 'complete', completionId: 'chatcmpl-test' },
    });
    return { ...start, ...done };
  };

  beforeAll(async () => {
    t = await createTestApp();
    svc = t.app.get(ConversationsService);
    a = await setupTenant(t, { baseUrl: UPSTREAM });
    a2 = await addMember(t, a.tenantId);
    b = await setupTenant(t, { baseUrl: UPSTREAM });
    const member = await admin(t).put(`/admin/tenants/${b.tenantId}/members/${a.userId}`, { role: 'member' });
    expect(member.status).toBeLessThan(300);
    aInB = { ctx: ctxOf(b.tenantId, a.userId), token: signToken({ sub: a.userId, tenant_id: b.tenantId }) };
    ctxA = ctxOf(a.tenantId, a.userId);
    ctxA2 = ctxOf(a.tenantId, a2.userId);
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('turns (service)', () => {
    it('creates a conversation on the first turn and stores the user message', async () => {
      const start = await svc.startTurn(
        ctxA,
        turn({
          hints: { streamingEnabled: true, qualityLevel: 'max', researchMode: undefined },
          toolsEnabled: true,
          activeTools: ['get_time'],
        }),
      );
      expect(start.isNew).toBe(true);
      expect(start.conversation.id).toMatch(UUID);
      expect(start.userMessageId).toMatch(UUID);
      expect(start.seq).toBe(1);
      expect(start.lastAssistantResponseId).toBeNull();
      expect(start.history).toEqual([{ role: 'user', content: 'Hello' }]);
      expect(start.conversation).toMatchObject({
        title: null,
        model: 'sim-small',
        providerId: a.providerId,
        toolsEnabled: true,
        activeTools: ['get_time'],
        metadata: { streamingEnabled: true, qualityLevel: 'max' },
        lastSeq: 1,
      });
      const block = svc.conversationBlock(start.conversation, {
        userMessageId: start.userMessageId,
        assistantMessageId: null,
        seq: start.seq,
      });
      expect(block).toEqual({
        id: start.conversation.id,
        title: null,
        model: 'sim-small',
        created_at: start.conversation.createdAt.toISOString(),
        tools_enabled: true,
        active_tools: ['get_time'],
        active_system_prompt_id: null,
        seq: 1,
        user_message_id: start.userMessageId,
        assistant_message_id: null,
      });
    });

    it('rebuilds the history when continuing, with the last provider response id', async () => {
      const first = await svc.startTurn(ctxA, turn({ newMessages: [{ role: 'user', content: 'One' }] }));
      const id = first.conversation.id;
      const done = await svc.completeTurn(ctxA, id, {
        assistant: {
          content: 'Answer one',
          status: 'complete',
          providerResponseId: 'resp_1',
          usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
          completionId: 'chatcmpl-1',
        },
      });
      expect(done).toEqual({ assistantMessageId: expect.stringMatching(UUID), seq: 2 });

      const second = await svc.startTurn(
        ctxA,
        turn({ conversationId: id, newMessages: [{ role: 'user', content: 'Two' }] }),
      );
      expect(second.isNew).toBe(false);
      expect(second.conversation.id).toBe(id);
      expect(second.seq).toBe(3);
      expect(second.lastAssistantResponseId).toBe('resp_1');
      expect(second.history).toEqual([
        { role: 'user', content: 'One' },
        { role: 'assistant', content: 'Answer one' },
        { role: 'user', content: 'Two' },
      ]);

      // Another provider cannot continue the first one's Responses chain.
      const third = await svc.startTurn(
        ctxA,
        turn({
          conversationId: id,
          providerId: 'another-provider',
          newMessages: [{ role: 'user', content: '3' }],
        }),
      );
      expect(third.lastAssistantResponseId).toBeNull();
    });

    it('stores a tool loop in order and rebuilds it for the next turn', async () => {
      const start = await svc.startTurn(
        ctxA,
        turn({ newMessages: [{ role: 'user', content: 'Time and 2*3?' }] }),
      );
      const id = start.conversation.id;
      const call1 = {
        id: 'call_1',
        type: 'function' as const,
        function: { name: 'get_time', arguments: '{}' },
      };
      const call2 = {
        id: 'call_2',
        type: 'function' as const,
        function: { name: 'calculator', arguments: '{"expression":"2*3"}' },
      };
      const assistantMessageId = svc.newMessageId();
      const done = await svc.completeTurn(ctxA, id, {
        intermediate: [
          {
            assistant: {
              content: null,
              toolCalls: [call1, call2],
              status: 'complete',
              completionId: 'chatcmpl-t',
            },
            toolMessages: [
              { toolCallId: 'call_1', name: 'get_time', content: '12:00 UTC', status: 'success' },
              { toolCallId: 'call_2', name: 'calculator', content: 'division by zero', status: 'error' },
            ],
          },
        ],
        assistant: {
          id: assistantMessageId,
          content: 'Noon; 6.',
          status: 'complete',
          completionId: 'chatcmpl-t',
        },
      });
      expect(done).toEqual({ assistantMessageId, seq: 5 });

      const res = await http(a.token).get(`/v1/conversations/${id}/messages`);
      expect(res.status).toBe(200);
      expect(res.body.object).toBe('list');
      expect(
        res.body.data.map((m: { seq: number; role: string; status: string }) => [m.seq, m.role, m.status]),
      ).toEqual([
        [1, 'user', 'complete'],
        [2, 'assistant', 'complete'],
        [3, 'tool', 'success'],
        [4, 'tool', 'error'],
        [5, 'assistant', 'complete'],
      ]);
      expect(res.body.data[1]).toEqual({
        id: expect.stringMatching(UUID),
        seq: 2,
        role: 'assistant',
        content: null,
        tool_calls: [call1, call2],
        status: 'complete',
        created_at: expect.any(String),
      });
      expect(res.body.data[3]).toMatchObject({
        tool_call_id: 'call_2',
        name: 'calculator',
        content: 'division by zero',
      });
      expect(res.body.data[0]).not.toHaveProperty('tool_calls');
      expect(res.body.data[0]).not.toHaveProperty('tool_call_id');
      expect(res.body.data[4].id).toBe(assistantMessageId);

      const next = await svc.startTurn(
        ctxA,
        turn({ conversationId: id, newMessages: [{ role: 'user', content: 'Thanks' }] }),
      );
      expect(next.history).toEqual([
        { role: 'user', content: 'Time and 2*3?' },
        { role: 'assistant', content: null, tool_calls: [call1, call2] },
        { role: 'tool', tool_call_id: 'call_1', content: '12:00 UTC' },
        { role: 'tool', tool_call_id: 'call_2', content: 'division by zero' },
        { role: 'assistant', content: 'Noon; 6.' },
        { role: 'user', content: 'Thanks' },
      ]);
    });

    it("stores the client's tool results after its own tool call and content parts as sent", async () => {
      const start = await svc.startTurn(ctxA, turn({ newMessages: [{ role: 'user', content: 'Weather?' }] }));
      const id = start.conversation.id;
      const call = {
        id: 'call_w',
        type: 'function' as const,
        function: { name: 'weather', arguments: '{}' },
      };
      await svc.completeTurn(ctxA, id, {
        assistant: { content: null, toolCalls: [call], status: 'complete', completionId: 'chatcmpl-w' },
      });
      const parts = [
        { type: 'text' as const, text: 'And this picture?' },
        { type: 'image_url' as const, image_url: { url: 'https://example.com/cat.png' } },
      ];
      const next = await svc.startTurn(
        ctxA,
        turn({
          conversationId: id,
          newMessages: [
            { role: 'tool', tool_call_id: 'call_w', content: 'sunny' },
            { role: 'user', content: parts },
          ],
        }),
      );
      expect(next.history).toEqual([
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: 'call_w', content: 'sunny' },
        { role: 'user', content: parts },
      ]);
      expect(next.seq).toBe(4);
    });

    it('stores every one of many conversations started at once, in batches', async () => {
      const batches = vi.spyOn(t.app.get(ConversationsRepository), 'createConversations');
      const owners = [
        { ctx: ctxA, token: a.token },
        { ctx: ctxA2, token: a2.token },
      ];
      const starts = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          svc.startTurn(
            owners[i % 2].ctx,
            turn({
              hints: { qualityLevel: `q${i}` },
              newMessages: [
                { role: 'user', content: `Hello ${i}` },
                { role: 'assistant', content: `Earlier answer ${i}` },
                { role: 'user', content: [{ type: 'text', text: `Again ${i}` }] },
              ],
            }),
          ),
        ),
      );
      try {
        for (const [i, start] of starts.entries()) {
          const { token } = owners[i % 2];
          const conversation = await http(token).get(`/v1/conversations/${start.conversation.id}`);
          expect(conversation.body).toEqual({
            id: start.conversation.id,
            title: null,
            model: 'sim-small',
            created_at: start.conversation.createdAt.toISOString(),
            updated_at: start.conversation.createdAt.toISOString(),
            metadata: { qualityLevel: `q${i}` },
          });
          const messages = await http(token).get(`/v1/conversations/${start.conversation.id}/messages`);
          expect(messages.body.data).toMatchObject([
            { seq: 1, role: 'user', content: `Hello ${i}` },
            { seq: 2, role: 'assistant', content: `Earlier answer ${i}` },
            { seq: 3, role: 'user', content: [{ type: 'text', text: `Again ${i}` }] },
          ]);
          // Only its owner sees it.
          const other = owners[(i + 1) % 2].token;
          expect((await http(other).get(`/v1/conversations/${start.conversation.id}`)).status).toBe(404);
        }
        // The first ones went alone; those that queued behind them, together.
        expect(batches.mock.calls.some(([conversations]) => conversations.length > 1)).toBe(true);
      } finally {
        batches.mockRestore();
      }
    });

    it("answers null in a batch of appends for an unknown or someone else's conversation, storing the rest", async () => {
      const repo = t.app.get(ConversationsRepository);
      const mine = await conversationOf(ctxA, 'Mine', 'Yes');
      const notA2s = await conversationOf(ctxA, 'Not yours', 'No');
      const message = (content: string) => storedRow('assistant', content);
      const results = await repo.appendToConversations([
        { ctx: ctxA, conversationId: mine.conversation.id, messages: [message('more'), message('and more')] },
        { ctx: ctxA, conversationId: NOBODY, messages: [message('lost')] },
        { ctx: ctxA2, conversationId: notA2s.conversation.id, messages: [message('lost too')] },
        { ctx: ctxA, conversationId: 'not-a-uuid', messages: [message('never')] },
      ]);
      expect(results).toEqual([[3, 4], null, null, null]);
      const messages = await http(a.token).get(`/v1/conversations/${mine.conversation.id}/messages`);
      expect(messages.body.data.map((m: { content: unknown }) => m.content)).toEqual([
        'Mine',
        'Yes',
        'more',
        'and more',
      ]);
      const untouched = await http(a.token).get(`/v1/conversations/${notA2s.conversation.id}/messages`);
      expect(untouched.body.data).toHaveLength(2);
    });

    it('stores the answers of many turns finished at once, in batches, each after its own history', async () => {
      const batches = vi.spyOn(t.app.get(ConversationsRepository), 'appendToConversations');
      // Conversations with one finished turn each, then a second turn of every one at once.
      const firsts = await Promise.all(
        Array.from({ length: 12 }, (_, i) => conversationOf(ctxA, `Q${i}`, `A${i}`)),
      );
      const seconds = await Promise.all(
        firsts.map((first, i) =>
          svc.startTurn(
            ctxA,
            turn({
              conversationId: first.conversation.id,
              newMessages: [{ role: 'user', content: `Q${i}b` }],
            }),
          ),
        ),
      );
      try {
        const done = await Promise.all(
          seconds.map((second, i) =>
            svc.completeTurn(ctxA, second.conversation.id, {
              assistant: { content: `A${i}b`, status: 'complete', completionId: `chatcmpl-${i}` },
            }),
          ),
        );
        expect(batches.mock.calls.some(([appends]) => appends.length > 1)).toBe(true);
        for (const [i, second] of seconds.entries()) {
          expect(done[i].seq).toBe(4);
          const messages = await http(a.token).get(`/v1/conversations/${second.conversation.id}/messages`);
          expect(
            messages.body.data.map((m: { seq: number; content: unknown }) => [m.seq, m.content]),
          ).toEqual([
            [1, `Q${i}`],
            [2, `A${i}`],
            [3, `Q${i}b`],
            [4, `A${i}b`],
          ]);
        }
      } finally {
        batches.mockRestore();
      }
    });

    it('writes a batch again without storing anything twice, and stores what it lacked', async () => {
      const repo = t.app.get(ConversationsRepository);
      const fields = {
        model: 'sim-small',
        providerId: a.providerId,
        systemPrompt: null,
        activeSystemPromptId: null,
        toolsEnabled: false,
        activeTools: [],
        metadata: {},
      };
      const conversation = (text: string) => ({
        ctx: ctxA,
        fields,
        messages: [storedRow('user', text)],
        identity: { id: randomUUID(), createdAt: new Date() },
      });
      const first = conversation('once');
      const second = conversation('later');
      await repo.createConversations([first]);
      await repo.createConversations([first, second]);
      for (const [{ identity }, text] of [
        [first, 'once'],
        [second, 'later'],
      ] as const) {
        const messages = await http(a.token).get(`/v1/conversations/${identity.id}/messages`);
        expect(messages.body.data).toMatchObject([{ seq: 1, role: 'user', content: text }]);
        expect(messages.body.data).toHaveLength(1);
      }
    });

    it('keeps an incomplete answer with its status', async () => {
      const start = await svc.startTurn(ctxA, turn());
      await svc.completeTurn(ctxA, start.conversation.id, {
        assistant: { content: 'Partial ans', status: 'incomplete', completionId: 'chatcmpl-p' },
      });
      const res = await http(a.token).get(`/v1/conversations/${start.conversation.id}/messages`);
      expect(res.body.data[1]).toMatchObject({
        role: 'assistant',
        content: 'Partial ans',
        status: 'incomplete',
      });
    });

    it('gives concurrent turns of one conversation distinct, gapless seqs', async () => {
      const { conversation } = await svc.startTurn(ctxA, turn());
      const starts = await Promise.all(
        [1, 2, 3, 4].map((i) =>
          svc.startTurn(
            ctxA,
            turn({ conversationId: conversation.id, newMessages: [{ role: 'user', content: `${i}` }] }),
          ),
        ),
      );
      const ends = await Promise.all(
        [1, 2, 3, 4].map((i) =>
          svc.completeTurn(ctxA, conversation.id, {
            assistant: { content: `a${i}`, status: 'complete', completionId: `c${i}` },
          }),
        ),
      );
      expect([...starts.map((s) => s.seq), ...ends.map((e) => e.seq)].sort((x, y) => x - y)).toEqual([
        2, 3, 4, 5, 6, 7, 8, 9,
      ]);
      const res = await http(a.token).get(`/v1/conversations/${conversation.id}/messages`);
      expect(res.body.data.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    it.each([
      ['another user of the tenant', () => ctxA2],
      ['the same user in another tenant', () => aInB.ctx],
    ])("starts a new conversation on %s's conversation id, leaking nothing", async (_name, other) => {
      const mine = await conversationOf(ctxA, 'my secret question', 'my secret answer');
      const theirs = await svc.startTurn(
        other(),
        turn({ conversationId: mine.conversation.id, newMessages: [{ role: 'user', content: 'Who am I?' }] }),
      );
      expect(theirs.isNew).toBe(true);
      expect(theirs.conversation.id).not.toBe(mine.conversation.id);
      expect(theirs.history).toEqual([{ role: 'user', content: 'Who am I?' }]);
      expect(JSON.stringify(theirs)).not.toContain('secret');
      // The owner's conversation is untouched.
      const res = await http(a.token).get(`/v1/conversations/${mine.conversation.id}/messages`);
      expect(res.body.data.map((m: { content: string }) => m.content)).toEqual([
        'my secret question',
        'my secret answer',
      ]);
    });

    it('retries a failed write, and never stores a turn twice', async () => {
      const repo = t.app.get(ConversationsRepository);
      const real = repo.appendMessages.bind(repo);
      const { conversation } = await conversationOf(ctxA);
      const before = t.logs.length;

      // The write commits but its answer is lost: the retry must see it is stored.
      const lostAnswer = vi.spyOn(repo, 'appendMessages').mockImplementationOnce(async (...args) => {
        await real(...args);
        throw new Error('connection reset');
      });
      const first = await svc.completeTurn(ctxA, conversation.id, {
        assistant: { content: 'once', status: 'complete', completionId: 'chatcmpl-r1' },
      });
      expect(first.seq).toBe(3);
      lostAnswer.mockRestore();

      // Two failures before anything is written: the third attempt stores it.
      const transient = vi
        .spyOn(repo, 'appendMessages')
        .mockRejectedValueOnce(new Error('database restarting'))
        .mockRejectedValueOnce(new Error('database restarting'));
      const second = await svc.completeTurn(ctxA, conversation.id, {
        assistant: { content: 'twice', status: 'complete', completionId: 'chatcmpl-r2' },
      });
      expect(transient).toHaveBeenCalledTimes(3);
      transient.mockRestore();
      expect(second.seq).toBe(4);

      const res = await http(a.token).get(`/v1/conversations/${conversation.id}/messages`);
      expect(res.body.data.map((m: { content: string }) => m.content)).toEqual([
        'Hello',
        'Hi there',
        'once',
        'twice',
      ]);
      expect(t.logs.slice(before).filter((l) => l.includes('retrying'))).toHaveLength(3);

      // Three failures: given up, logged as an error, rejected.
      const down = vi.spyOn(repo, 'appendMessages').mockRejectedValue(new Error('database down'));
      await expect(
        svc.completeTurn(ctxA, conversation.id, {
          assistant: { content: 'lost', status: 'complete', completionId: 'chatcmpl-r3' },
        }),
      ).rejects.toThrow('database down');
      expect(down).toHaveBeenCalledTimes(3);
      down.mockRestore();
      expect(t.logs.some((l) => l.includes('Could not store the turn') && l.includes('chatcmpl-r3'))).toBe(
        true,
      );
    });

    it.each([NOBODY, 'not-a-uuid', "1' OR '1'='1", ''])(
      'starts a new conversation for the id %j',
      async (id) => {
        const start = await svc.startTurn(ctxA, turn({ conversationId: id }));
        expect(start.isNew).toBe(true);
        expect(start.conversation.id).toMatch(UUID);
      },
    );

    it('rejects completing a turn of a conversation that is not the caller’s, storing nothing', async () => {
      const mine = await conversationOf(ctxA);
      for (const [ctx, id] of [
        [ctxA2, mine.conversation.id],
        [aInB.ctx, mine.conversation.id],
        [ctxA, NOBODY],
        [ctxA, 'nope'],
      ] as const) {
        await expect(
          svc.completeTurn(ctx, id, { assistant: { content: 'x', status: 'complete', completionId: 'c' } }),
        ).rejects.toMatchObject({ code: 'not_found' });
      }
      const res = await http(a.token).get(`/v1/conversations/${mine.conversation.id}/messages`);
      expect(res.body.data).toHaveLength(2);
    });
  });

  describe('system prompts in turns', () => {
    const userOnly: ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hi' }];

    it('uses a saved prompt by id, remembers it, and follows its edits', async () => {
      const created = await http(a.token).post('/v1/system-prompts', {
        name: 'Pirate',
        content: 'Talk like a pirate.',
      });
      expect(created.status).toBe(201);
      const promptId: string = created.body.id;

      const first = await svc.startTurn(
        ctxA,
        turn({ activeSystemPromptId: promptId, newMessages: userOnly }),
      );
      expect(first.history[0]).toEqual({ role: 'system', content: 'Talk like a pirate.' });
      expect(first.conversation.activeSystemPromptId).toBe(promptId);
      const block = svc.conversationBlock(first.conversation, {
        userMessageId: first.userMessageId,
        assistantMessageId: null,
        seq: 1,
      });
      expect(block.active_system_prompt_id).toBe(promptId);

      const id = first.conversation.id;
      const second = await svc.startTurn(ctxA, turn({ conversationId: id, newMessages: userOnly }));
      expect(second.history[0]).toEqual({ role: 'system', content: 'Talk like a pirate.' });

      await http(a.token).patch(`/v1/system-prompts/${promptId}`, { content: 'Talk like a parrot.' });
      const third = await svc.startTurn(ctxA, turn({ conversationId: id, newMessages: userOnly }));
      expect(third.history[0]).toEqual({ role: 'system', content: 'Talk like a parrot.' });

      // Deleted: the conversation keeps the text it had.
      await http(a.token).delete(`/v1/system-prompts/${promptId}`);
      const fourth = await svc.startTurn(ctxA, turn({ conversationId: id, newMessages: userOnly }));
      expect(fourth.history[0]).toEqual({ role: 'system', content: 'Talk like a parrot.' });
      expect(fourth.conversation.activeSystemPromptId).toBeNull();
      // The system prompt is never stored as a message.
      expect(fourth.history.filter((m) => m.role === 'system')).toHaveLength(1);
    });

    it('ignores a saved prompt id of someone else, or unknown', async () => {
      const theirs = await http(a2.token).post('/v1/system-prompts', {
        name: 'Theirs',
        content: 'Secret prompt',
      });
      for (const activeSystemPromptId of [theirs.body.id as string, NOBODY, 'garbage']) {
        const start = await svc.startTurn(ctxA, turn({ activeSystemPromptId, newMessages: userOnly }));
        expect(start.history).toEqual(userOnly);
        expect(start.conversation.activeSystemPromptId).toBeNull();
      }
    });

    it('prefers system_prompt, then the client system message, and remembers the choice', async () => {
      const first = await svc.startTurn(
        ctxA,
        turn({
          systemPrompt: 'Be brief.',
          newMessages: [{ role: 'system', content: 'Client prompt' }, ...userOnly],
        }),
      );
      expect(first.history).toEqual([{ role: 'system', content: 'Be brief.' }, ...userOnly]);
      const id = first.conversation.id;

      const second = await svc.startTurn(ctxA, turn({ conversationId: id, newMessages: userOnly }));
      expect(second.history[0]).toEqual({ role: 'system', content: 'Be brief.' });

      const third = await svc.startTurn(
        ctxA,
        turn({
          conversationId: id,
          newMessages: [{ role: 'system', content: 'Client prompt' }, ...userOnly],
        }),
      );
      expect(third.history[0]).toEqual({ role: 'system', content: 'Client prompt' });
      expect(third.history.filter((m) => m.role === 'system')).toHaveLength(1);
      expect(third.history).toHaveLength(4);

      const fresh = await svc.startTurn(
        ctxA,
        turn({ newMessages: [{ role: 'developer', content: 'Dev prompt' }, ...userOnly] }),
      );
      expect(fresh.history).toEqual([{ role: 'system', content: 'Dev prompt' }, ...userOnly]);
    });
  });

  describe('title generation', () => {
    it('stores a cleaned title after the first turn', async () => {
      const { conversation } = await conversationOf(ctxA, 'Plan a week in Lisbon');
      let seen: ChatCompletionMessageParam[] = [];
      const title = await svc.generateTitleLater(
        ctxA,
        conversation.id,
        'Plan a week in Lisbon',
        async (prompt) => {
          seen = prompt;
          return '"A Week in Lisbon"\n';
        },
      );
      expect(title).toBe('A Week in Lisbon');
      expect(JSON.stringify(seen)).toContain('Plan a week in Lisbon');
      const res = await http(a.token).get(`/v1/conversations/${conversation.id}`);
      expect(res.body.title).toBe('A Week in Lisbon');
    });

    it('leaves the title empty when generation fails, never throwing', async () => {
      const { conversation } = await conversationOf(ctxA);
      const before = t.logs.length;
      const title = await svc.generateTitleLater(ctxA, conversation.id, 'Hello', async () => {
        throw new Error('upstream down');
      });
      expect(title).toBeNull();
      expect(
        t.logs
          .slice(before)
          .some((l) => l.includes('Title generation failed') && l.includes('upstream down')),
      ).toBe(true);
      const res = await http(a.token).get(`/v1/conversations/${conversation.id}`);
      expect(res.body.title).toBeNull();

      const empty = await svc.generateTitleLater(ctxA, conversation.id, 'Hello', async () => '  "" ');
      expect(empty).toBeNull();
    });

    it('does not replace a title the user set meanwhile, nor title a foreign conversation', async () => {
      const { conversation } = await conversationOf(ctxA);
      await http(a.token).patch(`/v1/conversations/${conversation.id}`, { title: 'Mine' });
      expect(
        await svc.generateTitleLater(ctxA, conversation.id, 'Hello', async () => 'Generated'),
      ).toBeNull();
      expect(await svc.generateTitleLater(ctxA2, conversation.id, 'Hello', async () => 'Hijack')).toBeNull();
      const res = await http(a.token).get(`/v1/conversations/${conversation.id}`);
      expect(res.body.title).toBe('Mine');
    });
  });

  describe('REST', () => {
    it('answers a conversation in both route forms', async () => {
      const { conversation } = await conversationOf(ctxA);
      for (const path of [
        `/v1/conversations/${conversation.id}`,
        `/${a.tenantId}/v1/conversations/${conversation.id}`,
      ]) {
        const res = await http(a.token).get(path);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          id: conversation.id,
          title: null,
          model: 'sim-small',
          created_at: conversation.createdAt.toISOString(),
          updated_at: expect.any(String),
          metadata: {},
        });
      }
    });

    it('lists newest first, by pages', async () => {
      // A user of its own, so the list holds exactly these.
      const user = await addMember(t, a.tenantId);
      const ctx = ctxOf(a.tenantId, user.userId);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await conversationOf(ctx, `q${i}`)).conversation.id);
      // A new turn moves the first conversation to the top.
      await svc.startTurn(
        ctx,
        turn({ conversationId: ids[0], newMessages: [{ role: 'user', content: 'again' }] }),
      );
      const expected = [ids[0], ids[4], ids[3], ids[2], ids[1]];

      const all = await http(user.token).get('/v1/conversations');
      expect(all.status).toBe(200);
      expect(all.body).toMatchObject({ object: 'list', has_more: false });
      expect(all.body.data.map((c: { id: string }) => c.id)).toEqual(expected);
      expect(Object.keys(all.body.data[0]).sort()).toEqual([
        'created_at',
        'id',
        'metadata',
        'model',
        'title',
        'updated_at',
      ]);

      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await http(user.token).get(
          `/${a.tenantId}/v1/conversations?limit=2${after ? `&after=${after}` : ''}`,
        );
        expect(page.status).toBe(200);
        seen.push(...page.body.data.map((c: { id: string }) => c.id));
        if (!page.body.has_more) break;
        expect(page.body.data).toHaveLength(2);
        after = page.body.data.at(-1).id;
      }
      expect(seen).toEqual(expected);

      const last = await http(user.token).get(`/v1/conversations?after=${expected[4]}`);
      expect(last.body).toEqual({ object: 'list', data: [], has_more: false });
    });

    it('lists only the caller’s conversations in this tenant', async () => {
      const mine = await conversationOf(ctxA);
      const inB = await conversationOf(aInB.ctx);
      const listA = await http(a.token).get('/v1/conversations?limit=100');
      const idsA = listA.body.data.map((c: { id: string }) => c.id);
      expect(idsA).toContain(mine.conversation.id);
      expect(idsA).not.toContain(inB.conversation.id);
      const listB = await http(aInB.token).get('/v1/conversations?limit=100');
      const idsB = listB.body.data.map((c: { id: string }) => c.id);
      expect(idsB).toContain(inB.conversation.id);
      expect(idsB).not.toContain(mine.conversation.id);
      const listA2 = await http(a2.token).get('/v1/conversations?limit=100');
      expect(listA2.body.data.map((c: { id: string }) => c.id)).not.toContain(mine.conversation.id);
    });

    it.each([
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=1.5', 'limit'],
      ['after=not-a-uuid', 'after'],
      [`after=${NOBODY}`, 'after'],
      ['unknown=1', 'unknown'],
    ])('answers 400 for ?%s', async (query, param) => {
      const res = await http(a.token).get(`/v1/conversations?${query}`);
      expectErrorEnvelope(res, 400, 'invalid_value', param);
    });

    it("answers 400 for a cursor of another user's conversation", async () => {
      const theirs = await conversationOf(ctxA2);
      const res = await http(a.token).get(`/v1/conversations?after=${theirs.conversation.id}`);
      expectErrorEnvelope(res, 400, 'invalid_value', 'after');
    });

    it('renames a conversation', async () => {
      const { conversation } = await conversationOf(ctxA);
      const res = await http(a.token).patch(`/v1/conversations/${conversation.id}`, { title: 'Renamed' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: conversation.id, title: 'Renamed' });
      expect(new Date(res.body.updated_at).getTime()).toBeGreaterThanOrEqual(
        conversation.updatedAt.getTime(),
      );
      expect((await http(a.token).get(`/v1/conversations/${conversation.id}`)).body.title).toBe('Renamed');
    });

    it.each([
      [{}, 'title'],
      [{ title: '' }, 'title'],
      [{ title: 'x'.repeat(201) }, 'title'],
      [{ title: 5 }, 'title'],
      [{ title: 'ok', extra: true }, 'extra'],
    ])('answers 400 for the PATCH body %j', async (body, param) => {
      const { conversation } = await conversationOf(ctxA);
      const res = await http(a.token).patch(`/v1/conversations/${conversation.id}`, body);
      expectErrorEnvelope(res, 400, 'invalid_value', param);
    });

    it('deletes a conversation with its messages', async () => {
      const { conversation } = await conversationOf(ctxA, 'to be deleted');
      const res = await http(a.token).delete(`/v1/conversations/${conversation.id}`);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expectErrorEnvelope(await http(a.token).get(`/v1/conversations/${conversation.id}`), 404, 'not_found');
      expectErrorEnvelope(
        await http(a.token).get(`/v1/conversations/${conversation.id}/messages`),
        404,
        'not_found',
      );
      expectErrorEnvelope(
        await http(a.token).delete(`/v1/conversations/${conversation.id}`),
        404,
        'not_found',
      );
      const again = await svc.startTurn(ctxA, turn({ conversationId: conversation.id }));
      expect(again.isNew).toBe(true);
      expect(JSON.stringify(again.history)).not.toContain('to be deleted');
    });

    it('answers an empty message list for a conversation without messages', async () => {
      const start = await svc.startTurn(
        ctxA,
        turn({ newMessages: [{ role: 'system', content: 'only a system prompt' }] }),
      );
      expect(start.userMessageId).toBeNull();
      const res = await http(a.token).get(`/v1/conversations/${start.conversation.id}/messages`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ object: 'list', data: [] });
    });

    it('answers 401 without a token', async () => {
      expectErrorEnvelope(await request(t.url).get('/v1/conversations'), 401, 'invalid_token');
      expectErrorEnvelope(await request(t.url).get('/v1/system-prompts'), 401, 'invalid_token');
    });

    it('answers 403 on a tenant the caller is not a member of', async () => {
      const res = await http(a2.token).get(`/${b.tenantId}/v1/conversations`);
      expectErrorEnvelope(res, 403, 'tenant_access_denied');
    });

    describe('404 for anything not the caller’s', () => {
      let foreignIds: Record<string, string>;
      beforeAll(async () => {
        foreignIds = {
          'another user’s': (await conversationOf(ctxA2)).conversation.id,
          'another tenant’s (same user)': (await conversationOf(aInB.ctx)).conversation.id,
          'a nonexistent': NOBODY,
          'a malformed': 'not-a-uuid',
          'an injection-like': "1'%20OR%20'1'='1",
        };
      });

      const routes: [string, (id: string) => Promise<request.Response>][] = [
        ['GET', (id) => http(a.token).get(`/v1/conversations/${id}`)],
        ['GET (tenant path)', (id) => http(a.token).get(`/${a.tenantId}/v1/conversations/${id}`)],
        ['PATCH', (id) => http(a.token).patch(`/v1/conversations/${id}`, { title: 'Hijacked' })],
        ['DELETE', (id) => http(a.token).delete(`/v1/conversations/${id}`)],
        ['GET messages', (id) => http(a.token).get(`/v1/conversations/${id}/messages`)],
        [
          'GET messages (tenant path)',
          (id) => http(a.token).get(`/${a.tenantId}/v1/conversations/${id}/messages`),
        ],
      ];

      it.each(routes)('%s', async (_name, call) => {
        for (const [what, id] of Object.entries(foreignIds)) {
          const res = await call(id);
          expect({ what, status: res.status }).toEqual({ what, status: 404 });
          expectErrorEnvelope(res, 404, 'not_found');
          expect(JSON.stringify(res.body)).not.toContain('Hello');
        }
        // And the foreign conversations are untouched.
        expect(
          (await http(a2.token).get(`/v1/conversations/${foreignIds['another user’s']}`)).body.title,
        ).toBeNull();
        expect(
          (
            await http(aInB.token).get(
              `/v1/conversations/${foreignIds['another tenant’s (same user)']}/messages`,
            )
          ).body.data,
        ).toHaveLength(2);
      });
    });
  });

  describe('system prompts REST', () => {
    it('creates, lists, reads, updates and deletes', async () => {
      const user = await addMember(t, a.tenantId);
      const api = http(user.token);
      const created = await api.post('/v1/system-prompts', { name: 'Short', content: 'Be short.' });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        id: expect.stringMatching(UUID),
        name: 'Short',
        content: 'Be short.',
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      const id: string = created.body.id;
      const second = await api.post(`/${a.tenantId}/v1/system-prompts`, {
        name: 'Long',
        content: 'Be thorough.',
      });
      expect(second.status).toBe(201);

      const list = await api.get('/v1/system-prompts');
      expect(list.status).toBe(200);
      expect(list.body).toEqual({ object: 'list', data: [created.body, second.body] });

      expect((await api.get(`/v1/system-prompts/${id}`)).body).toEqual(created.body);
      expect((await api.get(`/${a.tenantId}/v1/system-prompts/${id}`)).body).toEqual(created.body);

      const renamed = await api.patch(`/v1/system-prompts/${id}`, { name: 'Shorter' });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toMatchObject({ id, name: 'Shorter', content: 'Be short.' });
      const rewritten = await api.patch(`/v1/system-prompts/${id}`, { name: 'Tiny', content: 'One line.' });
      expect(rewritten.body).toMatchObject({ name: 'Tiny', content: 'One line.' });
      expect(rewritten.body.created_at).toBe(created.body.created_at);

      const deleted = await api.delete(`/v1/system-prompts/${id}`);
      expect(deleted.status).toBe(204);
      expectErrorEnvelope(await api.get(`/v1/system-prompts/${id}`), 404, 'not_found');
      expect((await api.get('/v1/system-prompts')).body.data.map((p: { id: string }) => p.id)).toEqual([
        second.body.id,
      ]);
    });

    it.each([
      [{ content: 'x' }, 'name'],
      [{ name: 'x' }, 'content'],
      [{ name: '', content: 'x' }, 'name'],
      [{ name: 'x', content: '' }, 'content'],
      [{ name: 'x'.repeat(201), content: 'x' }, 'name'],
      [{ name: 'x', content: 7 }, 'content'],
      [{ name: 'x', content: 'y', id: 'mine' }, 'id'],
    ])('answers 400 for the POST body %j', async (body, param) => {
      expectErrorEnvelope(await http(a.token).post('/v1/system-prompts', body), 400, 'invalid_value', param);
    });

    it.each([
      [{ name: '' }, 'name'],
      [{ content: null }, 'content'],
      [{ other: 1 }, 'other'],
    ])('answers 400 for the PATCH body %j', async (body, param) => {
      const created = await http(a.token).post('/v1/system-prompts', { name: 'p', content: 'c' });
      expectErrorEnvelope(
        await http(a.token).patch(`/v1/system-prompts/${created.body.id}`, body),
        400,
        'invalid_value',
        param,
      );
    });

    it('answers 404 on every route for another user’s, another tenant’s, unknown and malformed ids', async () => {
      const ofA2 = await http(a2.token).post('/v1/system-prompts', { name: 'a2', content: 'Secret A2' });
      const ofAInB = await http(aInB.token).post('/v1/system-prompts', { name: 'b', content: 'Secret B' });
      for (const id of [ofA2.body.id as string, ofAInB.body.id as string, NOBODY, 'not-a-uuid']) {
        const api = http(a.token);
        for (const res of [
          await api.get(`/v1/system-prompts/${id}`),
          await api.get(`/${a.tenantId}/v1/system-prompts/${id}`),
          await api.patch(`/v1/system-prompts/${id}`, { name: 'Hijacked' }),
          await api.delete(`/v1/system-prompts/${id}`),
        ]) {
          expectErrorEnvelope(res, 404, 'not_found');
          expect(JSON.stringify(res.body)).not.toContain('Secret');
        }
      }
      expect((await http(a2.token).get(`/v1/system-prompts/${ofA2.body.id}`)).body.name).toBe('a2');
      expect((await http(aInB.token).get(`/v1/system-prompts/${ofAInB.body.id}`)).body.name).toBe('b');
      const listA = await http(a.token).get('/v1/system-prompts');
      expect(JSON.stringify(listA.body)).not.toContain('Secret');
    });
  });

  it('removes a deleted tenant’s conversations and prompts', async () => {
    const c = await setupTenant(t, { baseUrl: UPSTREAM });
    const ctx = ctxOf(c.tenantId, c.userId);
    const { conversation } = await conversationOf(ctx);
    const prompt = await http(c.token).post('/v1/system-prompts', { name: 'p', content: 'c' });
    expect((await admin(t).delete(`/admin/tenants/${c.tenantId}`)).status).toBe(204);
    await expect
      .poll(async () => (await svc.startTurn(ctx, turn({ conversationId: conversation.id }))).isNew)
      .toBe(true);
    await expect
      .poll(
        async () => (await svc.startTurn(ctx, turn({ activeSystemPromptId: prompt.body.id }))).history.length,
      )
      .toBe(1);
  });
});

describe('conversations with persistence off', () => {
  let t: TestApp;
  let tenant: TenantSetup;
  beforeAll(async () => {
    t = await createTestApp({ PERSISTENCE: 'off' });
    tenant = await setupTenant(t, { baseUrl: UPSTREAM });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('still answers the REST routes: empty lists and 404', async () => {
    const auth = { Authorization: `Bearer ${tenant.token}` };
    const list = await request(t.url).get('/v1/conversations').set(auth);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ object: 'list', data: [], has_more: false });
    expectErrorEnvelope(await request(t.url).get(`/v1/conversations/${NOBODY}`).set(auth), 404, 'not_found');
    expectErrorEnvelope(
      await request(t.url).get(`/v1/conversations/${NOBODY}/messages`).set(auth),
      404,
      'not_found',
    );
    const prompts = await request(t.url).get('/v1/system-prompts').set(auth);
    expect(prompts.body).toEqual({ object: 'list', data: [] });
  });
});
