import type { DataSourceOptions } from 'typeorm';
import { TenantsAndProviders1795295813657 } from './1795295813657-tenants-and-providers.js';
import { TokenLedger1795296194959 } from './1795296194959-token-ledger.js';
import { Conversations1795296200000 } from './1795296200000-conversations.js';

/** Every migration, in order. Listed explicitly so they load the same from src/ and dist/. */
export const MIGRATIONS: NonNullable<DataSourceOptions['migrations']> = [
  TenantsAndProviders1795295813657,
  TokenLedger1795296194959,
  Conversations1795296200000,
];
