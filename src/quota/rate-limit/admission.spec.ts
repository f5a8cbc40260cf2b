import { describe, expect, it } from 'vitest';
import { ParleyError } from '../../common/errors/parley-error.js';
import { Admission } from './admission.js';

const refusal = new ParleyError('rate_limit_exceeded', 'Rate limit exceeded');

describe(Admission.name, () => {
  it('answers with the refusal instead of a later error, once the verdict is in', async () => {
    let decide!: (verdict: ParleyError | undefined) => void;
    const admission = Admission.pending(new Promise((resolve) => (decide = resolve)));
    const answer = admission.answerFor(new Error('invalid body'));
    decide(refusal);
    await expect(answer).resolves.toBe(refusal);
    await expect(admission.admitted()).rejects.toBe(refusal);
  });

  it('keeps the error when the request was admitted', async () => {
    const admission = Admission.pending(Promise.resolve(undefined));
    const error = new Error('invalid body');
    await expect(admission.answerFor(error)).resolves.toBe(error);
    await expect(admission.admitted()).resolves.toBeUndefined();
  });

  it('runs what waits for admission only for an admitted request', async () => {
    const ran: string[] = [];
    Admission.granted().whenAdmitted(() => ran.push('granted'));
    Admission.pending(Promise.resolve(refusal)).whenAdmitted(() => ran.push('refused'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(['granted']);
  });

  it('leaves no unhandled rejection behind when a refusal is never awaited', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      void Admission.pending(Promise.resolve(refusal)).admitted();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
