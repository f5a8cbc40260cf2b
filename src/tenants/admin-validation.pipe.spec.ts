import { describe, expect, it } from 'vitest';
import { ParleyError } from '../common/errors/parley-error.js';
import { ListConversationsQueryDto, UpdateConversationDto } from '../conversations/dto/conversation.dto.js';
import { CreateProviderDto } from '../providers/dto/provider.dto.js';
import { AdjustBalanceDto } from '../quota/admin/balance.dto.js';
import { AdminValidationPipe } from './admin-validation.pipe.js';
import { CreateTenantDto } from './dto/tenant.dto.js';

const sut = new AdminValidationPipe();

async function failure(metatype: new () => object, value: unknown): Promise<ParleyError> {
  try {
    await sut.transform(value, { type: 'body', metatype });
  } catch (e) {
    if (e instanceof ParleyError) return e;
    throw e;
  }
  throw new Error('expected a validation failure');
}

const provider = {
  name: 'p',
  kind: 'chat_completions',
  base_url: 'https://api.example.com/v1',
  default_model: 'm',
  models: [{ id: 'm', context_length: 1000 }],
};

describe(AdminValidationPipe.name, () => {
  it('passes and transforms a valid body', async () => {
    const dto = (await sut.transform(provider, {
      type: 'body',
      metatype: CreateProviderDto,
    })) as CreateProviderDto;
    expect(dto).toBeInstanceOf(CreateProviderDto);
    expect(dto.models[0].context_length).toBe(1000);
  });

  it.each([
    [CreateTenantDto, {}, 'name'],
    [CreateTenantDto, { name: 'x', id: '-bad' }, 'id'],
    [CreateTenantDto, { name: 'x', extra: 1 }, 'extra'],
    [CreateTenantDto, { name: 'x', rate_limit: { requests: 0, window_s: 60 } }, 'rate_limit.requests'],
    [CreateTenantDto, { name: 'x', settings: { stream_default: 'yes' } }, 'settings'],
    [CreateProviderDto, { ...provider, kind: 'completions' }, 'kind'],
    [CreateProviderDto, { ...provider, base_url: 'http://169.254.169.254/' }, 'base_url'],
    [
      CreateProviderDto,
      { ...provider, models: [{ id: 'm', context_length: -1 }] },
      'models[0].context_length',
    ],
    [
      CreateProviderDto,
      { ...provider, models: [{ id: 'm', context_length: 1, capabilities: { tools: 'y' } }] },
      'models[0].capabilities.tools',
    ],
    [CreateProviderDto, { ...provider, models: [] }, 'models'],
    [CreateProviderDto, { ...provider, headers: { 'bad header': 'x' } }, 'headers'],
    [CreateProviderDto, { ...provider, api_key: 5 }, 'api_key'],
  ] as const)('names the failing field (%#: %s)', async (metatype, body, param) => {
    const error = await failure(metatype, body);
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_value');
    expect(error.param).toBe(param);
    expect(error.message).toContain(param);
  });

  it.each([
    [AdjustBalanceDto, { delta: '10' }, 'delta', 'delta must be an integer number'],
    [AdjustBalanceDto, {}, 'delta', 'delta must be an integer number'],
    [AdjustBalanceDto, { delta: 2e12 }, 'delta', 'delta must not be greater than 1000000000000'],
    [ListConversationsQueryDto, { limit: 'abc' }, 'limit', 'limit must be an integer number'],
    [UpdateConversationDto, { title: 5 }, 'title', 'title must be a string'],
  ])(
    'names what is wrong first: the type before a bound (%o %o)',
    async (metatype, value, param, message) => {
      const error = await failure(metatype, value);
      expect(error.param).toBe(param);
      expect(error.message).toBe(message);
    },
  );

  it('answers a body that is not an object', async () => {
    const error = await failure(CreateTenantDto, 'just a string');
    expect(error.status).toBe(400);
  });
});
