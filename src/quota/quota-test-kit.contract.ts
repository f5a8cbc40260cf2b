import type { ExecutionContext } from '@nestjs/common';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { MemoryStore } from '../store/memory.store.js';
import { RedisStore } from '../store/redis.store.js';
import type { Store } from '../store/store.port.js';
import type { TenantConfigService } from '../tenants/tenant-config.service.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import type { QuotaRequest } from './quota-request.js';

/*
 * Unit-test kit of the quota module (excluded from the build like every *.contract.ts).
 */

/** A store every quota script must behave the same on (Lua and `local` alike). */
export interface StoreUnderTest {
  name: string;
  /** Whether the store exists here (Redis: REDIS_URL set, or something on 127.0.0.1:6379). */
  available: boolean;
  make(): Promise<Store>;
  /** Removes what the stores made by `make` left behind. */
  cleanup(): Promise<void>;
}

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

/** MemoryStore always; RedisStore when REDIS_URL is set (then it is required) or Redis runs locally. */
export async function storesUnderTest(): Promise<StoreUnderTest[]> {
  const explicit = process.env.REDIS_URL;
  const redisUrl = explicit ?? 'redis://127.0.0.1:6379';
  const redisAvailable = explicit !== undefined || (await canConnect(6379, '127.0.0.1'));
  const prefix = `parley-test:${randomUUID()}:`;
  const made: Store[] = [];
  return [
    {
      name: 'MemoryStore',
      available: true,
      make: async () => {
        const store = new MemoryStore({ keyPrefix: prefix });
        made.push(store);
        return store;
      },
      cleanup: async () => {
        await Promise.all(made.splice(0).map((s) => s.close()));
      },
    },
    {
      name: 'RedisStore',
      available: redisAvailable,
      make: async () => {
        const store = new RedisStore({ url: redisUrl, keyPrefix: prefix });
        made.push(store);
        await store.waitUntilReady(3000);
        return store;
      },
      cleanup: async () => {
        await Promise.all(made.splice(0).map((s) => s.close()));
        const redis = new Redis(redisUrl, { maxRetriesPerRequest: 0, retryStrategy: () => null });
        redis.on('error', () => {});
        try {
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
            if (keys.length > 0) await redis.del(...keys);
            cursor = next;
          } while (cursor !== '0');
        } finally {
          redis.disconnect();
        }
      },
    },
  ];
}

/** A tenant's cached config as TenantConfigService returns it. */
export function tenantConfig(overrides: Partial<TenantConfig> = {}): TenantConfig {
  return {
    id: `t${randomUUID().slice(0, 8)}`,
    name: 'Test tenant',
    defaultModel: null,
    rateLimit: { requests: 600, windowS: 60 },
    settings: {},
    providers: [],
    ...overrides,
  };
}

/** A TenantConfigService that knows these tenants. */
export function fakeTenantConfigs(...tenants: TenantConfig[]): TenantConfigService {
  const byId = new Map(tenants.map((t) => [t.id, t]));
  return { get: (id: string) => Promise.resolve(byId.get(id) ?? null) } as unknown as TenantConfigService;
}

export interface FakeHttp {
  context: ExecutionContext;
  req: QuotaRequest;
  /** Response headers set so far, lower-cased names. */
  headers: Record<string, string>;
}

/** An HTTP ExecutionContext for a request that passed the auth and tenant guards. */
export function fakeHttp(tenant: TenantConfig, userId = 'user-1', withTenant = true): FakeHttp {
  const headers: Record<string, string> = {};
  const req = {
    parley: { userId, claims: { sub: userId }, isAdmin: false, tenantId: tenant.id },
    ...(withTenant ? { parleyTenant: tenant } : {}),
  } as unknown as QuotaRequest;
  // A Fastify reply; the guards set headers on its raw response.
  const res = { raw: { setHeader: (name: string, value: string) => (headers[name.toLowerCase()] = value) } };
  const context = {
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }),
  } as unknown as ExecutionContext;
  return { context, req, headers };
}

/** A store whose every operation fails, as Redis does while it is unreachable. */
export function unreachableStore(): Store {
  const fail = () => Promise.reject(new Error('Connection is closed.'));
  return new Proxy({} as Store, {
    get: (_target, prop) => (prop === 'defineScript' ? () => undefined : prop === 'kind' ? 'redis' : fail),
  });
}
