import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApps, hasRedis, type TestApp, type TestAppGroup } from '../utils/create-test-app.js';
import { setupTenant, type TenantSetup } from '../utils/factories.js';
import { bearer } from '../utils/tokens.js';
import { UpstreamSimulator } from '../utils/upstream-simulator.js';

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

/**
 * Behind a load balancer, the next turn of a conversation may reach another instance than the one
 * still storing the previous turn (its writes happen after the client has the answer).
 */
describe.skipIf(!hasRedis)('conversations across instances (shared Redis and database)', () => {
  let sim: UpstreamSimulator;
  let group: TestAppGroup;
  let a: TestApp;
  let b: TestApp;
  let owner: TenantSetup;
  let db: pg.Client;

  beforeAll(async () => {
    sim = await UpstreamSimulator.start();
    group = await createTestApps(2);
    [a, b] = group.apps as [TestApp, TestApp];
    owner = await setupTenant(a, { baseUrl: sim.baseUrl });
    db = new pg.Client({ connectionString: b.config.databaseUrl });
    await db.connect();
    // The first assistant message stored from now on fails once, so its write is retried later
    // (200 ms): a window in which the client already has the answer it belongs to.
    await db.query(`
      CREATE SEQUENCE assistant_inserts;
      CREATE FUNCTION fail_first_assistant_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.role = 'assistant' AND nextval('assistant_inserts') = 1 THEN
          RAISE EXCEPTION 'injected failure';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_first_assistant_insert BEFORE INSERT ON messages
        FOR EACH ROW EXECUTE FUNCTION fail_first_assistant_insert();
    `);
  });
  afterAll(async () => {
    await db?.end();
    await group?.close();
    await sim?.stop();
  });

  it('continues on instance B from the history instance A is still storing, in order', async () => {
    sim.enqueue({ kind: 'text', text: 'First answer.' }, { kind: 'text', text: 'Second answer.' });
    const first = await request(a.url)
      .post('/v1/chat/completions')
      .set(bearer(owner.token))
      .send({ model: 'sim-small', messages: [user('First question')] })
      .expect(200);
    const conversationId = first.body._conversation.id as string;

    // At once, on the other instance: A's write of the answer is still being retried.
    const second = await request(b.url)
      .post('/v1/chat/completions')
      .set(bearer(owner.token))
      .set('x-conversation-id', conversationId)
      .send({ model: 'sim-small', messages: [user('Second question')] })
      .expect(200);

    expect(second.body._conversation.id).toBe(conversationId);
    expect(sim.lastRequest()!.body.messages).toEqual([
      user('First question'),
      assistant('First answer.'),
      user('Second question'),
    ]);
    const stored = await db.query<{ role: string; content: string; seq: number }>(
      `SELECT role, content #>> '{}' AS content, seq FROM messages WHERE conversation_id = $1 ORDER BY seq`,
      [conversationId],
    );
    expect(stored.rows.slice(0, 3)).toEqual([
      { role: 'user', content: 'First question', seq: 1 },
      { role: 'assistant', content: 'First answer.', seq: 2 },
      { role: 'user', content: 'Second question', seq: 3 },
    ]);
  });
});
