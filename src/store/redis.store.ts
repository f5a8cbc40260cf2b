import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { createHash } from 'node:crypto';
import { errorMessage } from '../common/errors/error-message.js';
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
  type ReadAfterOptions,
  type Store,
  StoreClosedError,
  type StoreEvent,
  type StoreScript,
} from './store.port.js';

export interface RedisStoreOptions {
  /** e.g. `redis://127.0.0.1:6379` (`rediss://` for TLS, `redis://:password@host:port/db`). */
  url: string;
  keyPrefix?: string;
  /** TCP connect timeout per attempt. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** ping() rejects after this long without an answer. Default 800 ms. */
  pingTimeoutMs?: number;
  /** Idle dedicated connections kept for blocking reads. Default 8. */
  maxIdleReaders?: number;
}

/** Field name of the event payload inside a stream entry. The event id is the stream id `<id>-0`. */
const DATA_FIELD = 'd';
/** Extra time a blocking XREAD may take beyond its BLOCK before we consider Redis hung. */
const BLOCK_GRACE_MS = 2000;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/**
 * Appends a batch to a log in one command. KEYS[1] the log; ARGV: maxLen ('' for none), ttlMs ('' for
 * none), then id and data per event. The ids increase (checked before sending), so only the first
 * XADD can fail (an id not above the log's last, or not a log at all), and a script stops at its
 * first error: a rejected batch writes nothing.
 */
const APPEND_EVENTS = {
  command: 'parleyAppendEvents',
  lua: `
local maxLen = ARGV[1]
for i = 3, #ARGV, 2 do
  if maxLen == '' then
    redis.call('XADD', KEYS[1], ARGV[i] .. '-0', '${DATA_FIELD}', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxLen, ARGV[i] .. '-0', '${DATA_FIELD}', ARGV[i + 1])
  end
end
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`,
} as const;

interface Subscription {
  handler: (message: string) => void;
}

