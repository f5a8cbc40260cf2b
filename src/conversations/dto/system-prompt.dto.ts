import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length, ValidateIf } from 'class-validator';

export const SYSTEM_PROMPT_NAME_MAX = 200;
export const SYSTEM_PROMPT_CONTENT_MAX = 100_000;

export class CreateSystemPromptDto {
  @ApiProperty({ minLength: 1, maxLength: SYSTEM_PROMPT_NAME_MAX, example: 'Concise' })
  @IsString()
  @Length(1, SYSTEM_PROMPT_NAME_MAX)
  name!: string;

  @ApiProperty({
    minLength: 1,
    maxLength: SYSTEM_PROMPT_CONTENT_MAX,
    example: 'Answer in at most three sentences.',
  })
  @IsString()
  @Length(1, SYSTEM_PROMPT_CONTENT_MAX)
  content!: string;
}

/** Either or both fields. */
export class UpdateSystemPromptDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: SYSTEM_PROMPT_NAME_MAX })
  @ValidateIf((_o, v) => v !== undefined)
  @IsString()
  @Length(1, SYSTEM_PROMPT_NAME_MAX)
  name?: string;

  @ApiPropertyOptional({ minLength: 1, maxLength: SYSTEM_PROMPT_CONTENT_MAX })
  @ValidateIf((_o, v) => v !== undefined)
  @IsString()
  @Length(1, SYSTEM_PROMPT_CONTENT_MAX)
  content?: string;
}

export class SystemPromptDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty()
  name!: string;

  @ApiProperty()
  content!: string;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ format: 'date-time' })
  updated_at!: string;
}

export class SystemPromptListDto {
  @ApiProperty({ enum: ['list'] })
  object!: 'list';

  @ApiProperty({ type: [SystemPromptDto] })
  data!: SystemPromptDto[];
}
