import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager, Repository } from 'typeorm';
import { ParleyError } from '../common/errors/parley-error.js';
import { isUniqueViolation } from '../tenants/db-errors.js';
import { TenantEntity } from '../tenants/entities/tenant.entity.js';
import { TenantEvents } from '../tenants/tenant-events.service.js';
import { isTenantId } from '../tenants/tenant-id.js';
import type {
  CreateProviderDto,
  ModelInputDto,
  ProviderDto,
  ProviderListDto,
  UpdateProviderDto,
} from './dto/provider.dto.js';
import { ProviderEntity } from './entities/provider.entity.js';
import { apiKeyAad } from './provider-record.js';
import { toModelInfo, toProviderDto } from './provider.mapper.js';
import type { ModelInfo } from './provider.types.js';
import { SecretCipher } from './secret-cipher.js';

export const DEFAULT_TIMEOUT_MS = 120_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function providerNotFound(): ParleyError {
  return ParleyError.notFound('Provider');
}

function nameConflict(name: string): ParleyError {
  return new ParleyError('conflict', `The tenant already has a provider named "${name}".`, { param: 'name' });
}

function modelsOf(input: ModelInputDto[]): ModelInfo[] {
  const seen = new Set<string>();
  return input.map((model, i) => {
    if (seen.has(model.id))
      throw ParleyError.invalid(`models[${i}].id`, `models[${i}].id "${model.id}" is listed twice`);
    seen.add(model.id);
    return toModelInfo(model);
  });
}

function checkDefaultModel(defaultModel: string, models: ModelInfo[]): void {
  if (!models.some((m) => m.id === defaultModel)) {
    throw ParleyError.invalid('default_model', 'default_model must be one of models[].id');
  }
}

/**
 * The admin operations on a tenant's providers. Writes lock the tenant row, so "the first provider
 * is the default" and "at most one default" hold under concurrent calls. API keys are encrypted
 * (bound to the provider id) before they reach the database.
 */
