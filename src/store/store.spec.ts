import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from './memory.store.js';
import { RedisStore } from './redis.store.js';
import { describeStoreContract } from './store.contract.js';
import { StoreModule } from './store.module.js';
import { STORE, type Store, StoreClosedError, type StoreScript } from './store.port.js';

const explicitRedisUrl = process.env.REDIS_URL;
const redisUrl = explicitRedisUrl ?? 'redis://127.0.0.1:6379';
/** Random per run, so parallel test files / runs never collide. */
const runPrefix = `parley-test:${randomUUID()}:`;

/** Is something listening on the default Redis port? (Only asked when REDIS_URL is unset.) */
function canConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

// With REDIS_URL set, Redis is required: an unreachable Redis makes the Redis tests FAIL.
const redisAvailable = explicitRedisUrl !== undefined || (await canConnect(6379, '127.0.0.1'));
if (!redisAvailable) {
  console.warn('RedisStore tests SKIPPED: REDIS_URL is unset and nothing listens on 127.0.0.1:6379');
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function timed<T>(promise: Promise<T>): Promise<{ ok: boolean; ms: number; error?: unknown }> {
  const start = performance.now();
  return promise.then(
    () => ({ ok: true, ms: performance.now() - start }),
    (error: unknown) => ({ ok: false, ms: performance.now() - start, error }),
  );
}

// ── MemoryStore ───────────────────────────────────────────────────────────────────────────────────

describeStoreContract(
  'MemoryStore',
  async (opts) => new MemoryStore({ keyPrefix: `${runPrefix}${opts?.keyPrefix ?? ''}` }),
  { shared: false },
);

describe('MemoryStore specifics', () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it('sweeps expired keys periodically without them being accessed', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 20 });
    stores.push(store);
    const data = Reflect.get(store, 'data') as Map<string, unknown>;
    for (let i = 0; i < 100; i++) await store.set(`k${i}`, 'v', 30);
    for (let i = 0; i < 10; i++) await store.append(`log${i}`, [{ id: 1, data: 'x' }], { ttlMs: 30 });
    await store.set('forever', 'v');
    expect(data.size).toBe(111);
    await sleep(150);
    expect(data.size).toBe(1);
  });

  it('trims to exactly maxLen', async () => {
    const store = new MemoryStore();
    stores.push(store);
    for (let id = 1; id <= 50; id++) await store.append('log', [{ id, data: `${id}` }], { maxLen: 7 });
    expect((await store.readAfter('log', 0)).map((e) => e.id)).toEqual([44, 45, 46, 47, 48, 49, 50]);
  });

  it('drops waiters once they are done (no leak)', async () => {
    const store = new MemoryStore();
    stores.push(store);
    const waiters = Reflect.get(store, 'waiters') as Map<string, Set<unknown>>;
    const controller = new AbortController();
    const reads = [
      store.readAfter('a', 0, { blockMs: 30 }),
      store.readAfter('b', 0, { blockMs: 5000, signal: controller.signal }),
      store.readAfter('c', 0, { blockMs: 5000 }),
    ];
    expect(waiters.size).toBe(3);
    controller.abort();
    await store.append('c', [{ id: 1, data: 'x' }]);
    await Promise.all(reads);
    expect(waiters.size).toBe(0);
  });
});

// ── RedisStore ────────────────────────────────────────────────────────────────────────────────────

