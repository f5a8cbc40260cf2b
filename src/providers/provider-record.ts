import type { ProviderEntity } from './entities/provider.entity.js';
import type { ResolvedProvider } from './provider.types.js';

/**
 * A provider as the shared store keeps it (inside a tenant's config): everything the completion
 * path needs, with the API key still encrypted. Only the in-process cache holds the plaintext.
 */
export interface StoredProvider extends Omit<ResolvedProvider, 'apiKey' | 'createdAt'> {
  apiKeyEncrypted: string | null;
  createdAt: number;
}

export function toStoredProvider(row: ProviderEntity): StoredProvider {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    kind: row.kind,
    baseUrl: row.baseUrl,
    apiKeyEncrypted: row.apiKeyEncrypted,
    version: `${row.revision}-${row.updatedAt.getTime().toString(36)}`,
    defaultModel: row.defaultModel,
    models: row.models,
    headers: row.headers,
    timeoutMs: row.timeoutMs,
    isDefault: row.isDefault,
    storeResponses: row.storeResponses,
    createdAt: Math.floor(row.createdAt.getTime() / 1000),
  };
}

/** The additional authenticated data an API key blob is bound to: its own row. */
export function apiKeyAad(providerId: string): string {
  return `provider:${providerId}`;
}
