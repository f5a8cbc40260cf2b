import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ParleyRequest } from '../common/context/request-context.js';
import { ParleyError } from '../common/errors/parley-error.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { missingToken } from './auth-errors.js';
import { extractBearerToken } from './bearer-token.js';
import { JwtVerifier } from './jwt-verifier.service.js';

export const ADMIN_TOKEN_USER_ID = 'admin-token';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * The admin API's guard: `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time), or a
 * JWT with `role: "admin"`. No or an invalid token: 401 `invalid_token`; a valid JWT of a
 * non-admin: 403 `forbidden`.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  private readonly adminTokenDigest?: Buffer;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly verifier: JwtVerifier,
  ) {
    this.adminTokenDigest = config.adminToken ? digest(config.adminToken) : undefined;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<ParleyRequest>();
    const token = extractBearerToken(req.headers.authorization);
    if (token === null) throw missingToken();
    // Hashing first gives equal lengths, so the comparison leaks neither content nor length.
    if (this.adminTokenDigest && timingSafeEqual(digest(token), this.adminTokenDigest)) {
      req.parley = {
        userId: ADMIN_TOKEN_USER_ID,
        claims: { sub: ADMIN_TOKEN_USER_ID, role: 'admin' },
        isAdmin: true,
      };
      return true;
    }
    const claims = await this.verifier.verify(req, token);
    if (claims.role !== 'admin')
      throw new ParleyError('forbidden', 'The admin API needs an admin token or role.');
    req.parley = { userId: claims.sub, claims, isAdmin: true };
    return true;
  }
}
