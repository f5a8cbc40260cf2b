import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { ExpiringLru } from '../auth/expiring-lru.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { TenantMemberEntity } from './entities/tenant-member.entity.js';
import { TenantEvents } from './tenant-events.service.js';

const CACHE_ENTRIES = 50_000;

/**
 * The tenants a user is a member of (database rows), cached in-process per user for
 * TENANT_CONFIG_CACHE_MS and dropped on membership changes, so the tenant guard does not query
 * the database per request.
 */
@Injectable()
export class MembershipService {
  private readonly cache = new ExpiringLru<string, readonly string[]>(CACHE_ENTRIES);
  private readonly inflight = new Map<string, Promise<readonly string[]>>();
  private generation = 0;
  private readonly cacheMs: number;

  constructor(
    @InjectRepository(TenantMemberEntity) private readonly members: Repository<TenantMemberEntity>,
    @Inject(APP_CONFIG) config: AppConfig,
    events: TenantEvents,
  ) {
    this.cacheMs = config.tenantConfigCacheMs;
    events.onChange((change) => {
      if (change.scope === 'config') return;
      this.generation++;
      if (change.scope === 'members' && change.userId !== undefined) {
        this.cache.delete(change.userId);
        this.inflight.delete(change.userId);
      } else {
        this.cache.clear();
        this.inflight.clear();
      }
    });
  }

  /** The ids of the tenants this user is a member of, by database membership. */
  tenantsOf(userId: string): Promise<readonly string[]> {
    const hit = this.cache.get(userId);
    if (hit !== undefined) return Promise.resolve(hit);
    let pending = this.inflight.get(userId);
    if (pending === undefined) {
      const fill = this.fill(userId);
      const forget = (): void => {
        if (this.inflight.get(userId) === fill) this.inflight.delete(userId);
      };
      fill.then(forget, forget);
      this.inflight.set(userId, fill);
      pending = fill;
    }
    return pending;
  }

  private async fill(userId: string): Promise<readonly string[]> {
    const generation = this.generation;
    const rows = await this.members.find({
      select: { tenantId: true },
      where: { userId },
      order: { tenantId: 'ASC' },
    });
    const tenantIds = Object.freeze(rows.map((r) => r.tenantId));
    if (generation === this.generation && this.cacheMs > 0)
      this.cache.set(userId, tenantIds, Date.now() + this.cacheMs);
    return tenantIds;
  }
}
