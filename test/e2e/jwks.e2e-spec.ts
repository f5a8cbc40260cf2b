import jwt from 'jsonwebtoken';
import { createHmac, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, TEST_JWT_SECRET, type TestApp } from '../utils/create-test-app.js';
import { expectErrorEnvelope } from '../utils/expect-error.js';
import { adminAuth, bearer } from '../utils/tokens.js';

const ISSUER = 'https://auth.example.test/';
const AUDIENCE = 'parley-api';

interface TestKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function makeKey(kid: string, alg: TestKey['alg']): TestKey {
  const pair =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, alg, ...pair };
}

function jwk(key: TestKey): JsonWebKey {
  return { ...key.publicKey.export({ format: 'jwk' }), kid: key.kid, alg: key.alg, use: 'sig' };
}

/** A local auth service's JWKS endpoint, whose key set the test changes (rotation). */
class JwksServer {
  keys: TestKey[] = [];
  fetches = 0;
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      this.fetches++;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: this.keys.map(jwk) }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

function sign(key: TestKey, claims: object, options: jwt.SignOptions = {}): string {
  return jwt.sign({ tenants: ['acme'], ...claims }, key.privateKey, {
    algorithm: key.alg,
    keyid: key.kid,
    issuer: ISSUER,
    audience: AUDIENCE,
    ...('exp' in claims ? {} : { expiresIn: 600 }),
    ...options,
  });
}

/** An HS256 token whose HMAC key is the RSA public key: the classic algorithm-confusion attack. */
function confused(key: TestKey): string {
  const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${part({ sub: 'mallory', tenants: ['acme'], iss: ISSUER, aud: AUDIENCE, exp: now + 600 })}`;
  const pem = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  return `${unsigned}.${createHmac('sha256', pem).update(unsigned).digest('base64url')}`;
}

describe('JWT verification through a JWKS URL', () => {
  const jwks = new JwksServer();
  const rsa = makeKey('rsa-1', 'RS256');
  const ec = makeKey('ec-1', 'ES256');
  let t: TestApp;
  const models = (token: string) => request(t.url).get('/v1/models').set(bearer(token));

  beforeAll(async () => {
    jwks.keys = [rsa, ec];
    await jwks.start();
    // No JWT_SECRET: only the auth service's keys are trusted.
    t = await createTestApp({
      JWT_SECRET: '',
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
    });
    await request(t.url).post('/admin/tenants').set(adminAuth).send({ id: 'acme', name: 'Acme' }).expect(201);
  });
  afterAll(async () => {
    await t?.close();
    await jwks.stop();
  });

  it('accepts RS256', async () => {
    const res = await models(sign(rsa, { sub: 'alice' }));
    expect(res.status).toBe(200);
    expect(res.body.object).toBe('list');
  });

  it('accepts ES256', async () => {
    expect((await models(sign(ec, { sub: 'bob' }))).status).toBe(200);
  });

  it('caches the keys: more tokens of known keys fetch nothing', async () => {
    const before = jwks.fetches;
    for (const sub of ['c1', 'c2', 'c3']) expect((await models(sign(rsa, { sub }))).status).toBe(200);
    expect(jwks.fetches).toBe(before);
  });

  it('refetches the key set for an unknown kid (key rotation)', async () => {
    const rotated = makeKey('rsa-2', 'RS256');
    jwks.keys = [rotated, ec];
    const before = jwks.fetches;
    expect((await models(sign(rotated, { sub: 'carol' }))).status).toBe(200);
    expect(jwks.fetches).toBe(before + 1);
  });

  it.each([
    ['an unknown kid', () => sign(makeKey('rsa-9', 'RS256'), { sub: 'x' })],
    ['a known kid but another key', () => sign({ ...makeKey('ec-1', 'ES256') }, { sub: 'x' })],
    ['the wrong issuer', () => sign(ec, { sub: 'x' }, { issuer: 'https://evil.example/' })],
    [
      'no issuer',
      () =>
        jwt.sign({ sub: 'x', tenants: ['acme'] }, ec.privateKey, {
          algorithm: 'ES256',
          keyid: 'ec-1',
          audience: AUDIENCE,
          expiresIn: 60,
        }),
    ],
    ['the wrong audience', () => sign(ec, { sub: 'x' }, { audience: 'someone-else' })],
    ['an expired token', () => sign(ec, { sub: 'x', exp: Math.floor(Date.now() / 1000) - 5 })],
    ['HS256 with the public key as secret (alg confusion)', () => confused(ec)],
    [
      'HS256 with the test secret (no JWT_SECRET configured here)',
      () =>
        jwt.sign({ sub: 'x', tenants: ['acme'], iss: ISSUER, aud: AUDIENCE }, TEST_JWT_SECRET, {
          expiresIn: 60,
        }),
    ],
    [
      'RS384 (not a pinned algorithm)',
      () => sign({ ...makeKey('rsa-2', 'RS256') }, { sub: 'x' }, { algorithm: 'RS384' }),
    ],
    [
      'ES256 header on an RSA key',
      () =>
        `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'rsa-2' })).toString('base64url')}.${sign(ec, { sub: 'x' }).split('.').slice(1).join('.')}`,
    ],
    ['a missing sub', () => sign(ec, {})],
  ])('refuses %s with 401 invalid_token', async (_name, token) => {
    expectErrorEnvelope(await models(token()), 401, 'invalid_token');
  });

  it('an admin JWT from the auth service reaches the admin API', async () => {
    const res = await request(t.url)
      .get('/admin/tenants')
      .set(bearer(sign(ec, { sub: 'ops', role: 'admin' })));
    expect(res.status).toBe(200);
  });
});
