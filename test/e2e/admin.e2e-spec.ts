import request from 'supertest';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/common/errors/parley-error.js';
import { ProviderCatalogService } from '../../src/providers/provider-catalog.service.js';
import { STORE, type Store } from '../../src/store/store.port.js';
import { TenantConfigService, tenantConfigKey } from '../../src/tenants/tenant-config.service.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { adminAuth, bearer, userToken } from '../utils/tokens.js';

const SECRET_KEY = 'sk-proj-SUPER-SECRET-KEY-0123456789';
const ROTATED_KEY = 'sk-proj-ROTATED-SECRET-KEY-9876543210';

function providerBody(overrides: Record<string, unknown> = {}) {
  return {
    name: 'openai',
    kind: 'chat_completions',
    base_url: 'https://api.openai.com/v1',
    api_key: SECRET_KEY,
    default_model: 'gpt-4o-mini',
    models: [
      { id: 'gpt-4o-mini', context_length: 128000 },
      { id: 'o3', context_length: 200000, capabilities: { vision: false, audio: true } },
    ],
    headers: { 'OpenAI-Organization': 'org-1', 'X-Api-Key': 'header-secret-value' },
    ...overrides,
  };
}

describe('admin API', () => {
  let t: TestApp;
  const bodies: string[] = [];
  const api = () => {
    const agent = request(t.url);
    const record = (req: request.Test) =>
      req.set(adminAuth).on('response', (res: request.Response) => bodies.push(res.text));
    return {
      get: (path: string) => record(agent.get(path)),
      post: (path: string) => record(agent.post(path)),
      put: (path: string) => record(agent.put(path)),
      patch: (path: string) => record(agent.patch(path)),
      delete: (path: string) => record(agent.delete(path)),
    };
  };

  beforeAll(async () => {
    t = await createTestApp({ LOG_LEVEL: 'debug' });
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('tenants', () => {
    it('creates a tenant with every field', async () => {
      const res = await api()
        .post('/admin/tenants')
        .send({
          id: 'acme',
          name: 'Acme',
          default_model: 'gpt-4o-mini',
          rate_limit: { requests: 10, window_s: 60 },
          settings: { stream_default: true, theme: 'dark' },
        });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: 'acme',
        name: 'Acme',
        default_model: 'gpt-4o-mini',
        rate_limit: { requests: 10, window_s: 60 },
        settings: { stream_default: true, theme: 'dark' },
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
    });

    it('generates a UUID id when none is given', async () => {
      const res = await api().post('/admin/tenants').send({ name: 'Anonymous' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        name: 'Anonymous',
        default_model: null,
        rate_limit: null,
        settings: {},
      });
      expect(res.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      await api().delete(`/admin/tenants/${res.body.id}`).expect(204);
    });

    it('answers 409 conflict for a duplicate id', async () => {
      expectErrorEnvelope(
        await api().post('/admin/tenants').send({ id: 'acme', name: 'Again' }),
        409,
        'conflict',
        'id',
      );
    });

    it.each([
      [{}, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 5 }, 'name'],
      [{ name: 'x', id: 'has space' }, 'id'],
      [{ name: 'x', id: '_leading' }, 'id'],
      [{ name: 'x', id: 'a'.repeat(65) }, 'id'],
      [{ name: 'x', rate_limit: { requests: 10 } }, 'rate_limit.window_s'],
      [{ name: 'x', rate_limit: { requests: 1.5, window_s: 1 } }, 'rate_limit.requests'],
      [{ name: 'x', settings: [] }, 'settings'],
      [{ name: 'x', unknown_field: true }, 'unknown_field'],
    ])('answers 400 invalid_value for %j', async (body, param) => {
      expectErrorEnvelope(await api().post('/admin/tenants').send(body), 400, 'invalid_value', param);
    });

    it('answers 400 for a body that is not JSON object', async () => {
      const res = await api().post('/admin/tenants').set('Content-Type', 'application/json').send('["x"]');
      expect(res.status).toBe(400);
      expect(res.body.error.type).toBe('invalid_request_error');
    });

    it('reads, lists and pages', async () => {
      expect((await api().get('/admin/tenants/acme')).body.name).toBe('Acme');
      await api().post('/admin/tenants').send({ id: 'bravo', name: 'Bravo' }).expect(201);
      await api().post('/admin/tenants').send({ id: 'charlie', name: 'Charlie' }).expect(201);
      const page1 = await api().get('/admin/tenants?limit=2');
      expect(page1.body).toMatchObject({ object: 'list', has_more: true });
      expect(page1.body.data.map((x: { id: string }) => x.id)).toEqual(['acme', 'bravo']);
      const page2 = await api().get('/admin/tenants?limit=2&after=bravo');
      expect(page2.body.data.map((x: { id: string }) => x.id)).toEqual(['charlie']);
      expect(page2.body.has_more).toBe(false);
      expectErrorEnvelope(await api().get('/admin/tenants?limit=0'), 400, 'invalid_value', 'limit');
      expectErrorEnvelope(await api().get('/admin/tenants?bogus=1'), 400, 'invalid_value', 'bogus');
    });

    it('patches fields and clears nullable ones', async () => {
      const res = await api()
        .patch('/admin/tenants/acme')
        .send({ name: 'Acme Inc', rate_limit: null, default_model: null });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: 'acme',
        name: 'Acme Inc',
        rate_limit: null,
        default_model: null,
        settings: { stream_default: true },
      });
      const again = await api()
        .patch('/admin/tenants/acme')
        .send({ settings: { stream_default: false } });
      expect(again.body.settings).toEqual({ stream_default: false });
      expect(again.body.name).toBe('Acme Inc');
      expectErrorEnvelope(
        await api().patch('/admin/tenants/acme').send({ name: null }),
        400,
        'invalid_value',
        'name',
      );
      expectErrorEnvelope(
        await api().patch('/admin/tenants/acme').send({ id: 'renamed' }),
        400,
        'invalid_value',
        'id',
      );
    });

    it('answers 404 not_found for unknown tenants', async () => {
      expectErrorEnvelope(await api().get('/admin/tenants/nope'), 404, 'not_found');
      expectErrorEnvelope(await api().patch('/admin/tenants/nope').send({ name: 'x' }), 404, 'not_found');
      expectErrorEnvelope(await api().delete('/admin/tenants/nope'), 404, 'not_found');
      expectErrorEnvelope(await api().get('/admin/tenants/not%20valid'), 404, 'not_found');
      expectErrorEnvelope(await api().get('/admin/tenants/nope/members'), 404, 'not_found');
      expectErrorEnvelope(await api().put('/admin/tenants/nope/members/u1').send({}), 404, 'not_found');
      expectErrorEnvelope(await api().get('/admin/tenants/nope/providers'), 404, 'not_found');
      expectErrorEnvelope(
        await api().post('/admin/tenants/nope/providers').send(providerBody()),
        404,
        'not_found',
      );
    });
  });

  describe('members', () => {
    it('adds, changes and lists members', async () => {
      const added = await api().put('/admin/tenants/acme/members/user-1').send({});
      expect(added.status).toBe(200);
      expect(added.body).toMatchObject({ tenant_id: 'acme', user_id: 'user-1', role: 'member' });
      const owner = await api().put('/admin/tenants/acme/members/user-1').send({ role: 'owner' });
      expect(owner.body.role).toBe('owner');
      const kept = await api().put('/admin/tenants/acme/members/user-1').send({});
      expect(kept.body.role).toBe('owner');
      await api().put('/admin/tenants/acme/members/auth0%7C42').send({ role: 'member' }).expect(200);
      const list = await api().get('/admin/tenants/acme/members');
      expect(list.body).toMatchObject({ object: 'list', has_more: false });
      expect(list.body.data.map((m: { user_id: string; role: string }) => [m.user_id, m.role])).toEqual([
        ['auth0|42', 'member'],
        ['user-1', 'owner'],
      ]);
    });

    it('validates the role and the user id', async () => {
      expectErrorEnvelope(
        await api().put('/admin/tenants/acme/members/u2').send({ role: 'admin' }),
        400,
        'invalid_value',
        'role',
      );
      expectErrorEnvelope(
        await api()
          .put(`/admin/tenants/acme/members/${'u'.repeat(256)}`)
          .send({}),
        400,
        'invalid_value',
        'user_id',
      );
    });

    it('removes a member, and 404 for one that is not', async () => {
      await api().delete('/admin/tenants/acme/members/auth0%7C42').expect(204);
      expectErrorEnvelope(await api().delete('/admin/tenants/acme/members/auth0%7C42'), 404, 'not_found');
    });
  });

  describe('providers', () => {
    let providerId: string;

    it('creates a provider without ever returning its key', async () => {
      const res = await api().post('/admin/tenants/acme/providers').send(providerBody());
      expect(res.status).toBe(201);
      providerId = res.body.id;
      expect(res.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        tenant_id: 'acme',
        name: 'openai',
        kind: 'chat_completions',
        base_url: 'https://api.openai.com/v1',
        has_api_key: true,
        default_model: 'gpt-4o-mini',
        models: [
          {
            id: 'gpt-4o-mini',
            context_length: 128000,
            capabilities: { tools: true, vision: true, audio: false, reasoning: true, verbosity: true },
          },
          {
            id: 'o3',
            context_length: 200000,
            capabilities: { tools: true, vision: false, audio: true, reasoning: true, verbosity: true },
          },
        ],
        is_default: true,
        headers: { 'OpenAI-Organization': 'org-1', 'X-Api-Key': '***' },
        timeout_ms: 120000,
        store_responses: true,
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
    });

    it('answers 409 for a duplicate name in the tenant, but allows it in another tenant', async () => {
      expectErrorEnvelope(
        await api().post('/admin/tenants/acme/providers').send(providerBody()),
        409,
        'conflict',
        'name',
      );
      const other = await api().post('/admin/tenants/bravo/providers').send(providerBody());
      expect(other.status).toBe(201);
      expect(other.body.is_default).toBe(true);
    });

    it.each([
      [{ kind: 'completions' }, 'kind'],
      [{ base_url: 'ftp://example.com' }, 'base_url'],
      [{ base_url: 'http://169.254.169.254/latest' }, 'base_url'],
      [{ base_url: 'http://[fd00:ec2::254]/' }, 'base_url'],
      [{ base_url: 'http://metadata.google.internal/' }, 'base_url'],
      [{ base_url: 'http://100.100.100.200/' }, 'base_url'],
      [{ base_url: 'http://169.254.10.10:8080/v1' }, 'base_url'],
      [{ models: [] }, 'models'],
      [{ models: [{ id: 'm' }] }, 'models[0].context_length'],
      [
        { models: [{ id: 'gpt-4o-mini', context_length: 1, capabilities: { audio: 'yes' } }] },
        'models[0].capabilities.audio',
      ],
      [
        {
          models: [
            { id: 'a', context_length: 1 },
            { id: 'a', context_length: 2 },
          ],
          default_model: 'a',
        },
        'models[1].id',
      ],
      [{ default_model: 'not-listed' }, 'default_model'],
      [{ timeout_ms: 0 }, 'timeout_ms'],
      [{ headers: { 'X-Ok': 5 } }, 'headers'],
      [{ name: undefined }, 'name'],
      [{ api_key: 42 }, 'api_key'],
      [{ extra: 1 }, 'extra'],
    ])('answers 400 invalid_value for %j', async (overrides, param) => {
      const res = await api()
        .post('/admin/tenants/acme/providers')
        .send(providerBody({ name: 'other', ...overrides }));
      expectErrorEnvelope(res, 400, 'invalid_value', param);
    });

    it('reads and lists providers', async () => {
      const one = await api().get(`/admin/tenants/acme/providers/${providerId}`);
      expect(one.body).toMatchObject({ id: providerId, has_api_key: true });
      const list = await api().get('/admin/tenants/acme/providers');
      expect(list.body.object).toBe('list');
      expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([providerId]);
    });

    it('answers 404 for unknown providers and for providers of another tenant', async () => {
      const bravo = (await api().get('/admin/tenants/bravo/providers')).body.data[0].id as string;
      expectErrorEnvelope(await api().get(`/admin/tenants/acme/providers/${bravo}`), 404, 'not_found');
      expectErrorEnvelope(
        await api().get('/admin/tenants/acme/providers/00000000-0000-4000-8000-000000000000'),
        404,
        'not_found',
      );
      expectErrorEnvelope(await api().get('/admin/tenants/acme/providers/not-a-uuid'), 404, 'not_found');
      expectErrorEnvelope(
        await api().patch('/admin/tenants/acme/providers/not-a-uuid').send({ name: 'x' }),
        404,
        'not_found',
      );
      expectErrorEnvelope(await api().delete(`/admin/tenants/acme/providers/${bravo}`), 404, 'not_found');
    });

    it('keeps the key encrypted at rest and in the store', async () => {
      const rows = await t.app
        .get(DataSource)
        .query(`SELECT api_key_encrypted FROM providers WHERE id = $1`, [providerId]);
      expect(rows[0].api_key_encrypted).toMatch(/^v1\./);
      expect(rows[0].api_key_encrypted).not.toContain(SECRET_KEY);
      const config = await t.app.get(TenantConfigService).get('acme');
      expect(config!.providers[0].apiKey).toBe(SECRET_KEY);
      const stored = await t.app.get<Store>(STORE).get(tenantConfigKey('acme'));
      expect(stored).toContain(providerId);
      expect(stored).not.toContain(SECRET_KEY);
    });

    it('patches a provider, replacing the key only when given', async () => {
      const renamed = await api()
        .patch(`/admin/tenants/acme/providers/${providerId}`)
        .send({ name: 'main', timeout_ms: 5000 });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toMatchObject({ name: 'main', timeout_ms: 5000, has_api_key: true });
      const before = (await t.app.get(TenantConfigService).get('acme'))!.providers[0];
      expect(before.apiKey).toBe(SECRET_KEY);
      const rotated = await api()
        .patch(`/admin/tenants/acme/providers/${providerId}`)
        .send({ api_key: ROTATED_KEY });
      expect(rotated.body.has_api_key).toBe(true);
      const config = await t.app.get(TenantConfigService).get('acme');
      expect(config!.providers[0].apiKey).toBe(ROTATED_KEY);
      expect(config!.providers[0].version).not.toBe(before.version);
      expectErrorEnvelope(
        await api().patch(`/admin/tenants/acme/providers/${providerId}`).send({ default_model: 'missing' }),
        400,
        'invalid_value',
        'default_model',
      );
      expectErrorEnvelope(
        await api().patch(`/admin/tenants/acme/providers/${providerId}`).send({ is_default: false }),
        400,
        'invalid_value',
        'is_default',
      );
    });

    it('keeps exactly one default provider', async () => {
      const second = await api()
        .post('/admin/tenants/acme/providers')
        .send(providerBody({ name: 'second', is_default: true }));
      expect(second.body.is_default).toBe(true);
      const list = async () =>
        (await api().get('/admin/tenants/acme/providers')).body.data.map(
          (p: { name: string; is_default: boolean }) => [p.name, p.is_default],
        );
      expect(await list()).toEqual([
        ['main', false],
        ['second', true],
      ]);
      await api().patch(`/admin/tenants/acme/providers/${providerId}`).send({ is_default: true }).expect(200);
      expect(await list()).toEqual([
        ['main', true],
        ['second', false],
      ]);
      await api().delete(`/admin/tenants/acme/providers/${providerId}`).expect(204);
      expect(await list()).toEqual([['second', true]]);
      expectErrorEnvelope(
        await api().delete(`/admin/tenants/acme/providers/${providerId}`),
        404,
        'not_found',
      );
    });

    it('a provider without a key resolves to 403 missing_api_key_configuration', async () => {
      await api().post('/admin/tenants').send({ id: 'keyless', name: 'Keyless' }).expect(201);
      const created = await api()
        .post('/admin/tenants/keyless/providers')
        .send(providerBody({ api_key: undefined }));
      expect(created.body.has_api_key).toBe(false);
      const empty = await api()
        .post('/admin/tenants/keyless/providers')
        .send(providerBody({ name: 'empty', api_key: '', default_model: 'o3' }));
      expect(empty.body.has_api_key).toBe(false);
      const tenant = (await t.app.get(TenantConfigService).get('keyless'))!;
      const catalog = t.app.get(ProviderCatalogService);
      expect(() => catalog.resolve(tenant, {})).toThrow(
        expect.objectContaining({ status: 403, code: 'missing_api_key_configuration' }),
      );
      expect(() => catalog.resolve(tenant, { providerId: empty.body.id, model: 'o3' })).toThrow(ParleyError);
      // Setting a key, then removing it again with null.
      await api()
        .patch(`/admin/tenants/keyless/providers/${created.body.id}`)
        .send({ api_key: 'sk-now-set' })
        .expect(200);
      expect(
        catalog.resolve((await t.app.get(TenantConfigService).get('keyless'))!, {}).provider.apiKey,
      ).toBe('sk-now-set');
      const removed = await api()
        .patch(`/admin/tenants/keyless/providers/${created.body.id}`)
        .send({ api_key: null });
      expect(removed.body.has_api_key).toBe(false);
      const keylessAgain = (await t.app.get(TenantConfigService).get('keyless'))!;
      expect(() => catalog.resolve(keylessAgain, {})).toThrow(
        expect.objectContaining({ code: 'missing_api_key_configuration' }),
      );
    });

    it('serves the models to members', async () => {
      await api().put('/admin/tenants/acme/members/reader').send({}).expect(200);
      const res = await request(t.url)
        .get('/acme/v1/models')
        .set(bearer(userToken({ sub: 'reader' })));
      expect(res.status).toBe(200);
      expect(res.body.data.map((m: { id: string }) => m.id)).toEqual(['gpt-4o-mini', 'o3']);
      expect(res.body.data[0].owned_by).toBe('second');
    });
  });

  it('deletes a tenant with its members and providers', async () => {
    await api().delete('/admin/tenants/acme').expect(204);
    const db = t.app.get(DataSource);
    expect(await db.query(`SELECT count(*)::int AS n FROM providers WHERE tenant_id = 'acme'`)).toEqual([
      { n: 0 },
    ]);
    expect(await db.query(`SELECT count(*)::int AS n FROM tenant_members WHERE tenant_id = 'acme'`)).toEqual([
      { n: 0 },
    ]);
    expectErrorEnvelope(await api().get('/admin/tenants/acme'), 404, 'not_found');
  });

  it('never shows an API key in a response or in the logs', () => {
    expect(bodies.length).toBeGreaterThan(40);
    for (const secret of [SECRET_KEY, ROTATED_KEY, 'sk-now-set', 'header-secret-value']) {
      expect(bodies.filter((b) => b.includes(secret))).toEqual([]);
      expect(t.logs.filter((l) => l.includes(secret))).toEqual([]);
    }
  });

  it('documents the admin API in the OpenAPI document', async () => {
    const doc = (await request(t.url).get('/docs-json')).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/admin/tenants',
        '/admin/tenants/{tenantId}',
        '/admin/tenants/{tenantId}/members',
        '/admin/tenants/{tenantId}/members/{userId}',
        '/admin/tenants/{tenantId}/providers',
        '/admin/tenants/{tenantId}/providers/{providerId}',
        '/v1/models',
        '/{tenantId}/v1/models',
      ]),
    );
    const create = doc.paths['/admin/tenants/{tenantId}/providers'].post;
    expect(create.tags).toContain('admin');
    expect(create.security).toEqual([{ bearer: [] }]);
    expect(doc.components.schemas.CreateProviderDto.required).toEqual(
      expect.arrayContaining(['name', 'kind', 'base_url', 'default_model', 'models']),
    );
    expect(doc.components.schemas.ProviderDto.properties).not.toHaveProperty('api_key');
    expect(doc.components.schemas.TenantDto.properties).toHaveProperty('rate_limit');
  });
});
