import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { AdminBalancesController } from './admin/admin-balances.controller.js';
import { AdminBalancesService } from './admin/admin-balances.service.js';
import { BalanceService } from './balance/balance.service.js';
import { TokenBalanceGuard } from './balance/token-balance.guard.js';
import { TokenLedgerEntity } from './ledger/token-ledger.entity.js';
import { TokenLedgerService } from './ledger/token-ledger.service.js';
import { StoreThrottlerStorage } from './rate-limit/store-throttler.storage.js';
import { TenantRateLimitGuard } from './rate-limit/tenant-rate-limit.guard.js';

/**
 * Per-tenant rate limits and per-(tenant, user) token balances with their ledger, and the admin
 * balance routes. Put the guards on a tenant-scoped route in pipeline order:
 * `@UseGuards(TenantAccessGuard, TenantRateLimitGuard, TokenBalanceGuard)`; the completion service
 * reserves with BalanceService and settles or releases after the call. Re-exports TenantsModule, so
 * an importing module can instantiate the guards.
 */
@Module({
  imports: [AuthModule, TenantsModule, TypeOrmModule.forFeature([TokenLedgerEntity])],
  controllers: [AdminBalancesController],
  providers: [
    StoreThrottlerStorage,
    TokenLedgerService,
    BalanceService,
    AdminBalancesService,
    TenantRateLimitGuard,
    TokenBalanceGuard,
  ],
  exports: [
    StoreThrottlerStorage,
    TokenLedgerService,
    BalanceService,
    TenantRateLimitGuard,
    TokenBalanceGuard,
    TenantsModule,
  ],
})
export class QuotaModule {}
