import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { adminAuth, bearer, userToken } from '../utils/tokens.js';

function providerBody(name: string, models: string[]) {
  return {
    name,
    kind: 'chat_completions',
    base_url: `https://${name}.example.com/v1`,
    api_key: `sk-${name}-secret`,
    default_model: models[0],
    models: models.map((id) => ({ id, context_length: 8192 })),
  };
}

describe('the tenant guard (through GET /v1/models)', () => {
  let t: TestApp;
  const admin = () => request(t.url);
  const models = async (path: string, claims: Parameters<typeof userToken>[0]) =>
    request(t.url)
      .get(path)
      .set(bearer(userToken(claims)));

  beforeAll(async () => {
    // A long cache: membership changes must still show at once (invalidation, not expiry).
    t = await createTestApp({ TENANT_CONFIG_CACHE_MS: '60000' });
    for (const [id, model] of [
      ['alpha', 'alpha-model'],
      ['beta', 'beta-model'],
      ['gamma', 'gamma-model'],
    ] as const) {
      await admin().post('/admin/tenants').set(adminAuth).send({ id, name: id }).expect(201);
      await admin()
        .post(`/admin/tenants/${id}/providers`)
        .set(adminAuth)
        .send(providerBody(`${id}-p`, [model]))
        .expect(201);
    }
    await admin().put('/admin/tenants/alpha/members/solo').set(adminAuth).send({}).expect(200);
    await admin().put('/admin/tenants/alpha/members/multi').set(adminAuth).send({}).expect(200);
    await admin().put('/admin/tenants/beta/members/multi').set(adminAuth).send({ role: 'owner' }).expect(200);
  });
  afterAll(async () => {
    await t?.close();
  });

  const modelIds = (res: request.Response) => (res.body.data as { id: string }[]).map((m) => m.id);

  it('uses the tenant_id claim on /v1/...', async () => {
    const res = await models('/v1/models', { sub: 'multi', tenant_id: 'beta' });
    expect(res.status).toBe(200);
    expect(modelIds(res)).toEqual(['beta-model']);
    expect(res.body.data[0]).toEqual({
      id: 'beta-model',
      object: 'model',
      created: expect.any(Number),
      owned_by: 'beta-p',
    });
    expect(Math.abs(res.body.data[0].created - Date.now() / 1000)).toBeLessThan(600);
  });

  it("uses the user's only membership without a tenant_id claim", async () => {
    const res = await models('/v1/models', { sub: 'solo' });
    expect(res.status).toBe(200);
    expect(modelIds(res)).toEqual(['alpha-model']);
  });

  it('answers 400 tenant_required for a user with two memberships and no tenant_id claim', async () => {
    expectErrorEnvelope(await models('/v1/models', { sub: 'multi' }), 400, 'tenant_required');
  });

  it('answers 400 tenant_required for a user with no membership at all', async () => {
    expectErrorEnvelope(await models('/v1/models', { sub: 'nobody' }), 400, 'tenant_required');
  });

  it("uses the tenants claim's only tenant", async () => {
    const res = await models('/v1/models', { sub: 'claims-only', tenants: ['gamma'] });
    expect(res.status).toBe(200);
    expect(modelIds(res)).toEqual(['gamma-model']);
  });

  it('takes the tenant from the path', async () => {
    const res = await models('/beta/v1/models', { sub: 'multi', tenant_id: 'alpha' });
    expect(res.status).toBe(200);
    expect(modelIds(res)).toEqual(['beta-model']);
  });

  it('accepts a tenant listed in the tenants claim without a membership row', async () => {
    const res = await models('/gamma/v1/models', { sub: 'outsider', tenants: ['beta', 'gamma'] });
    expect(res.status).toBe(200);
    expect(modelIds(res)).toEqual(['gamma-model']);
  });

  it('accepts the tenant_id claim as a listing', async () => {
    expect((await models('/gamma/v1/models', { sub: 'outsider', tenant_id: 'gamma' })).status).toBe(200);
  });

  it('retrieves one model, also with a slash in its id', async () => {
    await admin()
      .patch('/admin/tenants/gamma/providers/' + (await providerId('gamma')))
      .set(adminAuth)
      .send({
        models: [
          { id: 'gamma-model', context_length: 1 },
          { id: 'org/slashed', context_length: 1 },
        ],
      })
      .expect(200);
    const one = await models('/gamma/v1/models/org/slashed', { sub: 'x', tenant_id: 'gamma' });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: 'org/slashed', object: 'model', owned_by: 'gamma-p' });
    expectErrorEnvelope(
      await models('/v1/models/nope', { sub: 'x', tenant_id: 'gamma' }),
      404,
      'model_not_found',
    );
  });

  describe('403 tenant_access_denied, the same for a tenant that does not exist', () => {
    const cases: [string, string, Parameters<typeof userToken>[0]][] = [
      ['a non-member on the path form', '/beta/v1/models', { sub: 'solo' }],
      [
        'a non-member whose tenant_id claim names another tenant',
        '/beta/v1/models',
        { sub: 'solo', tenant_id: 'alpha' },
      ],
      [
        'a tenants claim not naming the path tenant',
        '/beta/v1/models',
        { sub: 'outsider', tenants: ['gamma'] },
      ],
      ['a tenant that does not exist (path)', '/nowhere/v1/models', { sub: 'solo' }],
      ['a tenant that does not exist (claim)', '/v1/models', { sub: 'solo', tenant_id: 'nowhere' }],
      [
        'a tenant that does not exist, listed in the claims',
        '/nowhere/v1/models',
        { sub: 'solo', tenants: ['nowhere'] },
      ],
      ['an impossible tenant id', '/-bad-/v1/models', { sub: 'solo' }],
    ];
    let reference: unknown;
    it.each(cases)('%s', async (_name, path, claims) => {
      const res = await models(path, claims);
      expectErrorEnvelope(res, 403, 'tenant_access_denied', null);
      reference ??= res.body;
      expect(res.body).toEqual(reference);
    });
  });

  it('sees a new membership and a removed one at once', async () => {
    expectErrorEnvelope(await models('/gamma/v1/models', { sub: 'solo' }), 403, 'tenant_access_denied');
    await admin().put('/admin/tenants/gamma/members/solo').set(adminAuth).send({}).expect(200);
    expect((await models('/gamma/v1/models', { sub: 'solo' })).status).toBe(200);
    // Two memberships now: /v1 needs a tenant_id claim.
    expectErrorEnvelope(await models('/v1/models', { sub: 'solo' }), 400, 'tenant_required');
    await admin().delete('/admin/tenants/gamma/members/solo').set(adminAuth).expect(204);
    expectErrorEnvelope(await models('/gamma/v1/models', { sub: 'solo' }), 403, 'tenant_access_denied');
    expect((await models('/v1/models', { sub: 'solo' })).status).toBe(200);
  });

  it('sees a created and a deleted tenant at once', async () => {
    const claims = { sub: 'u', tenant_id: 'late' };
    expectErrorEnvelope(await models('/v1/models', claims), 403, 'tenant_access_denied');
    await admin().post('/admin/tenants').set(adminAuth).send({ id: 'late', name: 'Late' }).expect(201);
    expect((await models('/v1/models', claims)).body).toEqual({ object: 'list', data: [] });
    await admin().delete('/admin/tenants/late').set(adminAuth).expect(204);
    expectErrorEnvelope(await models('/v1/models', claims), 403, 'tenant_access_denied');
  });

  it('sees a new provider at once', async () => {
    await admin()
      .post('/admin/tenants/alpha/providers')
      .set(adminAuth)
      .send(providerBody('alpha-2', ['extra']))
      .expect(201);
    const res = await models('/v1/models', { sub: 'solo' });
    expect(modelIds(res)).toEqual(['alpha-model', 'extra']);
  });

  async function providerId(tenantId: string): Promise<string> {
    const res = await admin().get(`/admin/tenants/${tenantId}/providers`).set(adminAuth).expect(200);
    return res.body.data[0].id as string;
  }
});
