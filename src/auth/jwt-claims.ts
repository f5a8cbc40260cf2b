import type { ParleyClaims } from '../common/context/request-context.js';

export const MAX_USER_ID_LENGTH = 255;

export class InvalidClaimsError extends Error {}

/** Checks and copies the claims Parley reads from a verified JWT payload. */
export function parseClaims(payload: unknown): ParleyClaims {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new InvalidClaimsError('the token payload is not a JSON object');
  }
  const p = payload as Record<string, unknown>;
  const { sub, tenant_id: tenantId, tenants, role, exp } = p;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_USER_ID_LENGTH) {
    throw new InvalidClaimsError(`the token needs a "sub" claim of 1 to ${MAX_USER_ID_LENGTH} characters`);
  }
  const claims: ParleyClaims = { sub };
  if (tenantId !== undefined && tenantId !== null) {
    if (typeof tenantId !== 'string') throw new InvalidClaimsError('the "tenant_id" claim must be a string');
    claims.tenant_id = tenantId;
  }
  if (tenants !== undefined && tenants !== null) {
    if (!Array.isArray(tenants) || !tenants.every((t): t is string => typeof t === 'string')) {
      throw new InvalidClaimsError('the "tenants" claim must be an array of strings');
    }
    claims.tenants = [...tenants];
  }
  if (role !== undefined && role !== null) {
    if (typeof role !== 'string') throw new InvalidClaimsError('the "role" claim must be a string');
    claims.role = role;
  }
  if (typeof exp === 'number') claims.exp = exp;
  return Object.freeze(claims);
}
