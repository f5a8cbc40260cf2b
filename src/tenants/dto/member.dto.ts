import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { MEMBER_ROLES, type MemberRole } from '../entities/tenant-member.entity.js';

export class PutMemberDto {
  @ApiPropertyOptional({
    enum: MEMBER_ROLES,
    description: '`member` for a new member when omitted; unchanged otherwise.',
  })
  @IsOptional()
  @IsIn(MEMBER_ROLES)
  role?: MemberRole;
}

export class MemberDto {
  @ApiProperty({ example: 'acme' })
  tenant_id!: string;

  @ApiProperty({ description: 'The JWT `sub` of the user.', example: 'user-123' })
  user_id!: string;

  @ApiProperty({ enum: MEMBER_ROLES })
  role!: MemberRole;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ format: 'date-time' })
  updated_at!: string;
}

export class MemberListDto {
  @ApiProperty({ enum: ['list'] })
  object!: 'list';

  @ApiProperty({ type: [MemberDto] })
  data!: MemberDto[];

  @ApiProperty()
  has_more!: boolean;
}
