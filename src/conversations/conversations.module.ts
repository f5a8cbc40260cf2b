import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TenantsModule } from '../tenants/tenants.module.js';
import { ConversationsController } from './conversations.controller.js';
import { ConversationsRepository } from './conversations.repository.js';
import { ConversationsService } from './conversations.service.js';
import { ConversationEntity } from './entities/conversation.entity.js';
import { MessageEntity } from './entities/message.entity.js';
import { SystemPromptEntity } from './entities/system-prompt.entity.js';
import { SystemPromptsController } from './system-prompts.controller.js';
import { SystemPromptsService } from './system-prompts.service.js';
import { TurnWriteMarks } from './turn-write-marks.js';

/**
 * Conversations, messages and saved system prompts: the turn API the completion path uses
 * (ConversationsService) and the REST routes under `/v1/conversations` and `/v1/system-prompts`.
 */
@Module({
  imports: [TypeOrmModule.forFeature([ConversationEntity, MessageEntity, SystemPromptEntity]), TenantsModule],
  controllers: [ConversationsController, SystemPromptsController],
  providers: [ConversationsRepository, ConversationsService, SystemPromptsService, TurnWriteMarks],
  exports: [ConversationsService],
})
export class ConversationsModule {}
