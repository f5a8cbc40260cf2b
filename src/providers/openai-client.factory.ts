import { Injectable } from '@nestjs/common';
import OpenAI from 'openai';
import { createHttpFetch, type HeldRequestInit } from './http-fetch.js';
import { LeanOpenAI } from './lean-openai.js';
import type { ResolvedProvider } from './provider.types.js';

/**
 * One SDK client per provider (and per version of its settings), reused across requests so
 * connections stay pooled. Retries are Parley's decision, not the SDK's: maxRetries 0. The client is
 * the SDK's with cheaper request building (LeanOpenAI).
 */
@Injectable()
export class OpenAiClientFactory {
  private readonly clients = new Map<string, { version: string; client: OpenAI }>();
  private readonly fetch = createHttpFetch();

  clientFor(provider: ResolvedProvider): OpenAI {
    const cached = this.clients.get(provider.id);
    if (cached && cached.version === provider.version) return cached.client;
    const client = new LeanOpenAI({
      apiKey: provider.apiKey,
      baseURL: provider.baseUrl,
      timeout: provider.timeoutMs,
      maxRetries: 0,
      defaultHeaders: provider.headers,
      fetch: this.fetch,
    });
    this.clients.set(provider.id, { version: provider.version, client });
    return client;
  }
}

/** The SDK's per-call options for a call that is aborted by `signal` and held back until `sendAfter`. */
export function sdkCallOptions(
  signal: AbortSignal,
  sendAfter: Promise<unknown> | undefined,
): { signal: AbortSignal; fetchOptions?: Omit<HeldRequestInit, 'headers' | 'body' | 'method' | 'signal'> } {
  // The SDK hands a call's fetchOptions to Parley's fetch (createHttpFetch) with the request.
  return sendAfter ? { signal, fetchOptions: { sendAfter } } : { signal };
}
