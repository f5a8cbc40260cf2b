import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { MoreThan, type Repository } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { MAX_USER_ID_LENGTH } from '../auth/jwt-claims.js';
import { ParleyError } from '../common/errors/parley-error.js';
import { isForeignKeyViolation, isUniqueViolation } from './db-errors.js';
import type { ListQueryDto } from './dto/list-query.dto.js';
import type { MemberDto, MemberListDto, PutMemberDto } from './dto/member.dto.js';
import type { CreateTenantDto, TenantDto, TenantListDto, UpdateTenantDto } from './dto/tenant.dto.js';
import { TenantMemberEntity } from './entities/tenant-member.entity.js';
import { TenantEntity } from './entities/tenant.entity.js';
import type { TenantSettings } from './tenant-config.types.js';
import { TenantEvents } from './tenant-events.service.js';
import { isTenantId } from './tenant-id.js';
import { memberRowToDto, toMemberDto, toTenantDto, type MemberRow } from './tenant.mapper.js';

const DEFAULT_PAGE = 100;

function tenantNotFound(): ParleyError {
  return ParleyError.notFound('Tenant');
}

/** The admin operations on tenants and their members. Every write is announced to all instances. */
@Injectable()
export class TenantsService {
  constructor(
    @InjectRepository(TenantEntity) private readonly tenants: Repository<TenantEntity>,
    @InjectRepository(TenantMemberEntity) private readonly members: Repository<TenantMemberEntity>,
    private readonly events: TenantEvents,
  ) {}

  async create(dto: CreateTenantDto): Promise<TenantDto> {
    const id = dto.id ?? randomUUID();
    const conflict = new ParleyError('conflict', `A tenant with id "${id}" already exists.`, { param: 'id' });
    if (await this.tenants.existsBy({ id })) throw conflict;
    try {
      await this.tenants.insert({
        id,
        name: dto.name,
        defaultModel: dto.default_model ?? null,
        rateLimitRequests: dto.rate_limit?.requests ?? null,
        rateLimitWindowS: dto.rate_limit?.window_s ?? null,
        // jsonb: TypeORM's deep-partial type cannot follow an `unknown` index signature.
        settings: (dto.settings ?? {}) as QueryDeepPartialEntity<TenantSettings>,
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict;
      throw e;
    }
    // A lookup of this id may have been cached as "no such tenant".
    await this.events.changed({ tenantId: id, scope: 'config' });
    return toTenantDto(await this.tenants.findOneByOrFail({ id }));
  }

  async list(query: ListQueryDto): Promise<TenantListDto> {
    const limit = query.limit ?? DEFAULT_PAGE;
    const rows = await this.tenants.find({
      where: query.after !== undefined ? { id: MoreThan(query.after) } : {},
      order: { id: 'ASC' },
      take: limit + 1,
    });
    return { object: 'list', data: rows.slice(0, limit).map(toTenantDto), has_more: rows.length > limit };
  }

  async get(tenantId: string): Promise<TenantDto> {
    return toTenantDto(await this.findOrFail(tenantId));
  }

  async update(tenantId: string, dto: UpdateTenantDto): Promise<TenantDto> {
    const row = await this.findOrFail(tenantId);
    if (dto.name !== undefined) row.name = dto.name;
    if (dto.default_model !== undefined) row.defaultModel = dto.default_model;
    if (dto.rate_limit !== undefined) {
      row.rateLimitRequests = dto.rate_limit?.requests ?? null;
      row.rateLimitWindowS = dto.rate_limit?.window_s ?? null;
    }
    if (dto.settings !== undefined) row.settings = dto.settings;
    await this.tenants.save(row);
    await this.events.changed({ tenantId, scope: 'config' });
    return toTenantDto(await this.findOrFail(tenantId));
  }

  /** Deletes the tenant with its members and providers (the database cascades). */
  async delete(tenantId: string): Promise<void> {
    if (!isTenantId(tenantId)) throw tenantNotFound();
    const result = await this.tenants.delete({ id: tenantId });
    if (!result.affected) throw tenantNotFound();
    await this.events.changed({ tenantId, scope: 'deleted' });
  }

  async listMembers(tenantId: string, query: ListQueryDto): Promise<MemberListDto> {
    await this.findOrFail(tenantId);
    const limit = query.limit ?? DEFAULT_PAGE;
    const rows = await this.members.find({
      where: query.after !== undefined ? { tenantId, userId: MoreThan(query.after) } : { tenantId },
      order: { userId: 'ASC' },
      take: limit + 1,
    });
    return { object: 'list', data: rows.slice(0, limit).map(toMemberDto), has_more: rows.length > limit };
  }

  /** Adds the member, or changes the role of an existing one. */
  async putMember(tenantId: string, userId: string, dto: PutMemberDto): Promise<MemberDto> {
    if (userId.length > MAX_USER_ID_LENGTH) {
      throw ParleyError.invalid('user_id', `user_id must be at most ${MAX_USER_ID_LENGTH} characters`);
    }
    await this.findOrFail(tenantId);
    let rows: MemberRow[];
    try {
      rows = await this.members.query(
        `INSERT INTO "tenant_members" ("tenant_id", "user_id", "role") VALUES ($1, $2, COALESCE($3::varchar, 'member'))
         ON CONFLICT ("tenant_id", "user_id")
         DO UPDATE SET "role" = COALESCE($3::varchar, "tenant_members"."role"), "updated_at" = now()
         RETURNING "tenant_id", "user_id", "role", "created_at", "updated_at"`,
        [tenantId, userId, dto.role ?? null],
      );
    } catch (e) {
      if (isForeignKeyViolation(e)) throw tenantNotFound();
      throw e;
    }
    await this.events.changed({ tenantId, scope: 'members', userId });
    return memberRowToDto(rows[0]);
  }

  async deleteMember(tenantId: string, userId: string): Promise<void> {
    await this.findOrFail(tenantId);
    const result = await this.members.delete({ tenantId, userId });
    if (!result.affected) throw ParleyError.notFound('Member');
    await this.events.changed({ tenantId, scope: 'members', userId });
  }

  /** Makes sure a tenant exists (start-up convenience); true when it was created. */
  async ensureTenant(tenantId: string, name: string, settings: TenantSettings = {}): Promise<boolean> {
    const result = await this.tenants
      .createQueryBuilder()
      .insert()
      .values({
        id: tenantId,
        name,
        defaultModel: null,
        rateLimitRequests: null,
        rateLimitWindowS: null,
        settings: settings as QueryDeepPartialEntity<TenantSettings>,
      })
      .orIgnore()
      .execute();
    const created = (result.raw as unknown[]).length > 0;
    if (created) await this.events.changed({ tenantId, scope: 'config' });
    return created;
  }

  /** Makes sure a user is a member (start-up convenience), keeping an existing role. */
  async ensureMember(tenantId: string, userId: string): Promise<void> {
    const result = await this.members
      .createQueryBuilder()
      .insert()
      .values({ tenantId, userId, role: 'member' })
      .orIgnore()
      .execute();
    if ((result.raw as unknown[]).length > 0)
      await this.events.changed({ tenantId, scope: 'members', userId });
  }

  private async findOrFail(tenantId: string): Promise<TenantEntity> {
    if (!isTenantId(tenantId)) throw tenantNotFound();
    const row = await this.tenants.findOneBy({ id: tenantId });
    if (!row) throw tenantNotFound();
    return row;
  }
}
