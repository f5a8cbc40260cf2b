import type { MemberDto } from './dto/member.dto.js';
import type { TenantDto } from './dto/tenant.dto.js';
import type { MemberRole, TenantMemberEntity } from './entities/tenant-member.entity.js';
import type { TenantEntity } from './entities/tenant.entity.js';

export function toTenantDto(row: TenantEntity): TenantDto {
  return {
    id: row.id,
    name: row.name,
    default_model: row.defaultModel,
    rate_limit:
      row.rateLimitRequests !== null && row.rateLimitWindowS !== null
        ? { requests: row.rateLimitRequests, window_s: row.rateLimitWindowS }
        : null,
    settings: row.settings,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function toMemberDto(
  row: Pick<TenantMemberEntity, 'tenantId' | 'userId' | 'role' | 'createdAt' | 'updatedAt'>,
): MemberDto {
  return {
    tenant_id: row.tenantId,
    user_id: row.userId,
    role: row.role,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** A raw `RETURNING` row of tenant_members. */
export interface MemberRow {
  tenant_id: string;
  user_id: string;
  role: MemberRole;
  created_at: Date;
  updated_at: Date;
}

export function memberRowToDto(row: MemberRow): MemberDto {
  return toMemberDto({
    tenantId: row.tenant_id,
    userId: row.user_id,
    role: row.role,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}
