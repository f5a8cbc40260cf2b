import jwt from 'jsonwebtoken';
import { generateKeyPairSync } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, TEST_JWT_SECRET, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { adminAuth, bearer, userToken } from '../utils/tokens.js';

const now = () => Math.floor(Date.now() / 1000);

function unsigned(payload: object, header: object = { alg: 'none', typ: 'JWT' }): string {
  const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part(header)}.${part(payload)}.`;
}

describe('auth', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    await request(t.url).post('/admin/tenants').set(adminAuth).send({ id: 'acme', name: 'Acme' }).expect(201);
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('the user auth guard answers 401 invalid_token', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cases: [string, Record<string, string>][] = [
      ['no Authorization header', {}],
      ['not a Bearer scheme', { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
      ['an empty bearer', { Authorization: 'Bearer ' }],
      ['garbage', bearer('not-a-jwt')],
      ['three garbage segments', bearer('aaa.bbb.ccc')],
      ['an expired token', bearer(userToken({ sub: 'u1', tenant_id: 'acme', exp: now() - 10 }))],
      ['a token not valid yet', bearer(userToken({ sub: 'u1', tenant_id: 'acme' }, { notBefore: 600 }))],
      [
        'a wrong signature',
        bearer(jwt.sign({ sub: 'u1', tenant_id: 'acme' }, 'another-secret', { expiresIn: 60 })),
      ],
      ['alg none', bearer(unsigned({ sub: 'u1', tenant_id: 'acme', exp: now() + 60 }))],
      ['alg none (capitalised)', bearer(unsigned({ sub: 'u1', exp: now() + 60 }, { alg: 'None' }))],
      [
        'HS512 with the right secret (algorithm pinned)',
        bearer(
          jwt.sign({ sub: 'u1', tenant_id: 'acme' }, TEST_JWT_SECRET, { algorithm: 'HS512', expiresIn: 60 }),
        ),
      ],
      [
        'RS256 with no JWKS configured',
        bearer(jwt.sign({ sub: 'u1', tenant_id: 'acme' }, privateKey, { algorithm: 'RS256', expiresIn: 60 })),
      ],
      ['a missing sub', bearer(userToken({ tenant_id: 'acme' }))],
      ['an empty sub', bearer(userToken({ sub: '', tenant_id: 'acme' }))],
      ['a sub over 255 characters', bearer(userToken({ sub: 'x'.repeat(256), tenant_id: 'acme' }))],
      [
        'a tenants claim that is not a list',
        bearer(userToken({ sub: 'u1', tenants: 'acme' as unknown as string[] })),
      ],
      [
        'a tampered payload',
        bearer(
          userToken({ sub: 'u1', tenant_id: 'acme' }).replace(
            /\.[^.]+\./,
            `.${Buffer.from(JSON.stringify({ sub: 'root', tenant_id: 'acme', exp: now() + 60 })).toString('base64url')}.`,
          ),
        ),
      ],
    ];
    it.each(cases)('%s', async (_name, headers) => {
      const res = await request(t.url).get('/v1/models').set(headers);
      expectErrorEnvelope(res, 401, 'invalid_token', null);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it('the admin token is not a user token', async () => {
      expectErrorEnvelope(await request(t.url).get('/v1/models').set(adminAuth), 401, 'invalid_token');
    });

    it('a failure never echoes the token', async () => {
      const token = userToken({ sub: 'u1', exp: now() - 5 });
      const res = await request(t.url).get('/v1/models').set(bearer(token));
      expect(JSON.stringify(res.body)).not.toContain(token);
      expect(res.body.error.message).toMatch(/expired/);
    });
  });

  describe('a valid token', () => {
    it('passes, and the same token again answers from the claims cache', async () => {
      const token = userToken({ sub: 'u1', tenant_id: 'acme', tenants: ['acme'] });
      for (let i = 0; i < 3; i++) {
        const res = await request(t.url).get('/v1/models').set(bearer(token));
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ object: 'list', data: [] });
      }
    });

    it('stops working once it expires, even when cached', async () => {
      const token = userToken({ sub: 'u1', tenant_id: 'acme', exp: now() + 2 });
      expect((await request(t.url).get('/v1/models').set(bearer(token))).status).toBe(200);
      await new Promise((r) => setTimeout(r, 2100));
      expectErrorEnvelope(await request(t.url).get('/v1/models').set(bearer(token)), 401, 'invalid_token');
    });
  });

  describe('the admin guard', () => {
    it('accepts the admin token', async () => {
      expect((await request(t.url).get('/admin/tenants').set(adminAuth)).status).toBe(200);
    });

    it('accepts a JWT with role admin', async () => {
      const res = await request(t.url)
        .get('/admin/tenants')
        .set(bearer(userToken({ sub: 'ops', role: 'admin' })));
      expect(res.status).toBe(200);
    });

    it.each([
      ['no token', {}],
      ['a wrong admin token', bearer('parley-test-admin-tokem')],
      ['a longer admin token', bearer('parley-test-admin-token-and-more')],
      ['an expired admin JWT', bearer(userToken({ sub: 'ops', role: 'admin', exp: now() - 5 }))],
      ['alg none claiming admin', bearer(unsigned({ sub: 'ops', role: 'admin', exp: now() + 60 }))],
    ])('401 invalid_token for %s', async (_name, headers) => {
      expectErrorEnvelope(await request(t.url).get('/admin/tenants').set(headers), 401, 'invalid_token');
    });

    it.each([
      ['a member', { sub: 'u1', tenant_id: 'acme' }],
      ['another role', { sub: 'u1', role: 'owner' }],
    ])('403 forbidden for a valid JWT of %s', async (_name, claims) => {
      const res = await request(t.url)
        .post('/admin/tenants')
        .set(bearer(userToken(claims)))
        .send({ name: 'x' });
      expectErrorEnvelope(res, 403, 'forbidden');
    });
  });
});
