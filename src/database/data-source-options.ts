import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from './migrations/index.js';

export interface DatabaseTarget {
  url: string;
  /**
   * PGlite runs one query at a time; a few connections keep the next ones waiting in its worker
   * while one runs, instead of each waiting out a round trip first.
   */
  embedded: boolean;
}

export function buildDataSourceOptions(target: DatabaseTarget): DataSourceOptions {
  return {
    type: 'postgres',
    url: target.url,
    uuidExtension: 'pgcrypto',
    migrations: MIGRATIONS,
    migrationsTableName: 'parley_migrations',
    synchronize: false,
    logging: ['error'],
    extra: target.embedded ? { max: 4 } : { max: 10, connectionTimeoutMillis: 5000 },
  };
}
