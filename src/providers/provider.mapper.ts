import type { ModelInputDto, ProviderDto } from './dto/provider.dto.js';
import type { ProviderEntity } from './entities/provider.entity.js';
import { DEFAULT_CAPABILITIES, type ModelInfo } from './provider.types.js';

const SECRET_HEADER = /authorization|api[-_]?key|token|secret|cookie|password/i;
export const REDACTED = '***';

/** Header values that look like credentials are never echoed back. */
export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, SECRET_HEADER.test(name) ? REDACTED : value]),
  );
}

export function toModelInfo(model: ModelInputDto): ModelInfo {
  return {
    id: model.id,
    contextLength: model.context_length,
    capabilities: {
      tools: model.capabilities?.tools ?? DEFAULT_CAPABILITIES.tools,
      vision: model.capabilities?.vision ?? DEFAULT_CAPABILITIES.vision,
      audio: model.capabilities?.audio ?? DEFAULT_CAPABILITIES.audio,
      reasoning: model.capabilities?.reasoning ?? DEFAULT_CAPABILITIES.reasoning,
      verbosity: model.capabilities?.verbosity ?? DEFAULT_CAPABILITIES.verbosity,
    },
  };
}

/** The admin API's view of a provider: never the key, only whether there is one. */
export function toProviderDto(row: ProviderEntity): ProviderDto {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    name: row.name,
    kind: row.kind,
    base_url: row.baseUrl,
    has_api_key: row.apiKeyEncrypted !== null,
    default_model: row.defaultModel,
    models: row.models.map((m) => ({
      id: m.id,
      context_length: m.contextLength,
      capabilities: { ...m.capabilities },
    })),
    is_default: row.isDefault,
    headers: redactHeaders(row.headers),
    timeout_ms: row.timeoutMs,
    store_responses: row.storeResponses,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
