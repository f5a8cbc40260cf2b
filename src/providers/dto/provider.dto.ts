import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Max,
  MaxLength,
  Min,
  registerDecorator,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { baseUrlProblem } from '../provider-url.js';
import { PROVIDER_KINDS, type ProviderKind } from '../provider.types.js';

const TIMEOUT_MS_DESCRIPTION =
  'How long Parley waits for the provider: for its answer (non-streaming), for the headers, and between two stream events.';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_HEADERS = 50;

/** `base_url`: http(s), and not a cloud metadata address. */
function IsProviderBaseUrl(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isProviderBaseUrl',
      target: target.constructor,
      propertyName: String(propertyName),
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' && value.length <= 2048 && baseUrlProblem(value) === null,
        defaultMessage: (args) =>
          `${args?.property ?? 'base_url'} ${typeof args?.value === 'string' ? (baseUrlProblem(args.value) ?? 'must be at most 2048 characters') : 'must be a string'}`,
      },
    });
}

/** `headers`: an object of header names to string values. */
function IsHeaderRecord(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isHeaderRecord',
      target: target.constructor,
      propertyName: String(propertyName),
      options: {
        message: `${String(propertyName)} must be an object of at most ${MAX_HEADERS} header names to string values`,
      },
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.keys(value).length <= MAX_HEADERS &&
          Object.entries(value).every(
            ([name, v]) =>
              HEADER_NAME.test(name) && typeof v === 'string' && v.length <= 8192 && !/[\r\n\0]/.test(v),
          ),
      },
    });
}

export class ModelCapabilitiesDto {
  @ApiPropertyOptional({ default: true, description: 'Function/tool calling.' })
  @IsOptional()
  @IsBoolean()
  tools?: boolean;

  @ApiPropertyOptional({ default: true, description: 'Image input.' })
  @IsOptional()
  @IsBoolean()
  vision?: boolean;

  @ApiPropertyOptional({ default: false, description: 'Audio input.' })
  @IsOptional()
  @IsBoolean()
  audio?: boolean;

  @ApiPropertyOptional({ default: true, description: '`reasoning_effort`.' })
  @IsOptional()
  @IsBoolean()
  reasoning?: boolean;

  @ApiPropertyOptional({ default: true, description: '`verbosity`.' })
  @IsOptional()
  @IsBoolean()
  verbosity?: boolean;
}

export class ModelInputDto {
  @ApiProperty({ example: 'gpt-4o-mini' })
  @IsString()
  @Length(1, 255)
  id!: string;

  @ApiProperty({ example: 128000, description: 'Context window in tokens.' })
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  context_length!: number;

  @ApiPropertyOptional({
    type: ModelCapabilitiesDto,
    description: 'Omitted capabilities: all true except audio.',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => ModelCapabilitiesDto)
  capabilities?: ModelCapabilitiesDto;
}

const API_KEY_DESCRIPTION =
  'Stored encrypted, never returned. Omitted or empty: completions on this provider answer 403 `missing_api_key_configuration` (a keyless local server takes any placeholder).';

export class CreateProviderDto {
  @ApiProperty({ example: 'openai', description: 'Unique within the tenant.' })
  @IsString()
  @Length(1, 255)
  name!: string;

  @ApiProperty({ enum: PROVIDER_KINDS })
  @IsIn(PROVIDER_KINDS)
  kind!: ProviderKind;

  @ApiProperty({ example: 'https://api.openai.com/v1' })
  @IsString()
  @IsProviderBaseUrl()
  base_url!: string;

  @ApiPropertyOptional({ type: String, nullable: true, writeOnly: true, description: API_KEY_DESCRIPTION })
  @IsOptional()
  @IsString()
  @MaxLength(8192)
  api_key?: string | null;

  @ApiProperty({ example: 'gpt-4o-mini', description: 'One of `models[].id`.' })
  @IsString()
  @Length(1, 255)
  default_model!: string;

  @ApiProperty({ type: [ModelInputDto] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @ValidateNested({ each: true })
  @Type(() => ModelInputDto)
  models!: ModelInputDto[];

  @ApiPropertyOptional({ description: "The tenant's default provider (its first provider always is)." })
  @IsOptional()
  @IsBoolean()
  is_default?: boolean;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Extra request headers.',
  })
  @IsOptional()
  @IsHeaderRecord()
  headers?: Record<string, string>;

