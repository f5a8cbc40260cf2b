import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Observable } from 'rxjs';
import { ActiveStreams } from '../../common/sse/active-streams.js';
import type { AppConfig } from '../../config/app-config.js';
import { APP_CONFIG } from '../../config/config.module.js';
import type { PreparedCompletion } from '../prepared-completion.js';
import { StreamLog } from './stream-log.js';
import { StreamSession } from './stream-session.js';

/**
 * Creates the generations of streamed completions and keeps track of those running here, so a
 * SIGTERM waits for them (within SHUTDOWN_GRACE_MS, through ActiveStreams) and stops those nobody
 * reads instead of waiting out their grace period.
 */
@Injectable()
export class StreamSessions implements OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('Completions');
  private readonly running = new Set<StreamSession>();

  constructor(
    private readonly log: StreamLog,
    private readonly activeStreams: ActiveStreams,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** A session for `p`; it starts when the live client subscribes to `session.live(res)`. */
  create(
    p: PreparedCompletion,
    source: (signal: AbortSignal) => Observable<ChatCompletionChunk>,
  ): StreamSession {
    const session = new StreamSession(p.id, { tenantId: p.ctx.tenantId, userId: p.ctx.userId }, source, {
      log: this.log,
      logger: this.logger,
      graceMs: this.config.resumeGraceMs,
    });
    this.running.add(session);
    this.activeStreams.track(session.done);
    void session.done.finally(() => this.running.delete(session));
    return session;
  }

  /** First shutdown phase: a generation nobody reads has no one to wait for. */
  async onModuleDestroy(): Promise<void> {
    await Promise.allSettled([...this.running].map((s) => s.stopIfUnread()));
  }

  /** Last phase, after the shutdown grace: stop what is still running. */
  onApplicationShutdown(): void {
    for (const session of this.running) session.stop('the server is shutting down');
  }
}
