import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import jwksRsa from 'jwks-rsa';
import { createSecretKey, type KeyObject } from 'node:crypto';
import { Strategy, type StrategyOptionsWithoutRequest } from 'passport-jwt';
import type { ParleyClaims } from '../common/context/request-context.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { extractBearerToken } from './bearer-token.js';
import { parseClaims } from './jwt-claims.js';

/** The only algorithms accepted: HS256 with JWT_SECRET, RS256/ES256 with a key from JWT_JWKS_URL. */
export const SECRET_ALGORITHMS = ['HS256'] as const;
export const JWKS_ALGORITHMS = ['RS256', 'ES256'] as const;

type KeyProvider = (rawJwt: string) => Promise<KeyObject | string>;

function decodeHeader(rawJwt: string): { alg?: unknown; kid?: unknown } | null {
  const dot = rawJwt.indexOf('.');
  if (dot <= 0) return null;
  try {
    const header: unknown = JSON.parse(Buffer.from(rawJwt.slice(0, dot), 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null ? header : null;
  } catch {
    return null;
  }
}

/**
 * Picks the verification key by the token's own `alg`, but only among the pinned algorithms of
 * what is configured: an HS256 token is checked against the secret, an RS256/ES256 token against
 * the JWKS key named by its `kid`. jsonwebtoken then re-checks the algorithm against the list and
 * the key type against the algorithm, so `alg: none` and HS/RS confusion cannot pass.
 */
function keyProvider(config: AppConfig): KeyProvider {
  const secret = config.jwtSecret ? createSecretKey(Buffer.from(config.jwtSecret, 'utf8')) : undefined;
  const jwks = config.jwtJwksUrl
    ? jwksRsa({
        jwksUri: config.jwtJwksUrl,
        cache: true,
        cacheMaxEntries: 32,
        cacheMaxAge: 10 * 60 * 1000,
        // An unknown `kid` refetches the key set (rotation), at most this often.
        rateLimit: true,
        jwksRequestsPerMinute: 10,
        timeout: 5000,
      })
    : undefined;
  return async (rawJwt) => {
    const header = decodeHeader(rawJwt);
    if (header === null) throw new Error('malformed token');
    const alg = header.alg;
    if (alg === 'HS256' && secret) return secret;
    if ((alg === 'RS256' || alg === 'ES256') && jwks) {
      const kid = typeof header.kid === 'string' ? header.kid : undefined;
      const key = await jwks.getSigningKey(kid);
      return key.getPublicKey();
    }
    throw new Error(`algorithm ${typeof alg === 'string' ? alg : 'none'} is not accepted`);
  };
}

function strategyOptions(config: AppConfig): StrategyOptionsWithoutRequest {
  const keyFor = keyProvider(config);
  const algorithms = [
    ...(config.jwtSecret ? SECRET_ALGORITHMS : []),
    ...(config.jwtJwksUrl ? JWKS_ALGORITHMS : []),
  ];
  return {
    jwtFromRequest: (req: { headers: { authorization?: string } }) =>
      extractBearerToken(req.headers.authorization),
    secretOrKeyProvider: (
      _req: unknown,
      rawJwt: string,
      done: (err: unknown, key?: string | Buffer) => void,
    ) => {
      keyFor(rawJwt).then(
        // jsonwebtoken takes a KeyObject as it is (the typings only name string | Buffer).
        (key) => done(null, key as string | Buffer),
        (err: unknown) => done(err),
      );
    },
    algorithms: algorithms.length > 0 ? algorithms : ['HS256'],
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    ignoreExpiration: false,
  };
}

/** passport-jwt, configured from the environment. Used through `JwtVerifier`, which caches. */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'parley-jwt') {
  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super(strategyOptions(config));
  }

  validate(payload: unknown): ParleyClaims {
    return parseClaims(payload);
  }
}
