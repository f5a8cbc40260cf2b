import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '../../config/app-config.js';
import { APP_CONFIG } from '../../config/config.module.js';

/** Streams in flight, so a SIGTERM lets them finish (within a bound) before the app closes. */
@Injectable()
export class ActiveStreams implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Shutdown');
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  get size(): number {
    return this.inFlight.size;
  }

  track(done: Promise<unknown>): void {
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.inFlight.size === 0) return;
    this.logger.log(
      `Waiting up to ${this.config.shutdownGraceMs} ms for ${this.inFlight.size} stream(s) to finish`,
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.shutdownGraceMs))),
    ]);
    clearTimeout(timer);
  }
}
