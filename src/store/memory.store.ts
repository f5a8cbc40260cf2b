import { Logger } from '@nestjs/common';
import {
  type AppendOptions,
  checkAfterId,
  checkDelta,
  checkEventIds,
  checkMaxLen,
  checkReadOptions,
  checkScript,
  checkScriptKeys,
  checkTtl,
  DEFAULT_KEY_PREFIX,
  type LocalKv,
  type ReadAfterOptions,
  type Store,
  StoreClosedError,
  type StoreEvent,
  type StoreScript,
} from './store.port.js';

export interface MemoryStoreOptions {
  keyPrefix?: string;
  /** How often expired keys are swept (they are also expired lazily on access). Default 1000 ms. */
  sweepIntervalMs?: number;
}

type Entry =
  | { kind: 'value'; value: string; expiresAt: number | null }
  | { kind: 'log'; events: StoreEvent[]; expiresAt: number | null }
  | { kind: 'hash'; fields: Map<string, string>; expiresAt: number | null };

interface Waiter {
  /** Called after an append to the waited-on key. */
  check(): void;
  /** Ends the wait with []. */
  cancel(): void;
}

interface Subscription {
  handler: (message: string) => void;
}

const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';
const NOT_INTEGER = 'ERR value is not an integer or out of range';

/**
 * In-process Store for a single instance (no Redis). Same semantics as RedisStore, except that two
 * MemoryStore instances share nothing.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly keyPrefix: string;

  private readonly logger = new Logger('MemoryStore');
  private readonly data = new Map<string, Entry>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly channels = new Map<string, Set<Subscription>>();
  private readonly scripts = new Map<string, StoreScript<unknown>>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  /** Synchronous key/value view handed to `StoreScript.local` (full keys). */
  private readonly kv: LocalKv = {
    get: (key) => this.getValue(key),
    set: (key, value, ttlMs) => this.setValue(key, value, ttlMs),
    del: (...keys) => this.delKeys(keys),
    incrBy: (key, delta) => this.incrValue(key, delta),
    pttl: (key) => this.pttl(key),
    pexpire: (key, ttlMs) => this.pexpire(key, ttlMs),
    hget: (key, field) => this.hash(key)?.get(field) ?? null,
    hset: (key, field, value) => {
      let fields = this.hash(key);
      if (!fields) {
        fields = new Map();
        this.data.set(key, { kind: 'hash', fields, expiresAt: null });
      }
      fields.set(field, String(value));
    },
    hdel: (key, field) => {
      const fields = this.hash(key);
      if (!fields?.delete(field)) return 0;
      if (fields.size === 0) this.data.delete(key);
      return 1;
    },
    hgetall: (key) => [...(this.hash(key) ?? [])].flat(),
    hlen: (key) => this.hash(key)?.size ?? 0,
  };

  constructor(options: MemoryStoreOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 1000);
    this.sweeper.unref();
  }

  // ── plain values ──────────────────────────────────────────────────────────────────────────────

  async get(key: string): Promise<string | null> {
    this.assertOpen();
    return this.getValue(this.k(key));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.assertOpen();
    this.setValue(this.k(key), value, ttlMs);
  }

  async del(...keys: string[]): Promise<void> {
    this.assertOpen();
    this.delKeys(keys.map((key) => this.k(key)));
  }

  async incrBy(key: string, delta: number): Promise<number> {
    this.assertOpen();
    return this.incrValue(this.k(key), delta);
  }

  async expire(key: string, ttlMs: number): Promise<void> {
    this.assertOpen();
    this.pexpire(this.k(key), ttlMs);
  }

  // ── scripts ───────────────────────────────────────────────────────────────────────────────────

  defineScript<R>(script: StoreScript<R>): void {
    checkScript(script);
    const existing = this.scripts.get(script.name);
    if (existing) {
      if (existing.lua !== script.lua)
        throw new Error(`script ${script.name} is already defined differently`);
      return;
    }
    this.scripts.set(script.name, script);
  }

  async runScript<R>(name: string, keys: string[], args: (string | number)[]): Promise<R> {
    this.assertOpen();
    const script = this.scripts.get(name);
    if (!script) throw new Error(`script ${name} is not defined`);
    checkScriptKeys(name, script.numberOfKeys, keys);
    // Synchronous from here to the end: nothing else can interleave, so it is atomic.
    return script.local(
      this.kv,
      keys.map((key) => this.k(key)),
      args.map((arg) => String(arg)),
    ) as R;
  }

  // ── event log ─────────────────────────────────────────────────────────────────────────────────

  async append(key: string, events: readonly StoreEvent[], opts: AppendOptions = {}): Promise<void> {
    this.assertOpen();
    checkEventIds(events);
    const ttlMs = opts.ttlMs === undefined ? undefined : checkTtl(opts.ttlMs);
    const maxLen = opts.maxLen;
    if (maxLen !== undefined) checkMaxLen(maxLen);
    if (events.length === 0) return;
    const full = this.k(key);
    let entry = this.entry(full);
    if (entry && entry.kind !== 'log') throw new Error(WRONGTYPE);
    if (!entry) {
      entry = { kind: 'log', events: [], expiresAt: null };
      this.data.set(full, entry);
    }
    const last = entry.events.at(-1);
    if (last && events[0].id <= last.id) {
      throw new Error(`event id ${events[0].id} is not greater than the last id ${last.id} of ${key}`);
    }
    for (const { id, data } of events) entry.events.push({ id, data });
    if (maxLen !== undefined && entry.events.length > maxLen) {
      entry.events.splice(0, entry.events.length - maxLen);
    }
    if (ttlMs !== undefined) entry.expiresAt = Date.now() + ttlMs;
    const waiting = this.waiters.get(full);
    if (waiting) for (const waiter of [...waiting]) waiter.check();
  }

  async readAfter(key: string, afterId: number, opts: ReadAfterOptions = {}): Promise<StoreEvent[]> {
    this.assertOpen();
    checkAfterId(afterId);
    const { blockMs = 0, count, signal } = opts;
    checkReadOptions(blockMs, count);
    const full = this.k(key);
    const available = this.readLog(full, afterId, count);
    if (available.length > 0 || blockMs <= 0 || signal?.aborted) return available;

    return new Promise<StoreEvent[]>((resolve, reject) => {
      let set = this.waiters.get(full);
      if (!set) {
        set = new Set();
        this.waiters.set(full, set);
      }
      const waiters = set;
      const finish = (events: StoreEvent[] | Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.waiters.get(full) === waiters) this.waiters.delete(full);
        if (events instanceof Error) reject(events);
        else resolve(events);
      };
      const waiter: Waiter = {
        check: () => {
          try {
            const events = this.readLog(full, afterId, count);
            if (events.length > 0) finish(events);
          } catch (err) {
            finish(err instanceof Error ? err : new Error(String(err)));
          }
        },
        cancel: () => finish([]),
      };
      const onAbort = (): void => finish([]);
      const timer = setTimeout(() => finish([]), blockMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  // ── pub/sub ───────────────────────────────────────────────────────────────────────────────────

  async publish(channel: string, message: string): Promise<void> {
    this.assertOpen();
    const subs = this.channels.get(this.k(channel));
    if (!subs || subs.size === 0) return;
    const snapshot = [...subs];
    setImmediate(() => {
      for (const sub of snapshot) {
        if (!subs.has(sub)) continue; // unsubscribed in the meantime
        try {
          sub.handler(message);
        } catch (err) {
          this.logger.error(
            `subscriber of ${channel} threw: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      }
    });
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    this.assertOpen();
    const full = this.k(channel);
    let subs = this.channels.get(full);
    if (!subs) {
      subs = new Set();
      this.channels.set(full, subs);
    }
    const sub: Subscription = { handler };
    subs.add(sub);
    return async () => {
      const current = this.channels.get(full);
      if (!current) return;
      current.delete(sub);
      if (current.size === 0) this.channels.delete(full);
    };
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────────

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const set of [...this.waiters.values()]) for (const waiter of [...set]) waiter.cancel();
    this.waiters.clear();
    this.channels.clear();
    this.data.clear();
  }

  // ── internals (synchronous; full keys) ───────────────────────────────────────────────────────

  private k(name: string): string {
    return this.keyPrefix + name;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** The live entry for a full key, expiring it lazily. */
  private entry(full: string): Entry | undefined {
    const entry = this.data.get(full);
    if (entry && entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      this.data.delete(full);
      return undefined;
    }
    return entry;
  }

  /** The fields of the hash at a full key, undefined when there is none. */
  private hash(full: string): Map<string, string> | undefined {
    const entry = this.entry(full);
    if (!entry) return undefined;
    if (entry.kind !== 'hash') throw new Error(WRONGTYPE);
    return entry.fields;
  }

  private getValue(full: string): string | null {
    const entry = this.entry(full);
    if (!entry) return null;
    if (entry.kind !== 'value') throw new Error(WRONGTYPE);
    return entry.value;
  }

  private setValue(full: string, value: string, ttlMs?: number): void {
    const ttl = ttlMs === undefined ? undefined : checkTtl(ttlMs);
    this.data.set(full, {
      kind: 'value',
      value: String(value),
      expiresAt: ttl === undefined ? null : Date.now() + ttl,
    });
  }

  private delKeys(fullKeys: string[]): number {
    let deleted = 0;
    for (const full of fullKeys) {
      if (this.entry(full)) deleted++;
      this.data.delete(full);
    }
    return deleted;
  }

  private incrValue(full: string, delta: number): number {
    checkDelta(delta);
    const entry = this.entry(full);
    if (entry && entry.kind !== 'value') throw new Error(WRONGTYPE);
    const current = entry ? parseInteger(entry.value) : 0;
    const next = current + delta;
    if (!Number.isSafeInteger(next)) throw new Error('ERR increment or decrement would overflow');
    if (entry) entry.value = String(next);
    else this.data.set(full, { kind: 'value', value: String(next), expiresAt: null });
    return next;
  }

  private pttl(full: string): number {
    const entry = this.entry(full);
    if (!entry) return -2;
    if (entry.expiresAt === null) return -1;
    return Math.max(0, entry.expiresAt - Date.now());
  }

  private pexpire(full: string, ttlMs: number): boolean {
    const ttl = checkTtl(ttlMs);
    const entry = this.entry(full);
    if (!entry) return false;
    entry.expiresAt = Date.now() + ttl;
    return true;
  }

  private readLog(full: string, afterId: number, count: number | undefined): StoreEvent[] {
    const entry = this.entry(full);
    if (!entry) return [];
    if (entry.kind !== 'log') throw new Error(WRONGTYPE);
    const events = entry.events;
    // Binary search for the first event with id > afterId.
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (events[mid].id <= afterId) lo = mid + 1;
      else hi = mid;
    }
    const end = count === undefined ? events.length : Math.min(events.length, lo + count);
    return events.slice(lo, end).map((event) => ({ id: event.id, data: event.data }));
  }

  private sweep(): void {
    const now = Date.now();
    for (const [full, entry] of this.data) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) this.data.delete(full);
    }
  }
}

function parseInteger(value: string): number {
  if (!/^(0|-?[1-9]\d*)$/.test(value)) throw new Error(NOT_INTEGER);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(NOT_INTEGER);
  return n;
}
