import { followAbort } from '../common/abort/follow-abort.js';
import { ParleyError } from '../common/errors/parley-error.js';
import type { UpstreamCall } from './provider-adapter.js';
import type { CompletionTarget } from './provider.types.js';
import { abortedCall, toUpstreamError } from './upstream-error.js';

/** What a call answers when its provider fell silent for `ms`. */
function upstreamSilence(ms: number): ParleyError {
  return new ParleyError('upstream_timeout', `The provider sent nothing for ${ms} ms.`);
}

/** How long a call waits on its provider: the provider's timeout, or the caller's shorter limit. */
export function silenceLimitMs(target: CompletionTarget, call: UpstreamCall): number {
  return Math.min(target.provider.timeoutMs, call.silenceMs ?? Infinity);
}

/**
 * Gives up on a provider that falls silent: aborts `controller` with `upstream_timeout` once `ms`
 * pass without `heard()`. The SDK's own timeout ends with the response headers, so without this a
 * provider that stops sending in the middle of a body would hold the call open for ever.
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

/**
 * A whole non-streamed call, answer body included, within `ms`; aborted with the caller's signal.
 * Fails with the abort's reason when it was aborted, else with the SDK's error mapped.
 */
export async function callWithin<T>(
  signal: AbortSignal,
  ms: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const unfollow = followAbort(signal, abort);
  const limit = new SilenceLimit(abort, ms);
  try {
    return await run(abort.signal);
  } catch (e) {
    throw abort.signal.aborted ? abortedCall(abort.signal) : toUpstreamError(e);
  } finally {
    limit.stop();
    unfollow();
  }
}
