import {
  type DynamicModule,
  Global,
  Inject,
  Logger,
  Module,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { MemoryStore } from './memory.store.js';
import { RedisStore } from './redis.store.js';
import { STORE, type Store } from './store.port.js';

export interface StoreModuleOptions {
  /** When set, a RedisStore on this URL (multi-instance); otherwise an in-process MemoryStore. */
  redisUrl?: string;
  /** Prefix for every key and channel. Default `parley:`. */
  keyPrefix?: string;
  /**
   * How long startup waits for Redis before going on without it (the store then fails fast and
   * reconnects in the background; readiness is reported by `ping()`). Default 5000 ms.
   */
  startupWaitMs?: number;
}

export interface StoreModuleAsyncOptions {
  imports?: DynamicModule['imports'];
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => StoreModuleOptions | Promise<StoreModuleOptions>;
}

const logger = new Logger('StoreModule');

export async function createStore(options: StoreModuleOptions): Promise<Store> {
  if (!options.redisUrl) {
    logger.log('Using the in-process MemoryStore (single instance; set a Redis URL for multi-instance)');
    return new MemoryStore({ keyPrefix: options.keyPrefix });
  }
  const store = new RedisStore({ url: options.redisUrl, keyPrefix: options.keyPrefix });
  try {
    await store.waitUntilReady(options.startupWaitMs ?? 5000);
  } catch (err) {
    logger.warn(`${err instanceof Error ? err.message : String(err)}; starting anyway`);
  }
  return store;
}

/**
 * Provides the global `STORE` (a `Store`): RedisStore when `redisUrl` is set, else MemoryStore.
 * The store is closed on application shutdown, in the last phase (`onApplicationShutdown`), so other
 * providers can still use it in their `onModuleDestroy` / `beforeApplicationShutdown`.
 */
@Global()
@Module({})
export class StoreModule implements OnApplicationShutdown {
  constructor(@Inject(STORE) private readonly store: Store) {}

  static forRoot(options: StoreModuleOptions = {}): DynamicModule {
    return StoreModule.build([{ provide: STORE, useFactory: () => createStore(options) }]);
  }

  static forRootAsync(options: StoreModuleAsyncOptions): DynamicModule {
    const provider: Provider = {
      provide: STORE,
      inject: options.inject ?? [],
      useFactory: async (...args: never[]) => createStore(await options.useFactory(...args)),
    };
    return { ...StoreModule.build([provider]), imports: options.imports ?? [] };
  }

  private static build(providers: Provider[]): DynamicModule {
    return { module: StoreModule, global: true, providers, exports: [STORE] };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
