import { QueryFailedError } from 'typeorm';

function sqlState(e: unknown): string | undefined {
  if (!(e instanceof QueryFailedError)) return undefined;
  const code = (e.driverError as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** PostgreSQL `unique_violation`. */
export function isUniqueViolation(e: unknown): boolean {
  return sqlState(e) === '23505';
}

/** PostgreSQL `foreign_key_violation` (e.g. the tenant was deleted meanwhile). */
export function isForeignKeyViolation(e: unknown): boolean {
  return sqlState(e) === '23503';
}
