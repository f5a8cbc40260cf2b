import type { Logger } from '@nestjs/common';
import { errorMessage } from '../common/errors/error-message.js';

/** Logs a store outage once when it starts and once when it ends, not once per request. */
export class OutageLog {
  private down = false;

  constructor(
    private readonly logger: Logger,
    private readonly what: string,
    /** What the feature does meanwhile, e.g. "answering 503". */
    private readonly meanwhile: string,
  ) {}

  failed(err: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger.warn(`${this.what}: the store is unreachable (${errorMessage(err)}); ${this.meanwhile}`);
  }

  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    this.logger.log(`${this.what}: the store is reachable again`);
  }
}
