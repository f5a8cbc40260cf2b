import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsOptional,
  IsString,
  Length,
  Matches,
  registerDecorator,
  ValidateIf,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';
import type { TenantSettings } from '../tenant-config.types.js';
import { TENANT_ID_PATTERN } from '../tenant-id.js';
import { RateLimitDto } from './rate-limit.dto.js';

/** `settings`: a JSON object; the keys Parley reads are type-checked. */
function IsTenantSettings(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isTenantSettings',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: `${String(propertyName)} must be an object; stream_default, if given, a boolean`,
        ...options,
      },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          ((value as TenantSettings).stream_default === undefined ||
            typeof (value as TenantSettings).stream_default === 'boolean'),
      },
    });
}

const ID_DESCRIPTION =
  'Letters, digits, `_` and `-` (up to 64, starting with a letter or digit); a UUID is made when omitted.';

export class CreateTenantDto {
  @ApiPropertyOptional({ description: ID_DESCRIPTION, pattern: TENANT_ID_PATTERN.source, example: 'acme' })
  @IsOptional()
  @IsString()
  @Matches(TENANT_ID_PATTERN, { message: `id must match ${TENANT_ID_PATTERN.source}` })
  id?: string;

  @ApiProperty({ example: 'Acme Corp', minLength: 1, maxLength: 255 })
  @IsString()
  @Length(1, 255)
  name!: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The model used when a request names none.',
  })
  @IsOptional()
  @IsString()
  @Length(1, 255)
  default_model?: string | null;

  @ApiPropertyOptional({
    type: RateLimitDto,
    nullable: true,
    description: 'Null: the configured default limit.',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => RateLimitDto)
  rate_limit?: RateLimitDto | null;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'Free-form tenant settings; `stream_default` (boolean) sets the `stream` default.',
    example: { stream_default: false },
  })
  @IsOptional()
  @IsTenantSettings()
  settings?: TenantSettings;
}

/** Every field optional; `default_model` and `rate_limit` can be cleared with null. */
export class UpdateTenantDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 255 })
  @ValidateIf((_o, v) => v !== undefined)
  @IsString()
  @Length(1, 255)
  name?: string;

  @ApiPropertyOptional({ type: String, nullable: true })
  @IsOptional()
  @IsString()
  @Length(1, 255)
  default_model?: string | null;

  @ApiPropertyOptional({ type: RateLimitDto, nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => RateLimitDto)
  rate_limit?: RateLimitDto | null;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Replaces the settings.' })
  @ValidateIf((_o, v) => v !== undefined)
  @IsTenantSettings()
  settings?: TenantSettings;
}

export class TenantDto {
  @ApiProperty({ example: 'acme' })
  id!: string;

  @ApiProperty({ example: 'Acme Corp' })
  name!: string;

  @ApiProperty({ type: String, nullable: true, example: 'gpt-4o-mini' })
  default_model!: string | null;

  @ApiProperty({ type: RateLimitDto, nullable: true })
  rate_limit!: RateLimitDto | null;

  @ApiProperty({ type: 'object', additionalProperties: true })
  settings!: TenantSettings;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ format: 'date-time' })
  updated_at!: string;
}

export class TenantListDto {
  @ApiProperty({ enum: ['list'] })
  object!: 'list';

  @ApiProperty({ type: [TenantDto] })
  data!: TenantDto[];

  @ApiProperty()
  has_more!: boolean;
}
