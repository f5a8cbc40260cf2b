import { DynamicModule, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { AppConfig } from '../config/app-config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { EmbeddedPostgres } from './embedded-postgres.js';

/** Owns the embedded server's lifetime: started before TypeORM connects, stopped after it closes. */
@Injectable()
export class EmbeddedPostgresHolder implements OnApplicationShutdown {
  private readonly logger = new Logger('Database');
  private embedded?: EmbeddedPostgres;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async resolveTarget(): Promise<{ url: string; embedded: boolean }> {
    if (this.config.databaseUrl) return { url: this.config.databaseUrl, embedded: false };
    this.embedded = await EmbeddedPostgres.start(this.config.dataDir);
    this.logger.log(`Using the embedded PostgreSQL (PGlite) in ${this.config.dataDir}`);
    return { url: this.embedded.url, embedded: true };
  }

  /** The embedded server's address, so a second instance in the same process can share it (tests). */
  get url(): string | undefined {
    return this.embedded?.url;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.embedded?.stop();
  }
}

@Module({ providers: [EmbeddedPostgresHolder], exports: [EmbeddedPostgresHolder] })
class EmbeddedPostgresModule {}

@Module({})
export class DatabaseModule {
  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          imports: [EmbeddedPostgresModule],
          inject: [EmbeddedPostgresHolder],
          useFactory: async (holder: EmbeddedPostgresHolder) => ({
            ...buildDataSourceOptions(await holder.resolveTarget()),
            autoLoadEntities: true,
            migrationsRun: true,
            retryAttempts: 2,
            retryDelay: 500,
          }),
        }),
      ],
    };
  }
}
