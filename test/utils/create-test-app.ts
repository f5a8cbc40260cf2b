import type { DynamicModule, Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createParleyApp, listen } from '../../src/app.factory.js';
import { loadConfig, type AppConfig } from '../../src/config/app-config.js';
import { EmbeddedPostgresHolder } from '../../src/database/database.module.js';

export const TEST_JWT_SECRET = 'parley-test-secret-0123456789abcdef';
export const TEST_ADMIN_TOKEN = 'parley-test-admin-token';

export interface TestApp {
  app: NestFastifyApplication;
  config: AppConfig;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Every log line the app printed, in order. */
  logs: string[];
  close(): Promise<void>;
}

export interface TestAppGroup {
  apps: TestApp[];
  /** Shared database URL (all instances of a group use one database and one store prefix). */
  close(): Promise<void>;
}

type Env = Record<string, string | undefined>;

export interface TestAppOptions {
  /** Modules to load beside Parley's own (e.g. a test module with its own tools). */
  extraModules?: Array<Type | DynamicModule>;
}

/** A throw-away database on the real server named by DATABASE_URL, dropped again on close. */
export async function createScratchDatabase(
  adminUrl: string,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `parley_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

function baseEnv(overrides: Env): Env {
  return {
    NODE_ENV: 'test',
    PORT: '0',
    DATA_DIR: 'memory://',
    JWT_SECRET: TEST_JWT_SECRET,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    LOG_LEVEL: 'info',
    REDIS_URL: process.env.REDIS_URL,
    STREAM_FIRST_EVENT_WAIT_MS: '2000',
    SHUTDOWN_GRACE_MS: '1000',
    // A title call would take the simulator's next scripted answer; the tests that name
    // conversations turn it back on.
    CONVERSATION_TITLES: 'off',
    ...overrides,
  };
}

async function startOne(env: Env, options: TestAppOptions): Promise<TestApp> {
  const config = loadConfig(env);
  const logs: string[] = [];
  const app = await createParleyApp(config, {
    logSink: (line) => logs.push(line.trimEnd()),
    extraModules: options.extraModules,
  });
  const port = await listen(app, 0, '127.0.0.1');
  return { app, config, url: `http://127.0.0.1:${port}`, logs, close: () => app.close() };
}

/**
 * Starts `count` Parley instances that share one database and one store (as a deployment behind a
 * load balancer would). On the embedded defaults the database is the first instance's PGlite.
 */
export async function createTestApps(
  count: number,
  overrides: Env = {},
  options: TestAppOptions = {},
): Promise<TestAppGroup> {
  const prefix = `parley-test-${randomBytes(4).toString('hex')}:`;
  const scratch = process.env.DATABASE_URL
    ? await createScratchDatabase(process.env.DATABASE_URL)
    : undefined;
  const env = baseEnv({ STORE_KEY_PREFIX: prefix, DATABASE_URL: scratch?.url, ...overrides });
  const apps: TestApp[] = [];
  try {
    apps.push(await startOne(env, options));
    const sharedUrl = scratch?.url ?? apps[0].app.get(EmbeddedPostgresHolder).url;
    for (let i = 1; i < count; i++) apps.push(await startOne({ ...env, DATABASE_URL: sharedUrl }, options));
  } catch (e) {
    await Promise.allSettled(apps.map((a) => a.close()));
    await scratch?.drop();
    throw e;
  }
  return {
    apps,
    close: async () => {
      // Later instances first: the first one may be serving the embedded database.
      for (const a of [...apps].reverse()) await a.close();
      await scratch?.drop();
    },
  };
}

/** One Parley instance on its own database and store prefix. */
export async function createTestApp(overrides: Env = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const group = await createTestApps(1, overrides, options);
  const [only] = group.apps;
  return { ...only, close: () => group.close() };
}

/** Multi-instance tests need a shared store: real Redis. */
export const hasRedis = Boolean(process.env.REDIS_URL);