/**
 * Store on one Redis, shared by every Parley instance.
 *
 * Connections: one main connection for commands, one lazily created subscriber connection for
 * pub/sub, and a small pool of dedicated connections for blocking XREADs (a blocked connection
 * cannot serve anything else).
 *
 * Outages: commands issued while Redis is unreachable reject immediately (no offline queue), commands
 * in flight when the connection drops reject at once and are never re-sent (they may not be
 * idempotent), and the connections keep reconnecting in the background (backoff capped at 1 s), so
 * the store recovers by itself. Connection errors are logged once per outage.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly keyPrefix: string;

  private readonly logger = new Logger('RedisStore');
  private readonly client: Redis;
  private readonly pingTimeoutMs: number;
  private readonly maxIdleReaders: number;
  private readonly target: string;
  private readonly scripts = new Map<string, StoreScript<unknown> & { sha: string }>();

  /** Dedicated blocking-read connections: idle ones, and an abort function for each busy one. */
  private readonly idleReaders: Redis[] = [];
  private readonly busyReaders = new Map<Redis, () => void>();

  private subscriber: Redis | undefined;
  private readonly channels = new Map<string, Set<Subscription>>();
  private readonly subscribedChannels = new Set<string>();
  private subscriptionChain: Promise<void> = Promise.resolve();

  private outage = false;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 800;
    this.maxIdleReaders = options.maxIdleReaders ?? 8;
    this.target = redactUrl(options.url);
    const redisOptions: RedisOptions = {
      connectTimeout: options.connectTimeoutMs ?? 1000,
      // Fail fast: nothing is queued while disconnected, and commands in flight when the connection
      // drops are rejected immediately instead of being retried or re-sent after reconnecting.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Commands issued in the same tick (a rate-limit check, a reservation, a log append) go out
      // in one write: under load that saves a syscall per command. The write waits for the event
      // loop's check phase (setImmediate), so a script on an idle connection skips it (runScript).
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: ['evalsha'],
      // Reconnect forever with a backoff capped at 1 s.
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), 1000),
    };
    this.client = new Redis(options.url, redisOptions);
    this.client.defineCommand(APPEND_EVENTS.command, { numberOfKeys: 1, lua: APPEND_EVENTS.lua });
    this.watch(this.client);
  }

  /** Resolves once the main connection is ready; rejects after `timeoutMs`. */
  async waitUntilReady(timeoutMs = 5000): Promise<void> {
    this.assertOpen();
    if (this.client.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        reject(new Error(`Redis at ${this.target} not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      this.client.once('ready', onReady);
    });
  }

  // ── plain values ──────────────────────────────────────────────────────────────────────────────

  async get(key: string): Promise<string | null> {
    this.assertOpen();
    return this.client.get(this.k(key));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.assertOpen();
    if (ttlMs === undefined) await this.client.set(this.k(key), value);
    else await this.client.set(this.k(key), value, 'PX', checkTtl(ttlMs));
  }

  async del(...keys: string[]): Promise<void> {
    this.assertOpen();
    if (keys.length === 0) return;
    await this.client.del(...keys.map((key) => this.k(key)));
  }

  async incrBy(key: string, delta: number): Promise<number> {
    this.assertOpen();
    checkDelta(delta);
    return this.client.incrby(this.k(key), delta);
  }

  async expire(key: string, ttlMs: number): Promise<void> {
    this.assertOpen();
    await this.client.pexpire(this.k(key), checkTtl(ttlMs));
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
    // EVALSHA, falling back to EVAL (which also loads it) when Redis does not know the script yet.
    this.client.defineCommand(scriptCommand(script.name), {
      numberOfKeys: script.numberOfKeys,
      lua: script.lua,
    });
    this.scripts.set(script.name, { ...script, sha: createHash('sha1').update(script.lua).digest('hex') });
  }

  /**
   * On an idle connection (nothing in flight, nothing waiting to be batched) the script is written at
   * once, while the caller goes on: the rate limit's round trip then overlaps the request's own work
   * instead of starting after it. Otherwise it joins the batch. Either way it is written after every
   * command issued before it, so the connection's order holds.
   */
  async runScript<R>(name: string, keys: string[], args: (string | number)[]): Promise<R> {
    this.assertOpen();
    const script = this.scripts.get(name);
    if (!script) throw new Error(`script ${name} is not defined`);
    checkScriptKeys(name, script.numberOfKeys, keys);
    const fullKeys = keys.map((key) => this.k(key));
    const batched = (): Promise<R> => {
      const run = (this.client as unknown as Record<string, ScriptFn>)[scriptCommand(name)];
      return run.call(this.client, ...fullKeys, ...args) as Promise<R>;
    };
    if (this.client.commandQueue.length > 0 || this.client.autoPipelineQueueSize > 0) return batched();
    try {
      return (await this.client.evalsha(script.sha, script.numberOfKeys, ...fullKeys, ...args)) as R;
    } catch (err) {
      // Redis does not know the script yet (restarted, flushed): the defined command loads it.
      if (errorMessage(err).startsWith('NOSCRIPT')) return batched();
      throw err;
    }
  }

  // ── event log (one Redis Stream per key; stream id `<event id>-0`) ─────────────────────────────

  async append(key: string, events: readonly StoreEvent[], opts: AppendOptions = {}): Promise<void> {
    this.assertOpen();
    checkEventIds(events);
    const ttlMs = opts.ttlMs === undefined ? '' : checkTtl(opts.ttlMs);
    if (opts.maxLen !== undefined) checkMaxLen(opts.maxLen);
    const maxLen = opts.maxLen ?? '';
    if (events.length === 0) return;
    const args: (string | number)[] = [this.k(key), maxLen, ttlMs];
    for (const event of events) args.push(event.id, event.data);
    const append = (this.client as unknown as Record<string, ScriptFn>)[APPEND_EVENTS.command];
    await append.call(this.client, ...args);
  }

  async readAfter(key: string, afterId: number, opts: ReadAfterOptions = {}): Promise<StoreEvent[]> {
    this.assertOpen();
    checkAfterId(afterId);
    const { blockMs = 0, count, signal } = opts;
    checkReadOptions(blockMs, count);
    const full = this.k(key);
    const args = [...(count === undefined ? [] : ['COUNT', count]), 'STREAMS', full, `${afterId}-0`];
    // Non-blocking first, on the shared connection: the common case needs no dedicated connection.
    const available = parseXread(await this.client.call('XREAD', ...args));
    if (available.length > 0 || blockMs <= 0 || signal?.aborted) return available;
    // XREAD BLOCK with an explicit id returns at once if something was appended in between.
    return this.blockingRead(['BLOCK', Math.ceil(blockMs), ...args], blockMs, signal);
  }

  private async blockingRead(
    args: (string | number)[],
    blockMs: number,
    signal: AbortSignal | undefined,
  ): Promise<StoreEvent[]> {
    const conn = this.takeReader();
    let cancelled = false;
    let hung = false;
    const cancel = (): void => {
      cancelled = true;
      conn.disconnect(); // rejects the pending XREAD (or connect) at once
    };
    this.busyReaders.set(conn, cancel);
    signal?.addEventListener('abort', cancel, { once: true });
    const watchdog = setTimeout(() => {
      hung = true;
      conn.disconnect();
    }, blockMs + BLOCK_GRACE_MS);
    try {
      if (conn.status === 'wait') await conn.connect();
      return parseXread(await conn.call('XREAD', ...args));
    } catch (err) {
      if (cancelled) return [];
      if (hung)
        throw new Error(`blocking read on Redis at ${this.target} did not return in time`, { cause: err });
      throw err;
    } finally {
      clearTimeout(watchdog);
      signal?.removeEventListener('abort', cancel);
      this.busyReaders.delete(conn);
      if (
        !cancelled &&
        !hung &&
        !this.closed &&
        conn.status === 'ready' &&
        this.idleReaders.length < this.maxIdleReaders
      ) {
        this.idleReaders.push(conn);
      } else {
        conn.disconnect();
      }
    }
  }

  /** An idle ready reader connection, or a new one (not yet connected, status 'wait'). */
  private takeReader(): Redis {
    for (let conn = this.idleReaders.pop(); conn; conn = this.idleReaders.pop()) {
      if (conn.status === 'ready') return conn;
      conn.disconnect();
    }
    const conn = this.client.duplicate({
      lazyConnect: true,
      // A reader that loses its connection just fails its read; the next read opens a new one.
      retryStrategy: () => null,
    });
    this.watch(conn);
    return conn;
  }

  // ── pub/sub ───────────────────────────────────────────────────────────────────────────────────

  async publish(channel: string, message: string): Promise<void> {
    this.assertOpen();
    await this.client.publish(this.k(channel), message);
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
    const remove = (): void => {
      const current = this.channels.get(full);
      if (!current) return;
      current.delete(sub);
      if (current.size === 0) this.channels.delete(full);
    };
    try {
      await this.syncSubscription(full);
    } catch (err) {
      remove();
      throw err;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      remove();
      if (this.closed) return;
      try {
        await this.syncSubscription(full);
      } catch (err) {
        // The handler is gone locally; a leftover Redis subscription only costs ignored messages.
        this.logger.debug(`UNSUBSCRIBE ${full} failed: ${errorMessage(err)}`);
      }
    };
  }

  /** Make the Redis subscription of `full` match whether it has local handlers (serialised). */
  private syncSubscription(full: string): Promise<void> {
    const run = async (): Promise<void> => {
      const wanted = (this.channels.get(full)?.size ?? 0) > 0;
      const active = this.subscribedChannels.has(full);
      if (wanted && !active) {
        const subscriber = await this.getSubscriber();
        await subscriber.subscribe(full);
        this.subscribedChannels.add(full);
      } else if (!wanted && active && this.subscriber) {
        await this.subscriber.unsubscribe(full);
        this.subscribedChannels.delete(full);
      }
    };
    const result = this.subscriptionChain.then(run);
    this.subscriptionChain = result.catch(() => undefined);
    return result;
  }

  private async getSubscriber(): Promise<Redis> {
    this.assertOpen();
    if (this.subscriber) return this.subscriber;
    // Reconnects forever like the main connection, and re-subscribes its channels after reconnecting.
    const subscriber = this.client.duplicate({ lazyConnect: true });
    this.watch(subscriber);
    subscriber.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    this.subscriber = subscriber;
    // If Redis is down this rejects, while the connection keeps retrying in the background.
    await subscriber.connect();
    return subscriber;
  }

  private dispatch(full: string, message: string): void {
    const subs = this.channels.get(full);
    if (!subs) return;
    for (const sub of [...subs]) {
      if (!subs.has(sub)) continue;
      try {
        sub.handler(message);
      } catch (err) {
        this.logger.error(`subscriber of ${full} threw: ${errorMessage(err)}`);
      }
    }
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────────

  async ping(): Promise<void> {
    this.assertOpen();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`Redis at ${this.target} did not answer PING within ${this.pingTimeoutMs} ms`)),
        this.pingTimeoutMs,
      );
    });
    try {
      await Promise.race([this.client.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of [...this.busyReaders.values()]) cancel();
    for (const conn of this.idleReaders.splice(0)) conn.disconnect();
    this.channels.clear();
    this.subscribedChannels.clear();
    this.subscriber?.disconnect();
    if (this.client.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.client.quit().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 500))),
      ]);
      clearTimeout(timer);
    }
    this.client.disconnect();
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────────

  private k(name: string): string {
    return this.keyPrefix + name;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** Handle connection errors (never unhandled), logging once per outage. */
  private watch(conn: Redis): void {
    conn.on('error', (err: unknown) => {
      if (this.closed || this.outage) return;
      this.outage = true;
      this.logger.warn(
        `Redis at ${this.target} unreachable: ${errorMessage(err)} (retrying in the background)`,
      );
    });
    conn.on('ready', () => {
      if (!this.outage || this.closed) return;
      this.outage = false;
      this.logger.log(`Redis at ${this.target} reachable again`);
    });
  }
}

function scriptCommand(name: string): string {
  return `storeScript_${name}`;
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid redis url>';
  }
}

/** XREAD reply: null, or [[streamKey, [[entryId, [field, value, ...]], ...]]]. */
function parseXread(reply: unknown): StoreEvent[] {
  if (reply === null || reply === undefined) return [];
  if (!Array.isArray(reply)) throw new Error('unexpected XREAD reply');
  const events: StoreEvent[] = [];
  for (const stream of reply as unknown[]) {
    const entries = Array.isArray(stream) ? (stream as unknown[])[1] : undefined;
    if (!Array.isArray(entries)) throw new Error('unexpected XREAD reply');
    for (const entry of entries as unknown[]) {
      if (!Array.isArray(entry)) throw new Error('unexpected XREAD reply');
      const [entryId, fields] = entry as [unknown, unknown];
      if (typeof entryId !== 'string' || !Array.isArray(fields)) throw new Error('unexpected XREAD reply');
      let data = '';
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] === DATA_FIELD) data = String(fields[i + 1]);
      }
      events.push({ id: Number(entryId.slice(0, entryId.indexOf('-'))), data });
    }
  }
  return events;
}
