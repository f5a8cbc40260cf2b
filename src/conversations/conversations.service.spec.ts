import { describe, expect, it } from 'vitest';
import type { TenantContext } from '../common/context/request-context.js';
import { MemoryStore } from '../store/memory.store.js';
import type { TenantEvents } from '../tenants/tenant-events.service.js';
import type { StartTurnInput } from './conversation.types.js';
import type { ConversationsRepository } from './conversations.repository.js';
import { ConversationsService, MAX_BACKGROUND_WRITES } from './conversations.service.js';
import { TurnWriteMarks } from './turn-write-marks.js';

/** A repository whose new-conversation inserts, alone or in batches, wait until `commitAll` is called. */
function slowDatabase() {
  let release!: () => void;
  const committed = new Promise<void>((resolve) => (release = resolve));
  let stored = 0;
  const repo = {
    withoutTransaction: (work: (tx: unknown) => Promise<unknown>) =>
      work({
        createConversation: async () => {
          await committed;
          stored++;
        },
      }),
    createConversations: async (conversations: unknown[]) => {
      await committed;
      stored += conversations.length;
    },
  } as unknown as ConversationsRepository;
  return { repo, commitAll: () => release(), stored: () => stored };
}

const ctx = { tenantId: 'acme', userId: 'ada' } as TenantContext;
const input: StartTurnInput = {
  model: 'sim-small',
  providerId: 'p1',
  toolsEnabled: false,
  activeTools: [],
  hints: {},
  newMessages: [{ role: 'user', content: 'Hello' }],
};
const events = { onChange: () => undefined } as unknown as TenantEvents;

describe('ConversationsService new conversations while the database falls behind', () => {
  it('answers at once while the backlog is small, then waits for its own write', async () => {
    const db = slowDatabase();
    const sut = new ConversationsService(db.repo, events, new TurnWriteMarks(new MemoryStore()));

    for (let i = 0; i < MAX_BACKGROUND_WRITES; i++) {
      const start = await sut.startTurn(ctx, input);
      expect(start.isNew).toBe(true);
    }
    let settled = false;
    const overLimit = sut.startTurn(ctx, input).then((start) => {
      settled = true;
      return start;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);

    db.commitAll();
    await expect(overLimit).resolves.toMatchObject({ isNew: true, seq: 1 });
    for (let i = 0; i < 10 && db.stored() < MAX_BACKGROUND_WRITES + 1; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(db.stored()).toBe(MAX_BACKGROUND_WRITES + 1);
  });
});
