import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Length, Max, Min } from 'class-validator';

export class ListConversationsQueryDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'Continue after this conversation (the last of the previous page).',
  })
  @IsOptional()
  @IsUUID('all')
  after?: string;
}

export class UpdateConversationDto {
  @ApiProperty({ minLength: 1, maxLength: 200, example: 'Trip to Lisbon' })
  @IsString()
  @Length(1, 200)
  title!: string;
}

export class ConversationDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Generated after the first turn, or set by PATCH.',
  })
  title!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'gpt-4o-mini',
    description: 'The model of the last turn.',
  })
  model!: string | null;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ format: 'date-time' })
  updated_at!: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description:
      'The persistence hints of the last turns (streamingEnabled, toolsEnabled, qualityLevel, researchMode).',
    example: { streamingEnabled: true, qualityLevel: 'default' },
  })
  metadata!: Record<string, unknown>;
}

export class ConversationListDto {
  @ApiProperty({ enum: ['list'] })
  object!: 'list';

  @ApiProperty({ type: [ConversationDto], description: 'Newest first (by updated_at).' })
  data!: ConversationDto[];

  @ApiProperty()
  has_more!: boolean;
}
