import { ParleyError } from '../common/errors/parley-error.js';
import type { TenantScopedRequest } from '../tenants/tenant-access.guard.js';
import type { TenantConfigService } from '../tenants/tenant-config.service.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import type { Admission } from './rate-limit/admission.js';

/** A tenant-scoped request as the quota guards leave it. */
export interface QuotaRequest extends TenantScopedRequest {
  /**
   * The caller's token balance, read by TenantRateLimitGuard in the same round trip as the rate
   * limit, so that TokenBalanceGuard needs no second one. Absent when the tenant has no token quota.
   */
  parleyBalance?: number;
  /** The rate limit's verdict, set by TenantRateLimitGuard; it may still be on its way. */
  parleyAdmission?: Admission;
}

/** The caller and the tenant's config on a route behind TenantAccessGuard. */
export async function tenantOfRequest(
  req: QuotaRequest,
  tenants: TenantConfigService,
  guard: string,
): Promise<{ userId: string; tenant: TenantConfig }> {
  const ctx = req.parley;
  if (!ctx?.tenantId) {
    throw new ParleyError('internal_error', `${guard} must run after the auth and tenant guards.`);
  }
  const tenant = req.parleyTenant ?? (await tenants.get(ctx.tenantId));
  if (!tenant) throw new ParleyError('tenant_access_denied', 'You do not have access to this tenant.');
  return { userId: ctx.userId, tenant };
}

/** 503 `service_unavailable`: fail closed while the store cannot be reached. */
export function storeUnavailable(what: string, cause?: unknown): ParleyError {
  return new ParleyError('service_unavailable', `${what} is temporarily unavailable; please retry.`, {
    headers: { 'Retry-After': '1' },
    cause,
  });
}
