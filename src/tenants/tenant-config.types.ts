import type { ResolvedProvider } from '../providers/provider.types.js';

export interface RateLimit {
  requests: number;
  windowS: number;
}

/** Everything the hot path needs to know about a tenant, cached in-process for a few seconds. */
export interface TenantConfig {
  id: string;
  name: string;
  defaultModel: string | null;
  /** The tenant's own limit, else the configured default. */
  rateLimit: RateLimit;
  settings: TenantSettings;
  providers: ResolvedProvider[];
}

export interface TenantSettings {
  /** The `stream` default when a request leaves it out (OpenAI's default is false). */
  stream_default?: boolean;
  [key: string]: unknown;
}
