import { Module } from '@nestjs/common';
import { ConversationsModule } from '../conversations/conversations.module.js';
import { ProvidersModule } from '../providers/providers.module.js';
import { QuotaModule } from '../quota/quota.module.js';
import { ToolsModule } from '../tools/tools.module.js';
import { CompletionFinalizer } from './completion-finalizer.service.js';
import { CompletionsController } from './completions.controller.js';
import { CompletionsService } from './completions.service.js';
import { StreamLog } from './resume/stream-log.js';
import { StreamResumer } from './resume/stream-resumer.service.js';
import { StreamSessions } from './resume/stream-sessions.service.js';
import { ToolLoop } from './tool-loop.js';
import { UpstreamCalls } from './upstream-calls.js';

@Module({
  imports: [ProvidersModule, QuotaModule, ConversationsModule, ToolsModule],
  controllers: [CompletionsController],
  providers: [
    CompletionsService,
    ToolLoop,
    UpstreamCalls,
    CompletionFinalizer,
    StreamLog,
    StreamSessions,
    StreamResumer,
  ],
})
export class CompletionsModule {}
