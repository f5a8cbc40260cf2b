import type { TenantContext } from '../common/context/request-context.js';
import type { TurnStart } from '../conversations/conversation.types.js';
import type { ProviderAdapter, UpstreamChatRequest } from '../providers/provider-adapter.js';
import type { CompletionTarget, ResolvedProvider } from '../providers/provider.types.js';
import type { Reservation } from '../quota/balance/balance.service.js';
import type { Admission } from '../quota/rate-limit/admission.js';
import type { PromptSize } from './context-window.js';
import type { ChatRequest } from './wire/chat-request.types.js';

/**
 * A request that passed every check and holds its reservation, ready for the upstream call, which
 * waits for the rate limit's verdict if it has not come yet (`admission`).
 */
export interface PreparedCompletion {
  ctx: TenantContext;
  /** Parley's completion id (`chatcmpl-...`): the job id in logs, the id of every chunk, the resume id. */
  id: string;
  created: number;
  request: ChatRequest;
  /** The body sent upstream: history, system prompt and tools applied. */
  upstream: UpstreamChatRequest;
  target: CompletionTarget;
  adapter: ProviderAdapter;
  stream: boolean;
  providerStream: boolean;
  promptSize: PromptSize;
  tools: {
    /** Names of the registered tools this request may run server-side; empty: the plain path. */
    serverSide: Set<string>;
  };
  /** With persistence: the conversation this turn belongs to, and the assistant message's id-to-be. */
  conversation?: TurnStart & { assistantMessageId: string };
  reservation: Reservation;
  admission: Admission;
}

/**
 * Whether the provider keeps the response to this request, so that the next turn can continue from
 * it with `previous_response_id`: a Responses provider set to store responses, and a request that
 * did not say `store: false` (a response that was not kept cannot be continued from).
 */
export function keepsResponse(provider: ResolvedProvider, upstream: UpstreamChatRequest): boolean {
  return provider.kind === 'responses' && provider.storeResponses && upstream.store !== false;
}
