import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { LEDGER_REASONS, type LedgerReason } from '../ledger/token-ledger.entity.js';

/** Largest single adjustment: keeps every balance far inside exact integer arithmetic. */
export const MAX_ADJUSTMENT = 1_000_000_000_000;

export class AdjustBalanceDto {
  @ApiProperty({
    type: 'integer',
    description:
      'Whole tokens to add (negative to deduct). A deduction larger than the balance stops at 0; the rest is recorded in the ledger as a shortfall.',
    minimum: -MAX_ADJUSTMENT,
    maximum: MAX_ADJUSTMENT,
    example: 100000,
  })
  @IsInt()
  @Min(-MAX_ADJUSTMENT)
  @Max(MAX_ADJUSTMENT)
  delta!: number;

  @ApiPropertyOptional({
    description: 'Why (kept in the ledger).',
    maxLength: 1000,
    example: 'monthly top-up',
  })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  reason?: string;
}

export class BalanceDto {
  @ApiProperty({
    type: 'integer',
    description: 'Whole tokens; 0 for a user who never had any.',
    example: 100000,
  })
  balance!: number;
}

export class LedgerQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;
}

export class LedgerEntryDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ type: 'integer', description: 'The change of the balance (0 on shortfall rows).' })
  delta!: number;

  @ApiProperty({ type: 'integer', description: 'The balance right after this change.' })
  balance_after!: number;

  @ApiProperty({ enum: LEDGER_REASONS })
  reason!: LedgerReason;

  @ApiProperty({ type: 'integer', description: 'Tokens due but not charged (shortfall rows).' })
  shortfall!: number;

  @ApiProperty({ type: String, nullable: true, example: 'chatcmpl-abc123' })
  completion_id!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'Who made an admin adjustment.' })
  actor!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'The reason given with an admin adjustment.' })
  note!: string | null;

  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  meta!: Record<string, unknown> | null;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;
}

export class LedgerListDto {
  @ApiProperty({ enum: ['list'] })
  object!: 'list';

  @ApiProperty({ type: [LedgerEntryDto], description: 'Newest first.' })
  data!: LedgerEntryDto[];

  @ApiProperty()
  has_more!: boolean;
}
