/**
 * The one interface for everything Parley keeps in shared state (Redis in production, an in-process
 * map for a single instance / tests).
 *
 * Conventions shared by every implementation:
 * - Every key and every pub/sub channel is prefixed with the store's `keyPrefix` (default `parley:`).
 *   Callers always pass un-prefixed names.
 * - TTLs are in milliseconds and must be positive finite numbers (fractions are rounded up).
 * - One key space: a key holds a plain value (get/set/incrBy), an event log (append/readAfter) or,
 *   made and read by scripts only, a hash. Using the wrong kind of operation on a key rejects with a
 *   `WRONGTYPE` error, as in Redis.
 * - After `close()` every operation rejects, except `close()` itself (idempotent).
 */
export interface Store {
  readonly kind: 'redis' | 'memory';
  /** The prefix added to every key and channel. */
  readonly keyPrefix: string;

  // ── plain values ────────────────────────────────────────────────────────────────────────────────
  /** The value, or null when missing/expired. */
  get(key: string): Promise<string | null>;
  /** Set the value; with `ttlMs` the key expires after that long, without it any previous TTL is cleared. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Delete keys of any kind (values or event logs). Missing keys are ignored. */
  del(...keys: string[]): Promise<void>;
  /**
   * Add the integer `delta` (may be negative) to the counter at `key` (missing = 0) and return the new
   * value. Keeps an existing TTL. Rejects if the current value is not an integer.
   */
  incrBy(key: string, delta: number): Promise<number>;
  /** Set a TTL on an existing key of any kind (no-op when the key does not exist). */
  expire(key: string, ttlMs: number): Promise<void>;

  // ── atomic scripts ──────────────────────────────────────────────────────────────────────────────
  /**
   * Register a script (once per store; re-defining the same name with the same Lua is a no-op, with a
   * different Lua it throws). Redis: ioredis `defineCommand` (EVALSHA, falling back to EVAL).
   */
  defineScript<R>(script: StoreScript<R>): void;
  /**
   * Run a defined script atomically. `keys` are un-prefixed (the store prefixes them, so `KEYS[i]` /
   * `keys[i]` inside the script are the full keys); `keys.length` must equal the script's numberOfKeys.
   * Numbers in `args` arrive as strings (ARGV semantics).
   */
  runScript<R>(name: string, keys: string[], args: (string | number)[]): Promise<R>;

  // ── append-only event log per key (Redis Streams) ───────────────────────────────────────────────
  /**
   * Append events, in one round trip and all or none, each with the caller's own integer id: positive
   * safe integers, strictly increasing within the batch and greater than the last id in that log
   * (otherwise it rejects and writes nothing). `maxLen` bounds the log (Redis: approximate
   * `MAXLEN ~`, the oldest events are dropped, at least `maxLen` newest are kept); `ttlMs` (re)sets
   * the key's TTL.
   */
  append(key: string, events: readonly StoreEvent[], opts?: AppendOptions): Promise<void>;
  /**
   * Events with id > `afterId`, in id order (at most `count`). If there are none and `blockMs` > 0,
   * waits until at least one is appended or `blockMs` passes (then resolves []). Aborting `signal`
   * (or closing the store) ends the wait promptly and resolves []. Events dropped by `maxLen`/TTL are
   * simply absent (callers detect a gap by the first returned id being > afterId + 1).
   */
  readAfter(key: string, afterId: number, opts?: ReadAfterOptions): Promise<StoreEvent[]>;

  // ── pub/sub (every instance sharing the store gets every message) ──────────────────────────────
  publish(channel: string, message: string): Promise<void>;
  /**
   * Subscribe `handler` to a channel; resolves once the subscription is active (messages published
   * after that are delivered). Returns the unsubscribe function (idempotent). Handlers are called
   * asynchronously; a throwing handler is logged and does not affect others.
   */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;

  // ── lifecycle ───────────────────────────────────────────────────────────────────────────────────
  /** Resolves when the backing store answers; rejects within about a second when it is unreachable. */
  ping(): Promise<void>;
  /** Release connections/timers, end blocked readers (they resolve []) and drop subscriptions. */
  close(): Promise<void>;
}

export const STORE = Symbol('STORE');

export interface StoreEvent {
  id: number;
  data: string;
}

export interface AppendOptions {
  /** Keep (at least) this many newest events; older ones are dropped. */
  maxLen?: number;
  /** (Re)set the log's TTL on every append. */
  ttlMs?: number;
}

export interface ReadAfterOptions {
  /** Wait up to this long for the first event when none is available yet (0/undefined: don't wait). */
  blockMs?: number;
  /** Return at most this many events. */
  count?: number;
  /** Abort a blocking wait (resolves []). */
  signal?: AbortSignal;
}

