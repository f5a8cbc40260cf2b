import type { TenantConfig } from '../tenants/tenant-config.types.js';

/** The tenant setting that turns token balances off: `settings: {token_quota: false}`. */
export const TOKEN_QUOTA_SETTING = 'token_quota';

/**
 * Whether a tenant's requests need a token balance. On unless the tenant's settings say
 * `token_quota: false` (the contract makes the balance check a step of every completion; the
 * setting is the operator's way out, e.g. for a self-hosted tenant that does not meter usage).
 */
export function isTokenQuotaEnforced(tenant: Pick<TenantConfig, 'settings'>): boolean {
  return tenant.settings[TOKEN_QUOTA_SETTING] !== false;
}
