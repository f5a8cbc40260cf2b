import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  MESSAGE_ROLES,
  MESSAGE_STATUSES,
  type MessageContent,
  type MessageRole,
  type MessageStatus,
} from '../entities/message.entity.js';

export class MessageDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ description: 'Position in the conversation, from 1.' })
  seq!: number;

  @ApiProperty({ enum: MESSAGE_ROLES })
  role!: MessageRole;

  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'object', additionalProperties: true } }],
    nullable: true,
    description: 'A text, or OpenAI content parts.',
  })
  content!: MessageContent;

  @ApiPropertyOptional({
    type: 'array',
    items: { type: 'object', additionalProperties: true },
    description: 'Assistant messages: the tool calls, as OpenAI returns them.',
  })
  tool_calls?: unknown[];

  @ApiPropertyOptional({ description: 'Tool messages: the call they answer.' })
  tool_call_id?: string;

  @ApiPropertyOptional({ description: 'The tool (or participant) name.' })
  name?: string;

  @ApiProperty({
    enum: MESSAGE_STATUSES,
    description: '`complete`/`incomplete` on assistant messages, `success`/`error` on tool ones.',
  })
  status!: MessageStatus;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;
}

export class MessageListDto {
  @ApiProperty({ enum: ['list'] })
  object!: 'list';

  @ApiProperty({ type: [MessageDto], description: 'In seq order.' })
  data!: MessageDto[];
}
