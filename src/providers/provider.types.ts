export const PROVIDER_KINDS = ['chat_completions', 'responses'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** Every capability is assumed unless a model says otherwise, except audio. */
export const DEFAULT_CAPABILITIES: Readonly<ModelCapabilities> = Object.freeze({
  tools: true,
  vision: true,
  audio: false,
  reasoning: true,
  verbosity: true,
});

export interface ModelCapabilities {
  tools: boolean;
  vision: boolean;
  audio: boolean;
  reasoning: boolean;
  verbosity: boolean;
}

export interface ModelInfo {
  id: string;
  contextLength: number;
  capabilities: ModelCapabilities;
}

/** A provider row as the completion path needs it: the key already decrypted, in memory only. */
export interface ResolvedProvider {
  id: string;
  tenantId: string;
  name: string;
  kind: ProviderKind;
  baseUrl: string;
  /** Decrypted; never logged, never returned by a route. Empty when none is configured. */
  apiKey: string;
  /** Changes whenever the key or the connection settings change, so cached SDK clients are rebuilt. */
  version: string;
  defaultModel: string;
  models: ModelInfo[];
  headers: Record<string, string>;
  timeoutMs: number;
  isDefault: boolean;
  /** Responses providers: whether the provider keeps responses, so turns can chain by id. */
  storeResponses: boolean;
  /** When the provider was added, in unix seconds (the `created` of its models in `/v1/models`). */
  createdAt?: number;
}

/** What a completion runs against, after model and provider resolution. */
export interface CompletionTarget {
  provider: ResolvedProvider;
  model: ModelInfo;
}
