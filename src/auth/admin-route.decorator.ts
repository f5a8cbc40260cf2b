import { applyDecorators, SetMetadata, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminGuard } from './admin.guard.js';

export const IS_ADMIN_ROUTE = 'parley:isAdminRoute';

/**
 * Marks a controller (or route) as part of the admin API: the admin guard authenticates it
 * (ADMIN_TOKEN or a JWT with `role: "admin"`) instead of the user auth guard.
 */
export const AdminRoute = (): ClassDecorator & MethodDecorator =>
  applyDecorators(
    SetMetadata(IS_ADMIN_ROUTE, true),
    UseGuards(AdminGuard),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'No token, or not a valid one (`invalid_token`).' }),
    ApiForbiddenResponse({ description: 'A valid JWT without `role: "admin"` (`forbidden`).' }),
  );
