import type { DataSourceOptions } from 'typeorm';

/** Every migration, in order. Listed explicitly so they load the same from src/ and dist/. */
export const MIGRATIONS: NonNullable<DataSourceOptions['migrations']> = [];
