import { type CanActivate, type ExecutionContext, Injectable, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { ParleyError } from '../../common/errors/parley-error.js';
import { OutageLog } from '../../store/outage-log.js';
import { TenantConfigService } from '../../tenants/tenant-config.service.js';
import type { TenantConfig } from '../../tenants/tenant-config.types.js';
import { balanceKey } from '../balance/balance-keys.js';
import { type QuotaRequest, storeUnavailable, tenantOfRequest } from '../quota-request.js';
import { isTokenQuotaEnforced } from '../quota-settings.js';
import { Admission } from './admission.js';
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
 * the store so that it is exact across instances. Sets the `x-ratelimit-*-requests` headers once
 * the store has answered (before anything is written, since everything written waits for the
 * verdict); over the limit: 429 `rate_limit_exceeded` with `Retry-After`. The store unreachable: 503
 * (fail closed).
 *
 * The verdict is left on the request (`Admission`). When the tenant has a token quota, the same round
 * trip reads the caller's balance for TokenBalanceGuard (`req.parleyBalance`), so the guard waits
 * for it and throws a refusal itself. Without one, nothing before the provider call depends on it:
 * on a quiet instance the guard lets the request through at once and the round trip overlaps its
 * preparation.
 */
@Injectable()
export class TenantRateLimitGuard implements CanActivate {
  private readonly outage = new OutageLog(new Logger('RateLimit'), 'Rate limiting', 'answering 503');
  private verdictsInFlight = 0;

  constructor(
    private readonly storage: StoreThrottlerStorage,
    private readonly tenants: TenantConfigService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<QuotaRequest>();
    const { userId, tenant } = await tenantOfRequest(req, this.tenants, TenantRateLimitGuard.name);
    const metered = isTokenQuotaEnforced(tenant);
    // On the raw response, so streamed and hijacked answers carry them too.
    const res = http.getResponse<FastifyReply>().raw;
    const alone = this.verdictsInFlight === 0;
    this.verdictsInFlight++;
    const verdict = this.verdict(req, res, tenant, metered ? userId : undefined);
    const settled = (): void => {
      this.verdictsInFlight--;
    };
    void verdict.then(settled, settled);
    const admission = Admission.pending(verdict);
    req.parleyAdmission = admission;
    // Overlapping pays when the instance is quiet: the round trip is then pure waiting. Under load
    // (another verdict on its way) requests wait here: their store calls leave in one batch and they
    // go on together, which costs less CPU per request (about 15% more requests/s at 64 connections).
    if (metered || !alone) await admission.admitted();
    return true;
  }

  /** Counts the hit; resolves to the refusal, if any (never rejects). `balanceOf`: also peek that user's balance. */
  private async verdict(
    req: QuotaRequest,
    res: ServerResponse,
    tenant: TenantConfig,
    balanceOf: string | undefined,
  ): Promise<ParleyError | undefined> {
    const { requests: limit, windowS } = tenant.rateLimit;
    const windowMs = windowS * 1000;
    let hit: RateLimitHit;
    try {
      if (balanceOf === undefined) {
        hit = await this.storage.hit(tenant.id, windowMs);
      } else {
        const result = await this.storage.hitAndPeek(tenant.id, windowMs, balanceKey(tenant.id, balanceOf));
        req.parleyBalance = result.peeked;
        hit = result;
      }
    } catch (err) {
      this.outage.failed(err);
      return storeUnavailable('Rate limiting', err);
    }
    this.outage.succeeded();
    // Already sent only when an SSE stream's first-event wait ran out before the store answered.
    if (!res.headersSent) {
      res.setHeader(RATE_LIMIT_HEADERS.limit, String(limit));
      res.setHeader(RATE_LIMIT_HEADERS.remaining, String(Math.max(0, limit - hit.hits)));
      res.setHeader(RATE_LIMIT_HEADERS.reset, formatDuration(hit.resetMs));
    }
    if (hit.hits <= limit) return undefined;
    return new ParleyError('rate_limit_exceeded', 'Rate limit exceeded', {
      headers: { 'Retry-After': String(retryAfterSeconds(hit.resetMs)) },
    });
  }
}
