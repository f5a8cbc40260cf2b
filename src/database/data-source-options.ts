import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from './migrations/index.js';

export interface DatabaseTarget {
  url: string;
  /** PGlite serves one query at a time; more connections only queue behind each other. */
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
    extra: target.embedded ? { max: 1 } : { max: 10, connectionTimeoutMillis: 5000 },
  };
}
