import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutageLog } from '../store/outage-log.js';
import { STORE, type Store, type StoreScript } from '../store/store.port.js';

/** How long a mark outlives the last write that began under it: an instance that died leaves it behind. */
const MARK_TTL_MS = 15_000;
/** The longest a turn waits for another instance's write before it reads the history anyway. */
const MAX_WAIT_MS = MARK_TTL_MS;
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;

/** KEYS: the mark. ARGV: its TTL (ms). One more write under way; the TTL restarts. */
const beginScript: StoreScript<number> = {
  name: 'conversation_write_begin',
  numberOfKeys: 1,
  lua: `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n`,
  local: (kv, [key], [ttlMs]) => {
    const n = kv.incrBy(key, 1);
    kv.pexpire(key, Number(ttlMs));
    return n;
  },
};

/** KEYS: the mark. One write fewer; the mark goes with the last one. */
const endScript: StoreScript<number> = {
  name: 'conversation_write_end',
  numberOfKeys: 1,
  lua: `
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n`,
  local: (kv, [key]) => {
    const n = kv.incrBy(key, -1);
    if (n <= 0) kv.del(key);
    return n;
  },
};

/**
 * The conversation writes under way on any instance, counted per conversation in the shared store.
 * The next turn of a conversation must read a history that holds the answer the client already has;
 * behind a load balancer that turn may reach another instance than the one still writing it.
 *
 * A write is marked when it begins: a new conversation's when the request starts, a finished turn's
 * before its answer's last bytes are written. The next turn reaches the store only after the client
 * has that answer and another instance has authenticated it, so the mark is there before it looks.
 * Store failures never fail a turn: without the store, a turn waits for this instance's writes only.
 */
@Injectable()
export class TurnWriteMarks {
  private readonly logger = new Logger('Conversations');
  private readonly outage = new OutageLog(
    this.logger,
    'Conversation write marks',
    "a turn waits for this instance's writes only",
  );

  constructor(@Inject(STORE) private readonly store: Store) {
    store.defineScript(beginScript);
    store.defineScript(endScript);
  }

  /** Marks a write to the conversation as under way; answers the function that ends the mark. */
  begin(conversationId: string): () => void {
    const key = markKey(conversationId);
    const begun = this.reached(this.store.runScript(beginScript.name, [key], [MARK_TTL_MS]));
    // After its own begin: a mark ended before it began would count one write too many. One that
    // cannot be ended expires.
    return () => {
      void begun.then(
        (count) => count !== undefined && this.reached(this.store.runScript(endScript.name, [key], [])),
      );
    };
  }

  /** Resolves once no instance marks a write to the conversation (or after MAX_WAIT_MS). */
  async settled(conversationId: string): Promise<void> {
    const key = markKey(conversationId);
    const deadline = Date.now() + MAX_WAIT_MS;
    for (let pause = FIRST_POLL_MS; ; pause = Math.min(pause * 2, MAX_POLL_MS)) {
      // Unreadable counts as none: a turn never fails for the store.
      const count = await this.reached(this.store.get(key));
      if (!count || Number(count) <= 0) return;
      if (Date.now() >= deadline) {
        this.logger.warn(`Conversation ${conversationId}: another instance's write did not end in time`);
        return;
      }
      await sleep(pause);
    }
  }

  /** The store call's answer; undefined when it failed, which is logged once per outage, never thrown. */
  private reached<T>(call: Promise<T>): Promise<T | undefined> {
    return call.then(
      (value) => {
        this.outage.succeeded();
        return value;
      },
      (err: unknown) => {
        this.outage.failed(err);
        return undefined;
      },
    );
  }
}

function markKey(conversationId: string): string {
  return `conversation-writes:${conversationId}`;
}
