import { Injectable } from '@nestjs/common';
import { ParleyError } from '../common/errors/parley-error.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import type { CompletionTarget, ModelInfo, ResolvedProvider } from './provider.types.js';

export interface ResolveRequest {
  /** The request's `model`; omitted means the tenant's default. */
  model?: string;
  /** The request's `provider_id` / `x-provider-id`. */
  providerId?: string;
}

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: 'list';
  data: ModelObject[];
}

function modelNotFound(model: string): ParleyError {
  return new ParleyError(
    'model_not_found',
    `The model \`${model}\` does not exist or you do not have access to it.`,
    {
      param: 'model',
    },
  );
}

function listed(provider: ResolvedProvider, model: string): ModelInfo | undefined {
  return provider.models.find((m) => m.id === model);
}

/** The tenant's default provider: the one marked default, else the first one. */
export function defaultProvider(tenant: TenantConfig): ResolvedProvider | undefined {
  return tenant.providers.find((p) => p.isDefault) ?? tenant.providers[0];
}

/**
 * Model and provider resolution (contract section 11), on the cached tenant config: pure and
 * synchronous, no I/O on the hot path.
 */
@Injectable()
export class ProviderCatalogService {
  /**
   * The provider and model a completion runs against:
   * - model: the request's, else the tenant's `default_model`, else the default provider's (with
   *   `providerId`, that provider's own default when it does not serve the tenant's default);
   * - with `providerId`: that provider (one of the tenant's, else 404 `not_found`) must list it;
   * - without: the default provider when it lists the model, else the first provider that does;
   * - none lists it: 400 `model_not_found` (param `model`);
   * - the chosen provider has no API key: 403 `missing_api_key_configuration`.
   */
  resolve(tenant: TenantConfig, request: ResolveRequest): CompletionTarget {
    const fallback = defaultProvider(tenant);
    const chosen =
      request.providerId === undefined
        ? undefined
        : tenant.providers.find((p) => p.id === request.providerId);
    if (request.providerId !== undefined && !chosen) {
      throw new ParleyError('not_found', 'Provider not found.', { param: 'provider_id' });
    }
    // A caller who picks a provider but no model means that provider's own default, unless the
    // tenant's default model is one it serves.
    const tenantDefault =
      chosen && tenant.defaultModel && !listed(chosen, tenant.defaultModel) ? undefined : tenant.defaultModel;
    const model = request.model ?? tenantDefault ?? (chosen ?? fallback)?.defaultModel;
    if (model === undefined) {
      throw new ParleyError('model_not_found', 'No model was given and the tenant has no default model.', {
        param: 'model',
      });
    }
    let target: CompletionTarget | undefined;
    if (chosen) {
      const info = listed(chosen, model);
      if (info) target = { provider: chosen, model: info };
    } else {
      const info = fallback && listed(fallback, model);
      if (fallback && info) {
        target = { provider: fallback, model: info };
      } else {
        for (const provider of tenant.providers) {
          const found = listed(provider, model);
          if (found) {
            target = { provider, model: found };
            break;
          }
        }
      }
    }
    if (!target) throw modelNotFound(model);
    if (target.provider.apiKey === '') {
      throw new ParleyError(
        'missing_api_key_configuration',
        `The provider "${target.provider.name}" has no API key configured.`,
      );
    }
    return target;
  }

  /** `GET /v1/models`: every model of every provider of the tenant, once each (default provider first). */
  listModels(tenant: TenantConfig): ModelList {
    const seen = new Set<string>();
    const data: ModelObject[] = [];
    const first = defaultProvider(tenant);
    const providers = first ? [first, ...tenant.providers.filter((p) => p !== first)] : [];
    for (const provider of providers) {
      for (const model of provider.models) {
        if (seen.has(model.id)) continue;
        seen.add(model.id);
        data.push({
          id: model.id,
          object: 'model',
          created: provider.createdAt ?? 0,
          owned_by: provider.name,
        });
      }
    }
    return { object: 'list', data };
  }

  /** `GET /v1/models/:model`: one model of the tenant, else 404 as OpenAI answers it. */
  retrieveModel(tenant: TenantConfig, id: string): ModelObject {
    const model = this.listModels(tenant).data.find((m) => m.id === id);
    if (!model) {
      throw new ParleyError(
        'model_not_found',
        `The model \`${id}\` does not exist or you do not have access to it.`,
        {
          param: 'model',
          status: 404,
        },
      );
    }
    return model;
  }
}
