import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module.js';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { ProviderEntity } from '../providers/entities/provider.entity.js';
import { SecretCipher } from '../providers/secret-cipher.js';
import { AdminTenantsController } from './admin-tenants.controller.js';
import { TenantMemberEntity } from './entities/tenant-member.entity.js';
import { TenantEntity } from './entities/tenant.entity.js';
import { MembershipService } from './membership.service.js';
import { TenantAccessGuard } from './tenant-access.guard.js';
import { TenantConfigService } from './tenant-config.service.js';
import { TenantEvents } from './tenant-events.service.js';
import { TenantsService } from './tenants.service.js';

/**
 * Tenants and members (admin API), the cached tenant config (with its providers, keys decrypted in
 * memory only) and the tenant guard. Import it (or ProvidersModule, which re-exports it) to use
 * `@TenantScoped()`, TenantConfigService or TenantAccessGuard.
 */
@Module({
  imports: [AuthModule, TypeOrmModule.forFeature([TenantEntity, TenantMemberEntity, ProviderEntity])],
  controllers: [AdminTenantsController],
  providers: [
    {
      provide: SecretCipher,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        new SecretCipher(config.encryptionKey, config.encryptionKeysPrevious),
    },
    TenantEvents,
    TenantConfigService,
    MembershipService,
    TenantsService,
    TenantAccessGuard,
  ],
  exports: [
    SecretCipher,
    TenantEvents,
    TenantConfigService,
    MembershipService,
    TenantsService,
    TenantAccessGuard,
  ],
})
export class TenantsModule {}
