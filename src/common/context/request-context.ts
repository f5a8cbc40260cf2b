import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/** The verified claims Parley reads from a JWT. */
export interface ParleyClaims {
  sub: string;
  tenant_id?: string;
  tenants?: string[];
  role?: string;
  exp?: number;
}

/** Who is calling: set by the auth guard; `tenantId` by the tenant guard on tenant-scoped routes. */
export interface RequestContext {
  userId: string;
  claims: ParleyClaims;
  /** True for the admin token or a JWT with `role: "admin"`. */
  isAdmin: boolean;
  tenantId?: string;
}

/** A request context on a tenant-scoped route, after the tenant guard. */
export interface TenantContext extends RequestContext {
  tenantId: string;
}

export interface ParleyRequest extends FastifyRequest {
  parley?: RequestContext;
}

/** The caller's context in a handler: `@Ctx() ctx: TenantContext`. */
export const Ctx = createParamDecorator(
  (_data: unknown, context: ExecutionContext): RequestContext | undefined => {
    return context.switchToHttp().getRequest<ParleyRequest>().parley;
  },
);