@Injectable()
export class ProvidersService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(TenantEntity) private readonly tenants: Repository<TenantEntity>,
    @InjectRepository(ProviderEntity) private readonly providers: Repository<ProviderEntity>,
    private readonly cipher: SecretCipher,
    private readonly events: TenantEvents,
  ) {}

  async create(tenantId: string, dto: CreateProviderDto): Promise<ProviderDto> {
    const models = modelsOf(dto.models);
    checkDefaultModel(dto.default_model, models);
    const id = randomUUID();
    try {
      await this.dataSource.transaction(async (m) => {
        await this.lockTenant(m, tenantId);
        const repo = m.getRepository(ProviderEntity);
        if (await repo.existsBy({ tenantId, name: dto.name })) throw nameConflict(dto.name);
        const first = !(await repo.existsBy({ tenantId }));
        const isDefault = first || dto.is_default === true;
        if (isDefault && !first) await repo.update({ tenantId, isDefault: true }, { isDefault: false });
        await repo.insert({
          id,
          tenantId,
          name: dto.name,
          kind: dto.kind,
          baseUrl: dto.base_url,
          apiKeyEncrypted: this.encryptKey(id, dto.api_key),
          defaultModel: dto.default_model,
          models,
          isDefault,
          headers: dto.headers ?? {},
          timeoutMs: dto.timeout_ms ?? DEFAULT_TIMEOUT_MS,
          storeResponses: dto.store_responses ?? true,
        });
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw nameConflict(dto.name);
      throw e;
    }
    await this.events.changed({ tenantId, scope: 'config' });
    return toProviderDto(await this.providers.findOneByOrFail({ id }));
  }

  async list(tenantId: string): Promise<ProviderListDto> {
    if (!isTenantId(tenantId) || !(await this.tenants.existsBy({ id: tenantId })))
      throw ParleyError.notFound('Tenant');
    const rows = await this.providers.find({ where: { tenantId }, order: { createdAt: 'ASC', id: 'ASC' } });
    return { object: 'list', data: rows.map(toProviderDto) };
  }

  async get(tenantId: string, providerId: string): Promise<ProviderDto> {
    return toProviderDto(await this.findOrFail(this.providers, tenantId, providerId));
  }

  async update(tenantId: string, providerId: string, dto: UpdateProviderDto): Promise<ProviderDto> {
    const name = dto.name;
    try {
      await this.dataSource.transaction(async (m) => {
        await this.lockTenant(m, tenantId);
        const repo = m.getRepository(ProviderEntity);
        const row = await this.findOrFail(repo, tenantId, providerId);
        if (name !== undefined && name !== row.name) {
          if (await repo.existsBy({ tenantId, name })) throw nameConflict(name);
          row.name = name;
        }
        if (dto.kind !== undefined) row.kind = dto.kind;
        if (dto.base_url !== undefined) row.baseUrl = dto.base_url;
        if (dto.api_key !== undefined) row.apiKeyEncrypted = this.encryptKey(row.id, dto.api_key);
        if (dto.models !== undefined) row.models = modelsOf(dto.models);
        if (dto.default_model !== undefined) row.defaultModel = dto.default_model;
        if (dto.models !== undefined || dto.default_model !== undefined)
          checkDefaultModel(row.defaultModel, row.models);
        if (dto.headers !== undefined) row.headers = dto.headers;
        if (dto.timeout_ms !== undefined) row.timeoutMs = dto.timeout_ms;
        if (dto.store_responses !== undefined) row.storeResponses = dto.store_responses;
        if (dto.is_default === true && !row.isDefault) {
          await repo.update({ tenantId, isDefault: true }, { isDefault: false });
          row.isDefault = true;
        } else if (dto.is_default === false && row.isDefault) {
          throw ParleyError.invalid(
            'is_default',
            'A tenant with providers always has a default: set is_default on another provider instead.',
          );
        }
        await repo.save(row);
      });
    } catch (e) {
      if (isUniqueViolation(e) && name !== undefined) throw nameConflict(name);
      throw e;
    }
    await this.events.changed({ tenantId, scope: 'config' });
    return toProviderDto(await this.providers.findOneByOrFail({ id: providerId }));
  }

  /** Deletes the provider; when it was the default, the oldest remaining one becomes the default. */
  async delete(tenantId: string, providerId: string): Promise<void> {
    await this.dataSource.transaction(async (m) => {
      await this.lockTenant(m, tenantId);
      const repo = m.getRepository(ProviderEntity);
      const row = await this.findOrFail(repo, tenantId, providerId);
      await repo.delete({ id: row.id });
      if (row.isDefault) {
        const next = await repo.findOne({ where: { tenantId }, order: { createdAt: 'ASC', id: 'ASC' } });
        if (next) await repo.update({ id: next.id }, { isDefault: true });
      }
    });
    await this.events.changed({ tenantId, scope: 'config' });
  }

  /** Null for no key: omitted, null or empty all mean "no key configured". */
  private encryptKey(providerId: string, apiKey: string | null | undefined): string | null {
    return apiKey ? this.cipher.encrypt(apiKey, apiKeyAad(providerId)) : null;
  }

  private async lockTenant(m: EntityManager, tenantId: string): Promise<void> {
    const tenant = isTenantId(tenantId)
      ? await m
          .getRepository(TenantEntity)
          .findOne({ where: { id: tenantId }, lock: { mode: 'pessimistic_write' } })
      : null;
    if (!tenant) throw ParleyError.notFound('Tenant');
  }

  private async findOrFail(
    repo: Repository<ProviderEntity>,
    tenantId: string,
    providerId: string,
  ): Promise<ProviderEntity> {
    if (!isTenantId(tenantId) || !UUID.test(providerId)) throw providerNotFound();
    const row = await repo.findOneBy({ id: providerId, tenantId });
    if (!row) throw providerNotFound();
    return row;
  }
}
