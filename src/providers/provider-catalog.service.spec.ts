import { describe, expect, it } from 'vitest';
import { ParleyError } from '../common/errors/parley-error.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import { ProviderCatalogService } from './provider-catalog.service.js';
import { DEFAULT_CAPABILITIES, type ResolvedProvider } from './provider.types.js';

function provider(id: string, models: string[], extra: Partial<ResolvedProvider> = {}): ResolvedProvider {
  return {
    id,
    tenantId: 't',
    name: `name-${id}`,
    kind: 'chat_completions',
    baseUrl: `https://${id}.example.com/v1`,
    apiKey: `sk-${id}`,
    version: '1',
    defaultModel: models[0],
    models: models.map((m) => ({ id: m, contextLength: 1000, capabilities: { ...DEFAULT_CAPABILITIES } })),
    headers: {},
    timeoutMs: 1000,
    isDefault: false,
    storeResponses: true,
    createdAt: 1_700_000_000,
    ...extra,
  };
}

function tenant(providers: ResolvedProvider[], defaultModel: string | null = null): TenantConfig {
  return {
    id: 't',
    name: 'T',
    defaultModel,
    rateLimit: { requests: 1, windowS: 1 },
    settings: {},
    providers,
  };
}

// A: default, lists a1 + shared. B: lists b1 + shared. C: lists b1 + c1, no key.
const A = provider('a', ['a1', 'shared'], { isDefault: true, createdAt: 1_700_000_300 });
const B = provider('b', ['b1', 'shared'], { createdAt: 1_700_000_100 });
const C = provider('c', ['c1', 'b1'], { apiKey: '', createdAt: 1_700_000_200 });
const standard = tenant([B, C, A]);

type Expected = { provider: string; model: string } | { status: number; code: string; param?: string | null };

const cases: [string, TenantConfig, { model?: string; providerId?: string }, Expected][] = [
  ['request model on the default provider', standard, { model: 'a1' }, { provider: 'a', model: 'a1' }],
  [
    'default provider wins when several list the model',
    standard,
    { model: 'shared' },
    { provider: 'a', model: 'shared' },
  ],
  [
    'else the first provider (in order) that lists it',
    standard,
    { model: 'b1' },
    { provider: 'b', model: 'b1' },
  ],
  [
    'a model nobody lists',
    standard,
    { model: 'nope' },
    { status: 400, code: 'model_not_found', param: 'model' },
  ],
  ['no model: the tenant default_model', tenant([B, C, A], 'b1'), {}, { provider: 'b', model: 'b1' }],
  [
    'no model, no tenant default: the default provider default_model',
    standard,
    {},
    { provider: 'a', model: 'a1' },
  ],
  ['no model anywhere', tenant([]), {}, { status: 400, code: 'model_not_found', param: 'model' }],
  [
    'no providers at all',
    tenant([], 'x'),
    { model: 'x' },
    { status: 400, code: 'model_not_found', param: 'model' },
  ],
  [
    'provider_id that lists the model',
    standard,
    { model: 'shared', providerId: 'b' },
    { provider: 'b', model: 'shared' },
  ],
  [
    'provider_id with the tenant default_model',
    tenant([A, B], 'shared'),
    { providerId: 'b' },
    { provider: 'b', model: 'shared' },
  ],
  [
    'provider_id not listing the model',
    standard,
    { model: 'a1', providerId: 'b' },
    { status: 400, code: 'model_not_found', param: 'model' },
  ],
  [
    'provider_id of no provider of the tenant',
    standard,
    { model: 'a1', providerId: 'zzz' },
    { status: 404, code: 'not_found' },
  ],
  [
    'provider_id of a keyless provider',
    standard,
    { model: 'c1', providerId: 'c' },
    { status: 403, code: 'missing_api_key_configuration' },
  ],
  [
    'only a keyless provider lists the model',
    standard,
    { model: 'c1' },
    { status: 403, code: 'missing_api_key_configuration' },
  ],
  [
    'no provider marked default: the first is',
    tenant([B, { ...A, isDefault: false }]),
    { model: 'shared' },
    { provider: 'b', model: 'shared' },
  ],
  [
    'model ids match exactly',
    standard,
    { model: 'A1' },
    { status: 400, code: 'model_not_found', param: 'model' },
  ],
];

describe(ProviderCatalogService.name, () => {
  const sut = new ProviderCatalogService();

  describe('resolve', () => {
    it.each(cases)('%s', (_name, config, request, expected) => {
      if ('provider' in expected) {
        const target = sut.resolve(config, request);
        expect({ provider: target.provider.id, model: target.model.id }).toEqual(expected);
        expect(target.model.contextLength).toBe(1000);
      } else {
        let error: unknown;
        try {
          sut.resolve(config, request);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ParleyError);
        expect(error).toMatchObject({ status: expected.status, code: expected.code });
        if (expected.param !== undefined) expect((error as ParleyError).param).toBe(expected.param);
      }
    });
  });

  describe('listModels', () => {
    it('lists every model once, owned by the first provider (default first) that has it', () => {
      expect(sut.listModels(standard)).toEqual({
        object: 'list',
        data: [
          { id: 'a1', object: 'model', created: 1_700_000_300, owned_by: 'name-a' },
          { id: 'shared', object: 'model', created: 1_700_000_300, owned_by: 'name-a' },
          { id: 'b1', object: 'model', created: 1_700_000_100, owned_by: 'name-b' },
          { id: 'c1', object: 'model', created: 1_700_000_200, owned_by: 'name-c' },
        ],
      });
    });

    it('answers an empty list for a tenant without providers', () => {
      expect(sut.listModels(tenant([]))).toEqual({ object: 'list', data: [] });
    });
  });

  describe('retrieveModel', () => {
    it('answers one model, or 404', () => {
      expect(sut.retrieveModel(standard, 'b1').owned_by).toBe('name-b');
      expect(() => sut.retrieveModel(standard, 'nope')).toThrow(expect.objectContaining({ status: 404 }));
    });
  });
});
