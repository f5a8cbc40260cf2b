import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { ParleyError } from '../common/errors/parley-error.js';
import { createHttpFetch } from './http-fetch.js';
import { sdkCallOptions } from './openai-client.factory.js';
import { toUpstreamError } from './upstream-error.js';

/** What the SDK throws for one call to a port nothing listens on, held back by `sendAfter`. */
async function sdkFailure(sendAfter?: Promise<unknown>): Promise<unknown> {
  const client = new OpenAI({
    apiKey: 'sk-test',
    baseURL: 'http://127.0.0.1:9/v1',
    maxRetries: 0,
    fetch: createHttpFetch(),
  });
  const body = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }] };
  return client.chat.completions.create(body, sdkCallOptions(new AbortController().signal, sendAfter)).then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe(toUpstreamError.name, () => {
  it('answers a call that was never sent with the reason it was held back', async () => {
    const refusal = new ParleyError('rate_limit_exceeded', 'Rate limit exceeded');
    const refused = Promise.reject(refusal);
    refused.catch(() => undefined);
    expect(toUpstreamError(await sdkFailure(refused))).toBe(refusal);
  });

  it('answers an unreachable provider 502', async () => {
    expect(toUpstreamError(await sdkFailure())).toMatchObject({ status: 502, code: 'upstream_error' });
  });
});