/**
 * A script with two equivalent bodies: Lua for Redis and a synchronous TypeScript function for the
 * in-process store. Both must only touch the keys passed in (KEYS / `keys`).
 *
 * Return values follow Redis' Lua conversion, and `local` must return the same shape:
 * Lua number -> integer (fractions truncated), string -> string, nil/false -> null, true -> 1,
 * table (array) -> array.
 */
export interface StoreScript<R> {
  /** Letters, digits and `_` only. */
  name: string;
  numberOfKeys: number;
  lua: string;
  /** Same semantics as `lua`, for MemoryStore. Runs synchronously, hence atomically. */
  local: (kv: LocalKv, keys: string[], args: string[]) => R;
}

/** Synchronous view of the in-process data for `StoreScript.local` (keys are full, i.e. prefixed). */
export interface LocalKv {
  get(key: string): string | null;
  /** Like SET [PX ttlMs]: without ttl the key's TTL is cleared. */
  set(key: string, value: string, ttlMs?: number): void;
  /** Returns how many keys existed. */
  del(...keys: string[]): number;
  /** Like INCRBY: keeps the TTL, throws if the value is not an integer. */
  incrBy(key: string, delta: number): number;
  /** Like PTTL: remaining ms, -1 when the key has no TTL, -2 when it does not exist. */
  pttl(key: string): number;
  /** Like PEXPIRE: true if the key exists (and now has the TTL). */
  pexpire(key: string, ttlMs: number): boolean;
  /** Like HGET: the field's value, null when the hash or the field does not exist. */
  hget(key: string, field: string): string | null;
  /** Like HSET with one field (creates the hash). */
  hset(key: string, field: string, value: string): void;
  /** Like HDEL with one field: 1 if it existed, else 0; a hash left empty is deleted. */
  hdel(key: string, field: string): number;
  /** Like HGETALL: `[field, value, field, value, ...]`, empty when the hash does not exist. */
  hgetall(key: string): string[];
  /** Like HLEN: the number of fields, 0 when the hash does not exist. */
  hlen(key: string): number;
}

export const DEFAULT_KEY_PREFIX = 'parley:';

/** Shared argument validation so both stores reject the same inputs the same way. */
export function checkTtl(ttlMs: number, what = 'ttlMs'): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${what} must be a positive number of milliseconds, got ${String(ttlMs)}`);
  }
  return Math.ceil(ttlMs);
}

/** A batch to append: ids positive safe integers, strictly increasing. */
export function checkEventIds(events: readonly StoreEvent[]): void {
  let previous = 0;
  for (const { id } of events) {
    if (!Number.isSafeInteger(id) || id < 1) {
      throw new RangeError(`event id must be a positive safe integer, got ${String(id)}`);
    }
    if (id <= previous)
      throw new RangeError(`event ids must increase within a batch, got ${id} after ${previous}`);
    previous = id;
  }
}

export function checkAfterId(afterId: number): void {
  if (!Number.isSafeInteger(afterId) || afterId < 0) {
    throw new RangeError(`afterId must be a non-negative safe integer, got ${String(afterId)}`);
  }
}

export function checkDelta(delta: number): void {
  if (!Number.isSafeInteger(delta)) {
    throw new RangeError(`delta must be a safe integer, got ${String(delta)}`);
  }
}

export function checkScript(script: StoreScript<unknown>): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(script.name)) {
    throw new Error(`invalid script name ${JSON.stringify(script.name)}`);
  }
  if (!Number.isSafeInteger(script.numberOfKeys) || script.numberOfKeys < 0) {
    throw new Error(`script ${script.name}: numberOfKeys must be a non-negative integer`);
  }
}

export function checkScriptKeys(name: string, numberOfKeys: number, keys: string[]): void {
  if (keys.length !== numberOfKeys) {
    throw new Error(`script ${name} expects ${numberOfKeys} key(s), got ${keys.length}`);
  }
}

export function checkMaxLen(maxLen: number): void {
  if (!Number.isSafeInteger(maxLen) || maxLen < 1) {
    throw new RangeError(`maxLen must be a positive integer, got ${String(maxLen)}`);
  }
}

export function checkReadOptions(blockMs: number, count: number | undefined): void {
  if (typeof blockMs !== 'number' || !Number.isFinite(blockMs) || blockMs < 0) {
    throw new RangeError(`blockMs must be a non-negative number, got ${String(blockMs)}`);
  }
  if (count !== undefined && (!Number.isSafeInteger(count) || count < 1)) {
    throw new RangeError(`count must be a positive integer, got ${String(count)}`);
  }
}

export class StoreClosedError extends Error {
  constructor() {
    super('store is closed');
    this.name = 'StoreClosedError';
  }
}
