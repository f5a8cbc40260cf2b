import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';

export type NodeEnv = 'development' | 'production' | 'test';
export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Everything Parley reads from the environment, typed and validated once at start-up. */
export interface AppConfig {
  nodeEnv: NodeEnv;
  port: number;
  host: string;
  /** Processes serving the port (node:cluster); 1 means no primary process at all. */
  workers: number;
  /** `postgres://...`; unset means the embedded PGlite in `dataDir`. */
  databaseUrl?: string;
  /** Where the embedded database keeps its files; `memory://` keeps it in memory (tests). */
  dataDir: string;
  /** `redis://...`; unset means the in-process store (one instance only). */
  redisUrl?: string;
  storeKeyPrefix: string;
  jwtSecret?: string;
  /** True when no JWT_SECRET was given and one was generated for this process (development). */
  jwtSecretGenerated: boolean;
  jwtJwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  adminToken?: string;
  encryptionKey: Buffer;
  /** Older keys still accepted for decryption, so ENCRYPTION_KEY can be rotated. */
  encryptionKeysPrevious: Buffer[];
  encryptionKeyIsDevelopmentDefault: boolean;
  openaiBaseUrl?: string;
  openaiApiKey?: string;
  defaultModel?: string;
  persistence: boolean;
  /** Name new conversations with a short extra call to the same provider. */
  conversationTitles: boolean;
  logFormat: LogFormat;
  logLevel: LogLevel;
  bodyLimitBytes: number;
  /** How long the status line of a stream waits for the upstream's first event. */
  streamFirstEventWaitMs: number;
  streamHeartbeatMs: number;
  toolInactivityMs: number;
  toolTimeoutMs: number;
  resumeGraceMs: number;
  streamLogTtlMs: number;
  streamLogMaxEvents: number;
  tenantConfigCacheMs: number;
  defaultRateLimitRequests: number;
  defaultRateLimitWindowS: number;
  maxReservationTokens: number;
  shutdownGraceMs: number;
  upstreamTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
  }
}

type Env = Record<string, string | undefined>;

// A fixed, public development key: fine for trying Parley, never for production (start-up warns).
const DEVELOPMENT_ENCRYPTION_KEY = '7061726c65792d646576656c6f706d656e742d6b65792d6e6f742d7365637265';

function str(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function int(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const value = raw.toLowerCase() as T;
  if (!allowed.includes(value))
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  return value;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

/** An integer of at least 1, or `auto` for one per CPU. */
function workerCount(env: Env): number {
  if (str(env, 'WORKERS')?.toLowerCase() === 'auto') return availableParallelism();
  return int(env, 'WORKERS', 1, 1, 1024);
}

/** 32 bytes as 64 hex characters, or base64. */
export function parseEncryptionKey(name: string, raw: string): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return Buffer.from(raw, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw)) {
    const key = Buffer.from(raw, 'base64');
    if (key.length === 32) return key;
  }
  throw new ConfigError(name, 'must be 32 bytes written as 64 hex characters or base64');
}

export function loadConfig(env: Env): AppConfig {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const rawKey = str(env, 'ENCRYPTION_KEY');
  if (rawKey === undefined && nodeEnv === 'production') {
    throw new ConfigError('ENCRYPTION_KEY', 'is required in production');
  }
  const jwtSecret = str(env, 'JWT_SECRET');
  const jwtJwksUrl = url(env, 'JWT_JWKS_URL', ['http:', 'https:']);
  const generateSecret = jwtSecret === undefined && jwtJwksUrl === undefined && nodeEnv !== 'production';
  const persistence = oneOf(env, 'PERSISTENCE', ['on', 'off', 'true', 'false'] as const, 'on');
  const previousKeys = (str(env, 'ENCRYPTION_KEYS_PREVIOUS') ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k) => parseEncryptionKey('ENCRYPTION_KEYS_PREVIOUS', k));
  const workers = workerCount(env);
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  if (workers > 1 && (databaseUrl === undefined || redisUrl === undefined)) {
    const missing = [redisUrl ? '' : 'REDIS_URL', databaseUrl ? '' : 'DATABASE_URL'].filter(Boolean);
    throw new ConfigError(
      'WORKERS',
      `is ${workers}, which needs both REDIS_URL and DATABASE_URL (${missing.join(' and ')} unset): ` +
        'the in-process store and the embedded database cannot be shared between processes',
    );
  }

  return {
    nodeEnv,
    port: int(env, 'PORT', 3000, 0, 65535),
    host: str(env, 'HOST') ?? '0.0.0.0',
    workers,
    databaseUrl,
    dataDir: str(env, 'DATA_DIR') ?? './data',
    redisUrl,
    storeKeyPrefix: str(env, 'STORE_KEY_PREFIX') ?? 'parley:',
    jwtSecret: jwtSecret ?? (generateSecret ? randomBytes(32).toString('base64url') : undefined),
    jwtSecretGenerated: generateSecret,
    jwtJwksUrl,
    jwtIssuer: str(env, 'JWT_ISSUER'),
    jwtAudience: str(env, 'JWT_AUDIENCE'),
    adminToken: str(env, 'ADMIN_TOKEN'),
    encryptionKey: parseEncryptionKey('ENCRYPTION_KEY', rawKey ?? DEVELOPMENT_ENCRYPTION_KEY),
    encryptionKeysPrevious: previousKeys,
    encryptionKeyIsDevelopmentDefault: rawKey === undefined,
    openaiBaseUrl: url(env, 'OPENAI_BASE_URL', ['http:', 'https:']),
    openaiApiKey: str(env, 'OPENAI_API_KEY'),
    defaultModel: str(env, 'DEFAULT_MODEL'),
    persistence: persistence === 'on' || persistence === 'true',
    conversationTitles: oneOf(env, 'CONVERSATION_TITLES', ['on', 'off'] as const, 'on') === 'on',
    logFormat: oneOf(env, 'LOG_FORMAT', ['text', 'json'] as const, 'text'),
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 32 * 1024 * 1024, 1024),
    streamFirstEventWaitMs: int(env, 'STREAM_FIRST_EVENT_WAIT_MS', 5000, 0),
    streamHeartbeatMs: int(env, 'STREAM_HEARTBEAT_MS', 15000, 10),
    toolInactivityMs: int(env, 'TOOL_INACTIVITY_MS', 30000, 10),
    toolTimeoutMs: int(env, 'TOOL_TIMEOUT_MS', 10000, 10),
    resumeGraceMs: int(env, 'RESUME_GRACE_MS', 30000, 0),
    streamLogTtlMs: int(env, 'STREAM_LOG_TTL_MS', 10 * 60 * 1000, 1000),
    streamLogMaxEvents: int(env, 'STREAM_LOG_MAX_EVENTS', 10000, 10),
    tenantConfigCacheMs: int(env, 'TENANT_CONFIG_CACHE_MS', 5000, 0),
    defaultRateLimitRequests: int(env, 'DEFAULT_RATE_LIMIT_REQUESTS', 600, 1),
    defaultRateLimitWindowS: int(env, 'DEFAULT_RATE_LIMIT_WINDOW_S', 60, 1),
    maxReservationTokens: int(env, 'MAX_RESERVATION_TOKENS', 32768, 1),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10000, 0),
    upstreamTimeoutMs: int(env, 'UPSTREAM_TIMEOUT_MS', 120000, 100),
  };
}
