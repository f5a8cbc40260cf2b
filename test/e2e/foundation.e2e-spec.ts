import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { setupTenant } from '../utils/factories.js';

describe('foundation', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ BODY_LIMIT_BYTES: '65536' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers liveness', async () => {
    const res = await request(t.url).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('echoes a sane caller request id', async () => {
    const res = await request(t.url).get('/health').set('x-request-id', 'abc-123');
    expect(res.headers['x-request-id']).toBe('abc-123');
  });

  it('answers readiness with the database and the store up', async () => {
    const res = await request(t.url).get('/health/ready');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.details.database.status).toBe('up');
    expect(res.body.details.store.status).toBe('up');
  });

  it('answers an unknown route with a 404 envelope', async () => {
    const res = await request(t.url).get('/no/such/route');
    expectErrorEnvelope(res, 404, 'not_found');
  });

  it('answers a wrong method with an envelope', async () => {
    const res = await request(t.url).delete('/health');
    expectErrorEnvelope(res, 404, 'not_found');
  });

  it('answers malformed JSON with a 400 envelope, once the caller is authenticated', async () => {
    const malformed = (token?: string) => {
      const req = request(t.url).post('/v1/chat/completions').set('Content-Type', 'application/json');
      return (token ? req.set('Authorization', `Bearer ${token}`) : req).send('{"messages": [');
    };
    // The checks run in the contract's order: who is asking comes before what the body says.
    expectErrorEnvelope(await malformed(), 401, 'invalid_token');
    const tenant = await setupTenant(t, { baseUrl: 'http://127.0.0.1:9/v1' });
    const res = await malformed(tenant.token);
    expectErrorEnvelope(res, 400, 'invalid_json');
    expect(res.body.error.message).not.toMatch(/at .*\.js/);
    expect(res.headers['x-ratelimit-limit-requests']).toBeDefined();
    // The admin API too.
    const adminRes = await request(t.url)
      .post('/admin/tenants')
      .set('Authorization', `Bearer ${TEST_ADMIN_TOKEN}`)
      .set('Content-Type', 'application/json')
      .send('{"name": ');
    expectErrorEnvelope(adminRes, 400, 'invalid_json');
    const anonymous = await request(t.url)
      .post('/admin/tenants')
      .set('Content-Type', 'application/json')
      .send('{"name": ');
    expectErrorEnvelope(anonymous, 401, 'invalid_token');
  });

  it('answers a body over the limit with a 413 envelope', async () => {
    const res = await request(t.url)
      .post('/v1/chat/completions')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }));
    expectErrorEnvelope(res, 413, 'payload_too_large');
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const doc = await request(t.url).get('/docs-json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toContain('/health/ready');
    const ui = await request(t.url).get('/docs');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger-ui');
  });

  it('counts requests in /metrics', async () => {
    await request(t.url).get('/health');
    const res = await request(t.url).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const line = res.text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('parley_http_requests_total{') &&
          l.includes('route="/health"') &&
          l.includes('status="200"'),
      );
    expect(line).toBeDefined();
    expect(Number(line!.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
    expect(res.text).toContain('parley_http_request_duration_seconds_bucket');
  });
});

describe('readiness with the store down', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ REDIS_URL: 'redis://127.0.0.1:6390' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 503 when Redis does not answer', async () => {
    const res = await request(t.url).get('/health/ready');
    expect(res.status).toBe(503);
    expect(res.body.details.store.status).toBe('down');
    expect(res.body.details.database.status).toBe('up');
  });
});
