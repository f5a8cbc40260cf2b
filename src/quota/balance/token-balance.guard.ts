import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { TenantConfigService } from '../../tenants/tenant-config.service.js';
import { type QuotaRequest, tenantOfRequest } from '../quota-request.js';
import { isTokenQuotaEnforced } from '../quota-settings.js';
import { BalanceService, insufficientTokens } from './balance.service.js';

/**
 * The token balance pre-check (pipeline step 5), after the tenant guard and the rate limit guard, so
 * before body validation: balance < 1 is 429 `insufficient_tokens`. Uses the balance the rate limit
 * guard read in its round trip when there is one, else reads it (one store call). The atomic
 * reservation comes later, in the completion service, once the estimate is known. Tenants without a
 * token quota pass at once; the store unreachable: 503.
 */
@Injectable()
export class TokenBalanceGuard implements CanActivate {
  constructor(
    private readonly balances: BalanceService,
    private readonly tenants: TenantConfigService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<QuotaRequest>();
    const { userId, tenant } = await tenantOfRequest(req, this.tenants, TokenBalanceGuard.name);
    if (!isTokenQuotaEnforced(tenant)) return true;
    const peeked = req.parleyBalance;
    // An empty peek is read again through `get`, which refunds the user's expired leases first.
    const balance = peeked !== undefined && peeked >= 1 ? peeked : await this.balances.get(tenant.id, userId);
    if (balance < 1) throw insufficientTokens();
    return true;
  }
}
