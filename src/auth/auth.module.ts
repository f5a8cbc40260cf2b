import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AdminGuard } from './admin.guard.js';
import { JwtAuthGuard } from './jwt-auth.guard.js';
import { JwtVerifier } from './jwt-verifier.service.js';
import { JwtStrategy } from './jwt.strategy.js';

/** Bearer JWT verification (secret or JWKS), the global auth guard and the admin guard. */
@Module({
  providers: [JwtStrategy, JwtVerifier, AdminGuard, { provide: APP_GUARD, useClass: JwtAuthGuard }],
  exports: [JwtVerifier, AdminGuard],
})
export class AuthModule {}
