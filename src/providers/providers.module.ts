import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module.js';
import { QuotaModule } from '../quota/quota.module.js';
import { TenantEntity } from '../tenants/entities/tenant.entity.js';
import { TenantsModule } from '../tenants/tenants.module.js';
import { AdapterRegistry } from './adapter-registry.service.js';
import { AdminProvidersController } from './admin-providers.controller.js';
import { ChatCompletionsAdapter } from './chat-completions/chat-completions.adapter.js';
import { DevelopmentBootstrapService } from './development-bootstrap.service.js';
import { ProviderEntity } from './entities/provider.entity.js';
import { ModelsController } from './models.controller.js';
import { OpenAiClientFactory } from './openai-client.factory.js';
import { ProviderCatalogService } from './provider-catalog.service.js';
import { ProviderKeyRotationService } from './provider-key-rotation.service.js';
import { ProvidersService } from './providers.service.js';
import { ResponsesAdapter } from './responses/responses.adapter.js';

/**
 * Provider records (admin API, keys encrypted), model and provider resolution, `GET /v1/models`,
 * and the upstream adapters (one per wire, discovered by `@ProviderAdapterFor`).
 * Re-exports TenantsModule, so a completions module importing this one gets TenantConfigService,
 * TenantAccessGuard (`@TenantScoped()`) and ProviderCatalogService.
 */
@Module({
  imports: [
    AuthModule,
    TenantsModule,
    QuotaModule,
    DiscoveryModule,
    TypeOrmModule.forFeature([ProviderEntity, TenantEntity]),
  ],
  controllers: [AdminProvidersController, ModelsController],
  providers: [
    ProviderCatalogService,
    ProvidersService,
    ProviderKeyRotationService,
    DevelopmentBootstrapService,
    OpenAiClientFactory,
    AdapterRegistry,
    ChatCompletionsAdapter,
    ResponsesAdapter,
  ],
  exports: [ProviderCatalogService, ProvidersService, AdapterRegistry, OpenAiClientFactory, TenantsModule],
})
export class ProvidersModule {}
