import { applyDecorators, createParamDecorator, type ExecutionContext, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ParleyError } from '../common/errors/parley-error.js';
import { TenantAccessGuard, type TenantScopedRequest } from './tenant-access.guard.js';
import type { TenantConfig } from './tenant-config.types.js';

/**
 * Marks a route as tenant-scoped (`/v1/...` or `/:tenantId/v1/...`): runs TenantAccessGuard after
 * the auth guard, so `@Ctx() ctx: TenantContext` has `tenantId` and `@CurrentTenant()` the config.
 */
export const TenantScoped = (): ClassDecorator & MethodDecorator =>
  applyDecorators(
    UseGuards(TenantAccessGuard),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'No token, or not a valid one (`invalid_token`).' }),
    ApiForbiddenResponse({
      description: 'Not a member of the tenant, or no such tenant (`tenant_access_denied`).',
    }),
  );

/** The tenant's cached config on a `@TenantScoped()` route. */
export const CurrentTenant = createParamDecorator(
  (_data: unknown, context: ExecutionContext): TenantConfig => {
    const tenant = context.switchToHttp().getRequest<TenantScopedRequest>().parleyTenant;
    if (!tenant) throw new ParleyError('internal_error', 'The route is not tenant-scoped.');
    return tenant;
  },
);
