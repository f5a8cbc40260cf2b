import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApps, hasRedis, type TestAppGroup } from '../utils/create-test-app.js';
import { adminAuth, bearer, userToken } from '../utils/tokens.js';

/** Polls until `check` passes; returns how long that took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`not seen within ${ms} ms`);
}

describe.skipIf(!hasRedis)('tenant config across instances (shared Redis)', () => {
  let group: TestAppGroup;
  let a: string;
  let b: string;
  const token = userToken({ sub: 'member-1' }, { expiresIn: 3600 });
  const modelsOnB = async (tenant = 'shared') => request(b).get(`/${tenant}/v1/models`).set(bearer(token));

  beforeAll(async () => {
    // Caches far longer than the one-second budget: only invalidation can explain a fast update.
    group = await createTestApps(2, { TENANT_CONFIG_CACHE_MS: '30000' });
    [a, b] = group.apps.map((x) => x.url) as [string, string];
    await request(a).post('/admin/tenants').set(adminAuth).send({ id: 'shared', name: 'Shared' }).expect(201);
    await request(a).put('/admin/tenants/shared/members/member-1').set(adminAuth).send({}).expect(200);
  });
  afterAll(async () => {
    await group?.close();
  });

  it('instance B sees a provider added through instance A within a second', async () => {
    const before = await modelsOnB();
    expect(before.status).toBe(200);
    expect(before.body.data).toEqual([]);
    await request(a)
      .post('/admin/tenants/shared/providers')
      .set(adminAuth)
      .send({
        name: 'p1',
        kind: 'chat_completions',
        base_url: 'https://p1.example.com/v1',
        api_key: 'sk-p1',
        default_model: 'fresh-model',
        models: [{ id: 'fresh-model', context_length: 4096 }],
      })
      .expect(201);
    const took = await within(1000, async () => (await modelsOnB()).body.data?.[0]?.id === 'fresh-model');
    expect(took).toBeLessThan(1000);
  });

  it('instance B sees a removed membership, a new one and a deleted tenant within a second', async () => {
    await request(a).delete('/admin/tenants/shared/members/member-1').set(adminAuth).expect(204);
    await within(1000, async () => (await modelsOnB()).status === 403);
    await request(a).put('/admin/tenants/shared/members/member-1').set(adminAuth).send({}).expect(200);
    await within(1000, async () => (await modelsOnB()).status === 200);
    await request(a).delete('/admin/tenants/shared').set(adminAuth).expect(204);
    await within(1000, async () => (await modelsOnB()).status === 403);
  });

  it('instance B sees a tenant created through A at once (no stale "does not exist")', async () => {
    const claims = bearer(userToken({ sub: 'u', tenant_id: 'newcomer' }));
    expect((await request(b).get('/v1/models').set(claims)).status).toBe(403);
    await request(a).post('/admin/tenants').set(adminAuth).send({ id: 'newcomer', name: 'New' }).expect(201);
    await within(1000, async () => (await request(b).get('/v1/models').set(claims)).status === 200);
  });
});