describe.skipIf(!redisAvailable)('RedisStore', () => {
  const makeRedisStore = async (opts?: { keyPrefix?: string }): Promise<RedisStore> => {
    const store = new RedisStore({ url: redisUrl, keyPrefix: `${runPrefix}${opts?.keyPrefix ?? ''}` });
    try {
      await store.waitUntilReady(3000);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  };

  beforeAll(async () => {
    // Fail the whole suite at once (not test by test) when Redis is required but unreachable.
    const probe = await makeRedisStore().catch((err: unknown) => {
      throw new Error(`Redis is required (REDIS_URL=${redisUrl}) but unreachable: ${String(err)}`);
    });
    await probe.close();
  });

  afterAll(async () => {
    // Remove whatever this run left behind.
    const redis = new Redis(redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      await redis.connect().catch(() => undefined); // unreachable: beforeAll already failed the suite
      if (redis.status !== 'ready') return;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${runPrefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  });

  describeStoreContract('RedisStore', makeRedisStore, { shared: true });

  describe('scripts', () => {
    const getScript: StoreScript<string | null> = {
      name: 'test_get',
      numberOfKeys: 1,
      lua: "return redis.call('GET', KEYS[1])",
      local: (kv, keys) => kv.get(keys[0]),
    };

    it('keep their place among the commands issued before them', async () => {
      const store = await makeRedisStore({ keyPrefix: 'order:' });
      try {
        store.defineScript(getScript);
        const set = store.set('k', '1');
        await expect(store.runScript(getScript.name, ['k'], [])).resolves.toBe('1');
        await set;
      } finally {
        await store.close();
      }
    });

    it('run after Redis forgot them (SCRIPT FLUSH)', async () => {
      const store = await makeRedisStore({ keyPrefix: 'flushed:' });
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 0 });
      try {
        store.defineScript(getScript);
        await store.set('k', 'v');
        await expect(store.runScript(getScript.name, ['k'], [])).resolves.toBe('v');
        await redis.script('FLUSH');
        await expect(store.runScript(getScript.name, ['k'], [])).resolves.toBe('v');
      } finally {
        redis.disconnect();
        await store.close();
      }
    });
  });

  describe('outages', () => {
    const stores: Store[] = [];
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });

    it('fails fast when nothing listens, and closes promptly', async () => {
      const port = await freePort();
      const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: runPrefix });
      stores.push(store);
      await expect(store.waitUntilReady(200)).rejects.toThrow(/not ready/);

      const ping = await timed(store.ping());
      expect(ping.ok).toBe(false);
      expect(ping.ms).toBeLessThan(1500);

      const get = await timed(store.get('k'));
      expect(get.ok).toBe(false);
      expect(get.ms).toBeLessThan(200);

      const read = await timed(store.readAfter('log', 0, { blockMs: 5000 }));
      expect(read.ok).toBe(false);
      expect(read.ms).toBeLessThan(1500);

      const subscribe = await timed(store.subscribe('chan', () => {}));
      expect(subscribe.ok).toBe(false);
      expect(subscribe.ms).toBeLessThan(1500);

      const close = await timed(store.close());
      expect(close.ok).toBe(true);
      expect(close.ms).toBeLessThan(500);
    });

    it('fails fast during an outage and recovers by itself (incl. subscriptions)', async () => {
      // A TCP proxy in front of Redis that we can take down and bring back.
      const target = new URL(redisUrl);
      const sockets = new Set<net.Socket>();
      const proxy = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 6379), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      const port = await freePort();
      const listen = () => new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
      const stop = async () => {
        const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await closed;
      };
      await listen();

      try {
        const proxied = new URL(redisUrl);
        proxied.hostname = '127.0.0.1';
        proxied.port = String(port);
        const store = new RedisStore({ url: proxied.toString(), keyPrefix: runPrefix });
        stores.push(store);
        await store.waitUntilReady(2000);
        const direct = await makeRedisStore();
        stores.push(direct);

        const channel = `outage-chan:${randomUUID()}`;
        const heard: string[] = [];
        await store.subscribe(channel, (m) => heard.push(m));
        await store.set('outage-key', 'before');

        await stop();
        await sleep(20);
        const get = await timed(store.get('outage-key'));
        expect(get.ok).toBe(false);
        expect(get.ms).toBeLessThan(200);
        const ping = await timed(store.ping());
        expect(ping.ok).toBe(false);
        expect(ping.ms).toBeLessThan(1500);
        await sleep(300); // let a few reconnect attempts fail

        await listen();
        const deadline = Date.now() + 5000;
        while (!(await timed(store.ping())).ok) {
          if (Date.now() > deadline) throw new Error('store did not recover within 5 s');
          await sleep(50);
        }
        expect(await store.get('outage-key')).toBe('before');
        // The subscriber connection reconnects and re-subscribes by itself.
        const resubscribed = Date.now() + 5000;
        while (heard.length === 0) {
          if (Date.now() > resubscribed) throw new Error('subscription did not recover within 5 s');
          await direct.publish(channel, 'after');
          await sleep(100);
        }
        expect(heard[0]).toBe('after');
      } finally {
        if (proxy.listening) await stop();
      }
    });
  });
});

// ── StoreModule ───────────────────────────────────────────────────────────────────────────────────

describe('StoreModule', () => {
  it('provides a MemoryStore without redisUrl and closes it on shutdown', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [StoreModule.forRoot({ keyPrefix: runPrefix })],
    }).compile();
    const app = await moduleRef.init();
    const store = app.get<Store>(STORE);
    expect(store).toBeInstanceOf(MemoryStore);
    expect(store.keyPrefix).toBe(runPrefix);
    await app.close();
    await expect(store.ping()).rejects.toThrow(StoreClosedError);
  });

  it.skipIf(!redisAvailable)(
    'provides a RedisStore with redisUrl (forRootAsync) and closes it on shutdown',
    async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [StoreModule.forRootAsync({ useFactory: () => ({ redisUrl, keyPrefix: runPrefix }) })],
      }).compile();
      const app = await moduleRef.init();
      const store = app.get<Store>(STORE);
      expect(store.kind).toBe('redis');
      await store.ping();
      await app.close();
      await expect(store.ping()).rejects.toThrow(StoreClosedError);
    },
  );
});
