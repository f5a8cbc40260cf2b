import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { ParleyError } from '../../common/errors/parley-error.js';
import type { QuotaRequest } from '../quota-request.js';

/**
 * The rate limit's verdict on one request, which may still be on its way from the store.
 *
 * The verdict is a store round trip. Nothing before the provider call needs it when the tenant has
 * no token quota, so TenantRateLimitGuard lets such a request through at once, and the request is
 * validated and prepared while the store answers. Whatever has an effect waits for the verdict: the
 * provider call (`admitted()` holds it back), stored turns and the request's log line. And an error
 * answer waits too, because a refusal comes first in the contract's order (`answerFor`): a request
 * that is both over the limit and invalid is a 429, as it was when the guard waited.
 */
export class Admission {
  private constructor(
    /** The refusal (429 `rate_limit_exceeded`, or 503 while the store is unreachable), or undefined. Never rejects. */
    readonly verdict: Promise<ParleyError | undefined>,
  ) {}

  /** `verdict` must not reject: a refusal is its value. */
  static pending(verdict: Promise<ParleyError | undefined>): Admission {
    return new Admission(verdict);
  }

  /** A request nothing limits (no rate limit guard ran). */
  static granted(): Admission {
    return new Admission(Promise.resolve(undefined));
  }

  /**
   * Resolves once the request is admitted; rejects with the refusal. Marked as handled, so a caller
   * that never gets as far as awaiting it (an earlier failure) leaves no unhandled rejection.
   */
  admitted(): Promise<void> {
    const admitted = this.verdict.then((refusal) => {
      if (refusal) throw refusal;
    });
    admitted.catch(() => undefined);
    return admitted;
  }

  /** Runs `then` once the request is admitted; never, when it is refused. */
  whenAdmitted(then: () => void): void {
    void this.verdict.then((refusal) => {
      if (!refusal) then();
    });
  }

  /** The error to answer with instead of `error`: the refusal, when there is one. */
  async answerFor(error: unknown): Promise<unknown> {
    return (await this.verdict) ?? error;
  }
}

/** The request's admission in a handler: `@RequestAdmission() admission: Admission`. */
export const RequestAdmission = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Admission =>
    context.switchToHttp().getRequest<QuotaRequest>().parleyAdmission ?? Admission.granted(),
);
