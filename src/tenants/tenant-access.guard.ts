import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { missingToken } from '../auth/auth-errors.js';
import type { ParleyRequest } from '../common/context/request-context.js';
import { ParleyError } from '../common/errors/parley-error.js';
import { MembershipService } from './membership.service.js';
import { TenantConfigService } from './tenant-config.service.js';
import type { TenantConfig } from './tenant-config.types.js';

/** A request on a tenant-scoped route, after the tenant guard. */
export interface TenantScopedRequest extends ParleyRequest {
  /** The tenant's cached config, as the guard found it. */
  parleyTenant?: TenantConfig;
}

function accessDenied(): ParleyError {
  // The same answer for a tenant that does not exist: no enumeration.
  return new ParleyError('tenant_access_denied', 'You do not have access to this tenant.');
}

/**
 * The tenant guard for `/v1/...` and `/:tenantId/v1/...` routes. The tenant is the `:tenantId`
 * path parameter; on `/v1/...` the token's `tenant_id` claim, else the user's only tenant, else
 * 400 `tenant_required`. The tenant must exist and the user be a member (a membership row, or the
 * tenant listed in the token's `tenants` / `tenant_id` claims), else 403 `tenant_access_denied`.
 * Sets `req.parley.tenantId` and `req.parleyTenant`. Steady state: in-process caches only.
 */
@Injectable()
export class TenantAccessGuard implements CanActivate {
  constructor(
    private readonly tenantConfigs: TenantConfigService,
    private readonly memberships: MembershipService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<TenantScopedRequest>();
    const ctx = req.parley;
    if (!ctx) throw missingToken();
    const { claims } = ctx;
    const pathTenant = (req.params as Record<string, string | undefined>).tenantId;
    let memberOf: readonly string[] | undefined;
    let tenantId: string;
    if (pathTenant !== undefined) {
      tenantId = pathTenant;
    } else if (claims.tenant_id !== undefined) {
      tenantId = claims.tenant_id;
    } else {
      memberOf = await this.memberships.tenantsOf(ctx.userId);
      const candidates = new Set([...memberOf, ...(claims.tenants ?? [])]);
      if (candidates.size !== 1) {
        throw new ParleyError(
          'tenant_required',
          'Cannot tell which tenant to use: put a tenant_id claim in the token, or call /<tenantId>/v1/... instead.',
        );
      }
      tenantId = candidates.values().next().value!;
    }
    const tenant = await this.tenantConfigs.get(tenantId);
    if (!tenant) throw accessDenied();
    if (claims.tenant_id !== tenantId && !claims.tenants?.includes(tenantId)) {
      memberOf ??= await this.memberships.tenantsOf(ctx.userId);
      if (!memberOf.includes(tenantId)) throw accessDenied();
    }
    ctx.tenantId = tenantId;
    req.parleyTenant = tenant;
    return true;
  }
}
