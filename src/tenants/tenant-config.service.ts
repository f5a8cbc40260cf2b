import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { ExpiringLru } from '../auth/expiring-lru.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { ProviderEntity } from '../providers/entities/provider.entity.js';
import { apiKeyAad, toStoredProvider, type StoredProvider } from '../providers/provider-record.js';
import type { ResolvedProvider } from '../providers/provider.types.js';
import { SecretCipher } from '../providers/secret-cipher.js';
import { STORE, type Store } from '../store/store.port.js';
import { TenantEntity } from './entities/tenant.entity.js';
import type { RateLimit, TenantConfig, TenantSettings } from './tenant-config.types.js';
import { TenantEvents, tenantVersionKey } from './tenant-events.service.js';
import { isTenantId } from './tenant-id.js';

/** How long the store keeps a tenant's config (a version bump makes it stale sooner). */
const STORE_TTL_MS = 60_000;
const CACHE_ENTRIES = 10_000;
/** A tenant that does not exist is remembered (in-process only) at most this long. */
const MISSING_TTL_MS = 1000;

/** A tenant's config as the store keeps it: the API keys still encrypted. */
interface StoredTenantConfig {
  /** The tenant's change count when this copy was read from the database. */
  version: string;
  tenant: {
    id: string;
    name: string;
    defaultModel: string | null;
    rateLimit: RateLimit | null;
    settings: TenantSettings;
  };
  providers: StoredProvider[];
}

function parseStored(blob: string): StoredTenantConfig | null {
  try {
    return JSON.parse(blob) as StoredTenantConfig;
  } catch {
    return null;
  }
}

const STALE_FACTOR = 12;

export function tenantConfigKey(tenantId: string): string {
  return `tenant-config:${tenantId}`;
}

/**
 * Tenant config for the hot path: in-process (for TENANT_CONFIG_CACHE_MS), else the store (shared by
 * every instance, keys encrypted), else the database. Admin writes invalidate it everywhere through
 * TenantEvents. Decrypted API keys exist only in this process's memory.
 */
@Injectable()
export class TenantConfigService {
  private readonly logger = new Logger('TenantConfig');
  /** `refreshAt`: past it the entry is still served while one refill runs in the background. */
  private readonly cache = new ExpiringLru<string, { config: TenantConfig | null; refreshAt: number }>(
    CACHE_ENTRIES,
  );
  private readonly inflight = new Map<string, Promise<TenantConfig | null>>();
  /** Bumped on every change: a fill that started before one is returned but not cached. */
  private generation = 0;
  private readonly cacheMs: number;

  constructor(
    @InjectRepository(TenantEntity) private readonly tenants: Repository<TenantEntity>,
    @InjectRepository(ProviderEntity) private readonly providers: Repository<ProviderEntity>,
    @Inject(STORE) private readonly store: Store,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly cipher: SecretCipher,
    events: TenantEvents,
  ) {
    this.cacheMs = config.tenantConfigCacheMs;
    events.onChange((change) => {
      this.generation++;
      this.cache.delete(change.tenantId);
      this.inflight.delete(change.tenantId);
    });
  }

  /** The tenant's config with decrypted provider keys, or null when there is no such tenant. */
  get(tenantId: string): Promise<TenantConfig | null> {
    if (!isTenantId(tenantId)) return Promise.resolve(null);
    const hit = this.cache.get(tenantId);
    if (hit !== undefined) {
      // Stale-while-revalidate: the hot path never waits on a refill (a busy database, a slow
      // store); admin writes delete entries outright, so a change is never served stale.
      if (Date.now() >= hit.refreshAt && !this.inflight.has(tenantId)) {
        this.startFill(tenantId).catch((e: unknown) =>
          this.logger.warn(`Could not refresh tenant ${tenantId}: ${(e as Error).message}`),
        );
      }
      return Promise.resolve(hit.config);
    }
    return this.inflight.get(tenantId) ?? this.startFill(tenantId);
  }

