import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { IS_PUBLIC } from '../common/context/public.decorator.js';
import type { ParleyClaims, ParleyRequest, RequestContext } from '../common/context/request-context.js';
import { IS_ADMIN_ROUTE } from './admin-route.decorator.js';
import { missingToken } from './auth-errors.js';
import { extractBearerToken } from './bearer-token.js';
import { JwtVerifier } from './jwt-verifier.service.js';

type RouteKind = 'public' | 'admin' | 'user';

function contextOf(claims: ParleyClaims): RequestContext {
  // A fresh object per request: the tenant guard adds `tenantId` to it.
  return { userId: claims.sub, claims, isAdmin: claims.role === 'admin' };
}

/**
 * The global guard (APP_GUARD): every route needs a valid bearer JWT unless it is `@Public()`;
 * admin routes are left to the admin guard. Sets `req.parley`. A token seen before costs a map
 * lookup (see JwtVerifier).
 */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  private readonly kinds = new WeakMap<object, RouteKind>();

  constructor(
    private readonly reflector: Reflector,
    private readonly verifier: JwtVerifier,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (this.kindOf(context) !== 'user') return true;
    const req = context.switchToHttp().getRequest<ParleyRequest>();
    const token = extractBearerToken(req.headers.authorization);
    if (token === null) throw missingToken();
    const cached = this.verifier.cached(token);
    if (cached) {
      req.parley = contextOf(cached);
      return true;
    }
    return this.verifier.verify(req, token).then((claims) => {
      req.parley = contextOf(claims);
      return true;
    });
  }

  private kindOf(context: ExecutionContext): RouteKind {
    const handler = context.getHandler();
    let kind = this.kinds.get(handler);
    if (kind === undefined) {
      const targets = [handler, context.getClass()];
      kind = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)
        ? 'public'
        : this.reflector.getAllAndOverride<boolean>(IS_ADMIN_ROUTE, targets)
          ? 'admin'
          : 'user';
      this.kinds.set(handler, kind);
    }
    return kind;
  }
}