  @ApiPropertyOptional({
    default: 120000,
    minimum: 100,
    maximum: 3_600_000,
    description: TIMEOUT_MS_DESCRIPTION,
  })
  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  timeout_ms?: number;

  @ApiPropertyOptional({
    default: true,
    description: 'Responses providers: keep responses so turns chain by id.',
  })
  @IsOptional()
  @IsBoolean()
  store_responses?: boolean;
}

/** Every field optional; `api_key: null` or `""` removes the key. */
export class UpdateProviderDto {
  @ApiPropertyOptional()
  @ValidateIf((_o, v) => v !== undefined)
  @IsString()
  @Length(1, 255)
  name?: string;

  @ApiPropertyOptional({ enum: PROVIDER_KINDS })
  @ValidateIf((_o, v) => v !== undefined)
  @IsIn(PROVIDER_KINDS)
  kind?: ProviderKind;

  @ApiPropertyOptional()
  @ValidateIf((_o, v) => v !== undefined)
  @IsString()
  @IsProviderBaseUrl()
  base_url?: string;

  @ApiPropertyOptional({ type: String, nullable: true, writeOnly: true, description: API_KEY_DESCRIPTION })
  @IsOptional()
  @IsString()
  @MaxLength(8192)
  api_key?: string | null;

  @ApiPropertyOptional()
  @ValidateIf((_o, v) => v !== undefined)
  @IsString()
  @Length(1, 255)
  default_model?: string;

  @ApiPropertyOptional({ type: [ModelInputDto] })
  @ValidateIf((_o, v) => v !== undefined)
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @ValidateNested({ each: true })
  @Type(() => ModelInputDto)
  models?: ModelInputDto[];

  @ApiPropertyOptional({
    description: 'true makes this the default; to move the default, set it on another provider.',
  })
  @ValidateIf((_o, v) => v !== undefined)
  @IsBoolean()
  is_default?: boolean;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Replaces the headers.',
  })
  @ValidateIf((_o, v) => v !== undefined)
  @IsHeaderRecord()
  headers?: Record<string, string>;

  @ApiPropertyOptional({
    minimum: 100,
    maximum: 3_600_000,
    description: TIMEOUT_MS_DESCRIPTION,
  })
  @ValidateIf((_o, v) => v !== undefined)
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  timeout_ms?: number;

  @ApiPropertyOptional()
  @ValidateIf((_o, v) => v !== undefined)
  @IsBoolean()
  store_responses?: boolean;
}

export class ModelCapabilitiesOutDto {
  @ApiProperty() tools!: boolean;
  @ApiProperty() vision!: boolean;
  @ApiProperty() audio!: boolean;
  @ApiProperty() reasoning!: boolean;
  @ApiProperty() verbosity!: boolean;
}

export class ModelOutDto {
  @ApiProperty() id!: string;
  @ApiProperty() context_length!: number;
  @ApiProperty({ type: ModelCapabilitiesOutDto }) capabilities!: ModelCapabilitiesOutDto;
}

export class ProviderDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() tenant_id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: PROVIDER_KINDS }) kind!: ProviderKind;
  @ApiProperty() base_url!: string;
  @ApiProperty({ description: 'Whether an API key is configured (the key itself is never returned).' })
  has_api_key!: boolean;
  @ApiProperty() default_model!: string;
  @ApiProperty({ type: [ModelOutDto] }) models!: ModelOutDto[];
  @ApiProperty() is_default!: boolean;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description:
      'Values of credential-like headers (authorization, api keys, tokens, secrets, cookies) read `***`.',
  })
  headers!: Record<string, string>;
  @ApiProperty() timeout_ms!: number;
  @ApiProperty() store_responses!: boolean;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export class ProviderListDto {
  @ApiProperty({ enum: ['list'] }) object!: 'list';
  @ApiProperty({ type: [ProviderDto] }) data!: ProviderDto[];
}

export class ModelObjectDto {
  @ApiProperty({ example: 'gpt-4o-mini' }) id!: string;
  @ApiProperty({ enum: ['model'] }) object!: 'model';
  @ApiProperty({ description: 'Unix seconds.' }) created!: number;
  @ApiProperty({ description: 'The provider name.' }) owned_by!: string;
}

export class ModelListDto {
  @ApiProperty({ enum: ['list'] }) object!: 'list';
  @ApiProperty({ type: [ModelObjectDto] }) data!: ModelObjectDto[];
}
