import { Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { filter, from, map, mergeMap, Observable } from 'rxjs';
import type { TenantContext } from '../common/context/request-context.js';
import { AdapterRegistry } from '../providers/adapter-registry.service.js';
import type { ProviderAdapter, UpstreamChatRequest } from '../providers/provider-adapter.js';
import { ProviderCatalogService } from '../providers/provider-catalog.service.js';
import type { CompletionTarget } from '../providers/provider.types.js';
import type { TenantConfig } from '../tenants/tenant-config.types.js';
import { checkContextWindow, type PromptSize } from './context-window.js';
import type { ChatRequest } from './wire/chat-request.types.js';
import { validateChatRequest } from './wire/chat-request.validator.js';
import { completionToChunks, normalizeCompletion, type ChunkHead } from './wire/chunks.js';
import { createStreamRewriter } from './wire/stream-rewriter.js';
import { applySystemPrompt } from './wire/system-prompt.js';

/** Request headers Parley reads besides the body. */
export interface CompletionHeaders {
  conversationId?: string;
  providerId?: string;
}

/** A request that passed every check, ready for the upstream call. */
export interface PreparedCompletion {
  ctx: TenantContext;
  /** Parley's completion id (`chatcmpl-...`), also the job id in logs and the resume id. */
  id: string;
  created: number;
  request: ChatRequest;
  upstream: UpstreamChatRequest;
  target: CompletionTarget;
  adapter: ProviderAdapter;
  stream: boolean;
  providerStream: boolean;
  promptSize: PromptSize;
}

export function newCompletionId(): string {
  return `chatcmpl-${randomBytes(18).toString('base64url')}`;
}

/** Drops reasoning controls the model does not support (valid values only reach here). */
function dropUnsupportedControls(
  request: UpstreamChatRequest,
  target: CompletionTarget,
): UpstreamChatRequest {
  const { reasoning, verbosity } = target.model.capabilities;
  if (
    (reasoning || request.reasoning_effort === undefined) &&
    (verbosity || request.verbosity === undefined)
  ) {
    return request;
  }
  const copy = { ...request };
  if (!reasoning) delete copy.reasoning_effort;
  if (!verbosity) delete copy.verbosity;
  return copy;
}

/**
 * The plain completion path, in the contract's order: validate, resolve model and provider,
 * check the context window, log, call the adapter, answer as JSON or as a chunk stream.
 */
@Injectable()
export class CompletionsService {
  private readonly logger = new Logger('Completions');

  constructor(
    private readonly catalog: ProviderCatalogService,
    private readonly adapters: AdapterRegistry,
  ) {}

  prepare(
    ctx: TenantContext,
    tenant: TenantConfig,
    body: unknown,
    headers: CompletionHeaders,
  ): PreparedCompletion {
    const request = validateChatRequest(body);
    const target = this.catalog.resolve(tenant, {
      model: request.upstream.model || undefined,
      providerId: request.parley.providerId ?? headers.providerId,
    });
    let upstream = dropUnsupportedControls(request.upstream, target);
    upstream = {
      ...upstream,
      model: target.model.id,
      messages: applySystemPrompt(upstream.messages, request.parley.systemPrompt),
    };
    const promptSize = checkContextWindow(upstream, target.model.contextLength);
    const id = newCompletionId();
    for (const warning of request.warnings) this.logger.warn(`${ctx.tenantId}:${id} ${warning}`);
    this.logger.log(`Processing chat completion for ${ctx.tenantId}:${id}`);
    const stream = request.stream ?? tenant.settings.stream_default ?? false;
    return {
      ctx,
      id,
      created: Math.floor(Date.now() / 1000),
      request,
      upstream,
      target,
      adapter: this.adapters.forKind(target.provider.kind),
      stream,
      providerStream: stream && request.parley.providerStream !== false,
      promptSize,
    };
  }

  async complete(prepared: PreparedCompletion, signal: AbortSignal): Promise<ChatCompletion> {
    const completion = await prepared.adapter.complete(prepared.upstream, prepared.target, signal);
    return normalizeCompletion(completion, prepared.id);
  }

  /** The chunks the client receives, in order; errors are ParleyErrors. */
  stream(prepared: PreparedCompletion, signal: AbortSignal): Observable<ChatCompletionChunk> {
    const rewrite = createStreamRewriter({ id: prepared.id, includeUsage: prepared.request.includeUsage });
    const upstream$ = prepared.providerStream
      ? prepared.adapter.stream(prepared.upstream, prepared.target, signal)
      : from(prepared.adapter.complete(prepared.upstream, prepared.target, signal)).pipe(
          mergeMap((completion) => {
            const head: ChunkHead = { id: prepared.id, created: prepared.created, model: completion.model };
            return from(completionToChunks(head, normalizeCompletion(completion, prepared.id)));
          }),
        );
    return upstream$.pipe(
      map(rewrite),
      filter((chunk): chunk is ChatCompletionChunk => chunk !== null),
    );
  }
}
