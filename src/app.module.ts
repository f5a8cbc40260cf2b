import { DynamicModule, Module, type Type } from '@nestjs/common';
import { AuthModule } from './auth/auth.module.js';
import { CommonModule } from './common/common.module.js';
import { CompletionsModule } from './completions/completions.module.js';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { ConversationsModule } from './conversations/conversations.module.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { ProvidersModule } from './providers/providers.module.js';
import { StoreModule } from './store/store.module.js';
import { TenantsModule } from './tenants/tenants.module.js';
import { ToolsModule } from './tools/tools.module.js';

@Module({})
export class AppModule {
  /** `extraModules`: more modules to load, e.g. a team's own tools (the tests use it too). */
  static forRoot(config: AppConfig, extraModules: Array<Type | DynamicModule> = []): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        CommonModule,
        StoreModule.forRoot({ redisUrl: config.redisUrl, keyPrefix: config.storeKeyPrefix }),
        DatabaseModule.forRoot(),
        MetricsModule,
        HealthModule,
        AuthModule,
        TenantsModule,
        ProvidersModule,
        ToolsModule,
        ConversationsModule,
        CompletionsModule,
        ...extraModules,
      ],
    };
  }
}
