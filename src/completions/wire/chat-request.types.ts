import type { UpstreamChatRequest } from '../../providers/provider-adapter.js';

/** Persistence hints a client may send; stored on the conversation as metadata. */
export interface ConversationHints {
  streamingEnabled?: boolean;
  toolsEnabled?: boolean;
  qualityLevel?: string;
  researchMode?: boolean;
}

/** Parley's own request fields, taken out of the body before anything goes upstream. */
export interface ParleyOptions {
  conversationId?: string;
  providerId?: string;
  systemPrompt?: string;
  activeSystemPromptId?: string | null;
  /** `provider_stream` / `providerStream`; undefined means "same as stream". */
  providerStream?: boolean;
  hints: ConversationHints;
}

/** A validated chat request: what goes upstream, and what Parley itself acts on. */
export interface ChatRequest {
  upstream: UpstreamChatRequest;
  /** The client's `stream`, undefined when it left it out (the tenant default then applies). */
  stream?: boolean;
  includeUsage: boolean;
  /** Tool names given as strings in `tools`, to be expanded to registered server-side tools. */
  toolNames: string[];
  parley: ParleyOptions;
  /** Human-readable notes about parts dropped from the request (logged as warnings). */
  warnings: string[];
}
