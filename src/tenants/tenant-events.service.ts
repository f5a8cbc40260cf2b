import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { STORE, type Store } from '../store/store.port.js';

export const TENANT_CHANGES_CHANNEL = 'tenant-changes';

/** What an admin write changed: the tenant's config, its members (one or all), or the whole tenant. */
export interface TenantChange {
  tenantId: string;
  scope: 'config' | 'members' | 'deleted';
  /** For `members`: the one user whose membership changed. */
  userId?: string;
}

/** The store key counting a tenant's changes; cached configs carry the count they were filled at. */
export function tenantVersionKey(tenantId: string): string {
  return `tenant-version:${tenantId}`;
}

function parseChange(message: string): TenantChange | null {
  try {
    const value = JSON.parse(message) as Partial<TenantChange>;
    if (typeof value.tenantId !== 'string') return null;
    if (value.scope !== 'config' && value.scope !== 'members' && value.scope !== 'deleted') return null;
    return {
      tenantId: value.tenantId,
      scope: value.scope,
      userId: typeof value.userId === 'string' ? value.userId : undefined,
    };
  } catch {
    return null;
  }
}

/**
 * Tells every instance that a tenant changed: bumps the tenant's version in the store (so a stale
 * copy there is never served again) and publishes the change, which each instance's caches
 * (tenant config, memberships) drop on receipt. The writing instance applies it at once.
 */
@Injectable()
export class TenantEvents implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('TenantEvents');
  private readonly listeners: ((change: TenantChange) => void)[] = [];
  private unsubscribe?: () => Promise<void>;

  constructor(@Inject(STORE) private readonly store: Store) {}

  async onModuleInit(): Promise<void> {
    try {
      this.unsubscribe = await this.store.subscribe(TENANT_CHANGES_CHANNEL, (message) => {
        const change = parseChange(message);
        if (change) this.dispatch(change);
      });
    } catch (e) {
      // The store may come up later; caches then expire by their TTL alone until a restart.
      this.logger.error(`Could not subscribe to tenant changes: ${(e as Error).message}`);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.unsubscribe?.().catch(() => undefined);
  }

  /** Registers a cache that must forget what a change touched. */
  onChange(listener: (change: TenantChange) => void): void {
    this.listeners.push(listener);
  }

  /** Call after the database write has committed. */
  async changed(change: TenantChange): Promise<void> {
    try {
      // The version first: a refill that starts after this can no longer take the stored copy.
      await this.store.incrBy(tenantVersionKey(change.tenantId), 1);
      this.dispatch(change);
      await this.store.publish(TENANT_CHANGES_CHANNEL, JSON.stringify(change));
    } catch (e) {
      this.dispatch(change);
      this.logger.error(
        `Could not announce a change of tenant ${change.tenantId} (other instances see it when their cache expires): ${(e as Error).message}`,
      );
    }
  }

  private dispatch(change: TenantChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (e) {
        this.logger.error(`A tenant change listener failed: ${(e as Error).message}`);
      }
    }
  }
}