  private startFill(tenantId: string): Promise<TenantConfig | null> {
    let pending = this.inflight.get(tenantId);
    if (pending === undefined) {
      const fill = this.fill(tenantId);
      const forget = (): void => {
        if (this.inflight.get(tenantId) === fill) this.inflight.delete(tenantId);
      };
      fill.then(forget, forget);
      this.inflight.set(tenantId, fill);
      pending = fill;
    }
    return pending;
  }

  private async fill(tenantId: string): Promise<TenantConfig | null> {
    const generation = this.generation;
    const stored = await this.load(tenantId);
    const config = stored ? this.toConfig(stored) : null;
    if (generation === this.generation && this.cacheMs > 0) {
      const now = Date.now();
      const fresh = config ? this.cacheMs : Math.min(this.cacheMs, MISSING_TTL_MS);
      // Served stale for at most STALE_FACTOR times its freshness while refills fail.
      this.cache.set(tenantId, { config, refreshAt: now + fresh }, now + fresh * STALE_FACTOR);
    }
    return config;
  }

  private async load(tenantId: string): Promise<StoredTenantConfig | null> {
    let blob: string | null;
    let version: string;
    try {
      const [b, v] = await Promise.all([
        this.store.get(tenantConfigKey(tenantId)),
        this.store.get(tenantVersionKey(tenantId)),
      ]);
      blob = b;
      version = v ?? '0';
    } catch (e) {
      this.logger.warn(
        `Store unavailable, reading tenant ${tenantId} from the database: ${(e as Error).message}`,
      );
      return this.fromDatabase(tenantId, 'unversioned');
    }
    if (blob !== null) {
      const cached = parseStored(blob);
      if (cached?.version === version) return cached;
    }
    const fresh = await this.fromDatabase(tenantId, version);
    if (fresh) {
      await this.store
        .set(tenantConfigKey(tenantId), JSON.stringify(fresh), STORE_TTL_MS)
        .catch((e: unknown) =>
          this.logger.warn(`Could not cache tenant ${tenantId} in the store: ${(e as Error).message}`),
        );
    }
    return fresh;
  }

  private async fromDatabase(tenantId: string, version: string): Promise<StoredTenantConfig | null> {
    const tenant = await this.tenants.findOneBy({ id: tenantId });
    if (!tenant) return null;
    const providers = await this.providers.find({
      where: { tenantId },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
    return {
      version,
      tenant: {
        id: tenant.id,
        name: tenant.name,
        defaultModel: tenant.defaultModel,
        rateLimit:
          tenant.rateLimitRequests !== null && tenant.rateLimitWindowS !== null
            ? { requests: tenant.rateLimitRequests, windowS: tenant.rateLimitWindowS }
            : null,
        settings: tenant.settings,
      },
      providers: providers.map(toStoredProvider),
    };
  }

  private toConfig(stored: StoredTenantConfig): TenantConfig {
    const { tenant } = stored;
    return {
      id: tenant.id,
      name: tenant.name,
      defaultModel: tenant.defaultModel,
      rateLimit: tenant.rateLimit ?? {
        requests: this.config.defaultRateLimitRequests,
        windowS: this.config.defaultRateLimitWindowS,
      },
      settings: tenant.settings,
      providers: stored.providers.map((p) => this.decrypted(p)),
    };
  }

  private decrypted(stored: StoredProvider): ResolvedProvider {
    const { apiKeyEncrypted, ...provider } = stored;
    let apiKey = '';
    if (apiKeyEncrypted !== null) {
      try {
        apiKey = this.cipher.decrypt(apiKeyEncrypted, apiKeyAad(stored.id));
      } catch (e) {
        this.logger.error(
          `The API key of provider ${stored.id} cannot be decrypted: ${(e as Error).message}`,
        );
      }
    }
    return { ...provider, apiKey };
  }
}
