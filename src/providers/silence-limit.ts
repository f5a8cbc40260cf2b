import { ParleyError } from '../common/errors/parley-error.js';

/** What a call answers when its provider fell silent for `ms`. */
export function upstreamSilence(ms: number): ParleyError {
  return new ParleyError('upstream_timeout', `The provider sent nothing for ${ms} ms.`);
}

/**
 * Gives up on a stream whose provider falls silent: aborts `controller` with `upstream_timeout` once
 * `ms` pass without `heard()`. The SDK's own timeout ends with the response headers, so without this
 * a provider that stops sending mid-stream would hold the client's stream open for ever.
 */
export class SilenceLimit {
  private readonly timer: NodeJS.Timeout;

  constructor(controller: AbortController, ms: number) {
    this.timer = setTimeout(() => controller.abort(upstreamSilence(ms)), ms);
  }

  heard(): void {
    this.timer.refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
