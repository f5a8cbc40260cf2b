import { type CanActivate, type ExecutionContext, Injectable, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ParleyError } from '../../common/errors/parley-error.js';
import { TenantConfigService } from '../../tenants/tenant-config.service.js';
import { balanceKey } from '../balance/balance-keys.js';
import { OutageLog, type QuotaRequest, storeUnavailable, tenantOfRequest } from '../quota-request.js';
import { isTokenQuotaEnforced } from '../quota-settings.js';
import { formatDuration, retryAfterSeconds } from './format-duration.js';
import { type RateLimitHit, StoreThrottlerStorage } from './store-throttler.storage.js';

export const RATE_LIMIT_HEADERS = {
  limit: 'x-ratelimit-limit-requests',
  remaining: 'x-ratelimit-remaining-requests',
  reset: 'x-ratelimit-reset-requests',
} as const;

/**
 * The per-tenant rate limit (pipeline step 4), after TenantAccessGuard: `rateLimit.requests` per
 * `rateLimit.windowS` for the whole tenant (its own limit, else the configured default), counted in
 * the store so that it is exact across instances. Sets the `x-ratelimit-*-requests` headers before
 * the handler runs (so JSON, SSE and error answers all carry them); over the limit: 429
 * `rate_limit_exceeded` with `Retry-After`. The store unreachable: 503 (fail closed).
 *
 * When the tenant has a token quota, the same round trip also reads the caller's balance for
 * TokenBalanceGuard (`req.parleyBalance`).
 */
@Injectable()
export class TenantRateLimitGuard implements CanActivate {
  private readonly outage = new OutageLog(new Logger('RateLimit'), 'Rate limiting');

  constructor(
    private readonly storage: StoreThrottlerStorage,
    private readonly tenants: TenantConfigService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<QuotaRequest>();
    // On the raw response, so streamed and hijacked answers carry them too.
    const res = http.getResponse<FastifyReply>().raw;
    const { userId, tenant } = await tenantOfRequest(req, this.tenants, TenantRateLimitGuard.name);
    const { requests: limit, windowS } = tenant.rateLimit;
    const windowMs = windowS * 1000;
    let hit: RateLimitHit;
    try {
      if (isTokenQuotaEnforced(tenant)) {
        const result = await this.storage.hitAndPeek(tenant.id, windowMs, balanceKey(tenant.id, userId));
        req.parleyBalance = result.peeked;
        hit = result;
      } else {
        hit = await this.storage.hit(tenant.id, windowMs);
      }
    } catch (err) {
      this.outage.failed(err);
      throw storeUnavailable('Rate limiting', err);
    }
    this.outage.succeeded();
    res.setHeader(RATE_LIMIT_HEADERS.limit, String(limit));
    res.setHeader(RATE_LIMIT_HEADERS.remaining, String(Math.max(0, limit - hit.hits)));
    res.setHeader(RATE_LIMIT_HEADERS.reset, formatDuration(hit.resetMs));
    if (hit.hits > limit) {
      throw new ParleyError('rate_limit_exceeded', 'Rate limit exceeded', {
        headers: { 'Retry-After': String(retryAfterSeconds(hit.resetMs)) },
      });
    }
    return true;
  }
}
