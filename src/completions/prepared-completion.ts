import type { TenantContext } from '../common/context/request-context.js';
import type { TurnStart } from '../conversations/conversation.types.js';
import type { ProviderAdapter, UpstreamChatRequest } from '../providers/provider-adapter.js';
import type { CompletionTarget } from '../providers/provider.types.js';
import type { Reservation } from '../quota/balance/balance.service.js';
import type { PromptSize } from './context-window.js';
import type { ChatRequest } from './wire/chat-request.types.js';

/** A request that passed every check and holds its reservation, ready for the upstream call. */
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
}
