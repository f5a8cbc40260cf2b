import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEncryptionKey } from '../../src/config/app-config.js';
import { DevelopmentBootstrapService } from '../../src/providers/development-bootstrap.service.js';
import { ProviderKeyRotationService } from '../../src/providers/provider-key-rotation.service.js';
import { apiKeyAad } from '../../src/providers/provider-record.js';
import { SecretCipher } from '../../src/providers/secret-cipher.js';
import { TenantConfigService } from '../../src/tenants/tenant-config.service.js';
import { createTestApp, type TestApp } from '../utils/create-test-app.js';
import { adminAuth, bearer } from '../utils/tokens.js';

/** A keyless local OpenAI-compatible server (Ollama, vLLM) that only lists its models. */
class ModelsServer {
  authorizations: (string | undefined)[] = [];
  private server?: Server;
  url = '';

  async start(models: string[]): Promise<void> {
    this.server = createServer((req, res) => {
      this.authorizations.push(req.headers.authorization);
      if (req.url !== '/v1/models') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          object: 'list',
          data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'local' })),
        }),
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

describe('development start-up: generated secret and OPENAI_BASE_URL', () => {
  const upstream = new ModelsServer();
  let t: TestApp;

  beforeAll(async () => {
    await upstream.start(['local-llama', 'local-qwen']);
    t = await createTestApp({
      JWT_SECRET: '',
      OPENAI_BASE_URL: upstream.url,
      OPENAI_API_KEY: '',
      DEFAULT_MODEL: '',
    });
  });
  afterAll(async () => {
    await t?.close();
    await upstream.stop();
  });

  const devToken = (): string => {
    const line = t.logs.find((l) => l.includes('Development token'));
    expect(line).toBeDefined();
    return line!.split(': ').at(-1)!.trim();
  };

  it('prints a working token for dev-user in the default tenant', async () => {
    expect(t.config.jwtSecretGenerated).toBe(true);
    const res = await request(t.url).get('/v1/models').set(bearer(devToken()));
    expect(res.status).toBe(200);
    const payload = JSON.parse(Buffer.from(devToken().split('.')[1], 'base64url').toString());
    expect(payload).toMatchObject({ sub: 'dev-user', tenant_id: 'default' });
    expect(payload.exp - payload.iat).toBeGreaterThan(7 * 24 * 3600);
    const members = await request(t.url).get('/admin/tenants/default/members').set(adminAuth);
    expect(members.body.data.map((m: { user_id: string }) => m.user_id)).toEqual(['dev-user']);
  });

  it('sets up the default provider from OPENAI_BASE_URL with the listed models', async () => {
    const res = await request(t.url).get('/v1/models').set(bearer(devToken()));
    expect(res.body.data.map((m: { id: string }) => m.id)).toEqual(['local-llama', 'local-qwen']);
    const providers = (await request(t.url).get('/admin/tenants/default/providers').set(adminAuth)).body.data;
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({
      kind: 'chat_completions',
      base_url: upstream.url,
      default_model: 'local-llama',
      is_default: true,
      has_api_key: true,
      models: [
        { id: 'local-llama', context_length: 128000 },
        { id: 'local-qwen', context_length: 128000 },
      ],
    });
    const config = await t.app.get(TenantConfigService).get('default');
    expect(config!.providers[0].apiKey).toBe('sk-local');
    expect(upstream.authorizations).toContain('Bearer sk-local');
  });

  it('is idempotent', async () => {
    await t.app.get(DevelopmentBootstrapService).onApplicationBootstrap();
    await t.app.get(DevelopmentBootstrapService).onApplicationBootstrap();
    const providers = (await request(t.url).get('/admin/tenants/default/providers').set(adminAuth)).body.data;
    expect(providers).toHaveLength(1);
    const members = (await request(t.url).get('/admin/tenants/default/members').set(adminAuth)).body.data;
    expect(members).toHaveLength(1);
  });
});

describe('start-up with an unreachable OPENAI_BASE_URL', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', OPENAI_API_KEY: 'sk-configured' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('falls back to gpt-4o-mini, keeps the configured key, prints no token (JWT_SECRET is set)', async () => {
    const providers = (await request(t.url).get('/admin/tenants/default/providers').set(adminAuth)).body.data;
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({
      default_model: 'gpt-4o-mini',
      models: [{ id: 'gpt-4o-mini', context_length: 128000 }],
    });
    expect((await t.app.get(TenantConfigService).get('default'))!.providers[0].apiKey).toBe('sk-configured');
    expect(t.logs.some((l) => l.includes('Development token'))).toBe(false);
    expect(t.logs.some((l) => l.includes('sk-configured'))).toBe(false);
  });
});

describe('ENCRYPTION_KEY rotation', () => {
  const OLD = 'a'.repeat(64);
  const NEW = 'b'.repeat(64);
  const UNKNOWN = 'c'.repeat(64);
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ENCRYPTION_KEY: NEW, ENCRYPTION_KEYS_PREVIOUS: OLD });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('re-encrypts keys of a previous key with the current one, and leaves unknown ones alone', async () => {
    await request(t.url).post('/admin/tenants').set(adminAuth).send({ id: 'rot', name: 'Rot' }).expect(201);
    const create = (name: string) =>
      request(t.url)
        .post('/admin/tenants/rot/providers')
        .set(adminAuth)
        .send({
          name,
          kind: 'chat_completions',
          base_url: 'https://x.example/v1',
          api_key: 'placeholder',
          default_model: 'm',
          models: [{ id: 'm', context_length: 1 }],
        });
    const oldOne = (await create('old')).body.id as string;
    const lost = (await create('lost')).body.id as string;
    const db = t.app.get(DataSource);
    const oldCipher = new SecretCipher(parseEncryptionKey('x', OLD));
    const unknownCipher = new SecretCipher(parseEncryptionKey('x', UNKNOWN));
    await db.query(`UPDATE providers SET api_key_encrypted = $1 WHERE id = $2`, [
      oldCipher.encrypt('sk-old-secret', apiKeyAad(oldOne)),
      oldOne,
    ]);
    await db.query(`UPDATE providers SET api_key_encrypted = $1 WHERE id = $2`, [
      unknownCipher.encrypt('sk-lost-secret', apiKeyAad(lost)),
      lost,
    ]);

    expect(await t.app.get(ProviderKeyRotationService).reencryptAll()).toBe(1);

    const current = new SecretCipher(parseEncryptionKey('x', NEW));
    const [row] = await db.query(`SELECT api_key_encrypted FROM providers WHERE id = $1`, [oldOne]);
    expect(current.isCurrent(row.api_key_encrypted)).toBe(true);
    expect(current.decrypt(row.api_key_encrypted, apiKeyAad(oldOne))).toBe('sk-old-secret');
    const config = (await t.app.get(TenantConfigService).get('rot'))!;
    expect(config.providers.find((p) => p.id === oldOne)!.apiKey).toBe('sk-old-secret');
    // A key nobody can decrypt any more behaves as "no key" (403 on completions), with an error logged.
    expect(config.providers.find((p) => p.id === lost)!.apiKey).toBe('');
    expect(t.logs.some((l) => l.includes(lost) && l.includes('ERROR'))).toBe(true);
    expect(t.logs.some((l) => l.includes('sk-old-secret') || l.includes('sk-lost-secret'))).toBe(false);
    expect(await t.app.get(ProviderKeyRotationService).reencryptAll()).toBe(0);
  });
});
