import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import passport from 'passport';
import type { ParleyClaims } from '../common/context/request-context.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { invalidToken } from './auth-errors.js';
import { ExpiringLru } from './expiring-lru.js';
import { InvalidClaimsError } from './jwt-claims.js';
import { JwtStrategy } from './jwt.strategy.js';

/** How many distinct verified tokens are kept; the least recently used goes first. */
const CACHE_ENTRIES = 10_000;
/** A token without `exp` is re-verified after this long (so a key removed from the JWKS stops it). */
const MAX_CACHE_MS = 10 * 60 * 1000;

function failureReason(info: unknown): string {
  if (info instanceof InvalidClaimsError) return info.message;
  if (info instanceof Error) {
    // jsonwebtoken's own wording: "jwt expired", "invalid signature", "jwt not active", ...
    if (info.name === 'TokenExpiredError') return 'the token has expired';
    if (info.name === 'NotBeforeError') return 'the token is not valid yet';
    return info.message.replace(/^jwt /, 'token ');
  }
  return 'verification failed';
}

/**
 * Verifies bearer JWTs through passport-jwt and remembers the verified claims per token until
 * the token's `exp`, so a repeated token costs a map lookup instead of signature crypto.
 */
@Injectable()
export class JwtVerifier implements OnModuleInit {
  private readonly verified = new ExpiringLru<string, ParleyClaims>(CACHE_ENTRIES);

  constructor(
    private readonly strategy: JwtStrategy,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    if (!this.config.jwtSecret && !this.config.jwtJwksUrl) {
      new Logger('Auth').warn(
        'Neither JWT_SECRET nor JWT_JWKS_URL is set: every user token will be refused.',
      );
    }
  }

  /** The claims of a token verified before and not expired since, without any crypto. */
  cached(token: string): ParleyClaims | undefined {
    return this.verified.get(token);
  }

  /** Verifies the request's bearer token (`token` is what the caller extracted from it). */
  async verify(req: { headers: IncomingHttpHeaders }, token: string): Promise<ParleyClaims> {
    const hit = this.verified.get(token);
    if (hit) return hit;
    const claims = await new Promise<ParleyClaims>((resolve, reject) => {
      // The strategy instance itself, not a name: passport's registry is process-wide, and two
      // app instances in one process (tests) may be configured differently.
      const authenticate = passport.authenticate(
        this.strategy,
        { session: false },
        (err: unknown, user: ParleyClaims | false, info: unknown) => {
          if (err || !user) reject(invalidToken(failureReason(err ?? info)));
          else resolve(user);
        },
      ) as (req: unknown, res: unknown, next: (err?: unknown) => void) => void;
      // With a callback passport never touches the response; the strategy reads only the headers.
      authenticate(req, undefined, (err?: unknown) => reject(invalidToken(failureReason(err))));
    });
    const now = Date.now();
    const expiresAt = Math.min(claims.exp !== undefined ? claims.exp * 1000 : Infinity, now + MAX_CACHE_MS);
    if (expiresAt > now) this.verified.set(token, claims, expiresAt);
    return claims;
  }
}
