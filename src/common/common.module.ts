import { Global, Module } from '@nestjs/common';
import { ActiveStreams } from './sse/active-streams.js';
import { SseWriter } from './sse/sse-writer.js';

@Global()
@Module({ providers: [ActiveStreams, SseWriter], exports: [ActiveStreams, SseWriter] })
export class CommonModule {}
