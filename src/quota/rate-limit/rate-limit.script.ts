import type { LocalKv, StoreScript } from '../../store/store.port.js';

/** `[hits, msToReset]`, or with the balance peek `[hits, msToReset, balance]`. */
export type RateLimitReply = [hits: number, resetMs: number];
export type RateLimitPeekReply = [hits: number, resetMs: number, balance: number];

/*
 * A fixed window counter, exact across every instance sharing the store: INCR, and PEXPIRE when the
 * window starts (the first hit) or the key somehow has no TTL, in one atomic script. Every hit counts,
 * also the refused ones; the window ends `resetMs` after its first hit, whatever happens in between.
 */
const HIT_LUA = `
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if hits == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end`;

function localHit(kv: LocalKv, key: string, windowMs: string): RateLimitReply {
  const hits = kv.incrBy(key, 1);
  let ttl = kv.pttl(key);
  if (hits === 1 || ttl < 0) {
    kv.pexpire(key, Number(windowMs));
    ttl = Number(windowMs);
  }
  return [hits, ttl];
}

/** KEYS: counter. ARGV: window (ms). */
export const rateLimitScript: StoreScript<RateLimitReply> = {
  name: 'quota_rate_limit',
  numberOfKeys: 1,
  lua: `${HIT_LUA}
return {hits, ttl}
`,
  local: (kv, [key], [windowMs]) => localHit(kv, key, windowMs),
};

/**
 * The same hit, plus a read of a token balance in the same round trip (KEYS: counter, balance), so
 * that the balance pre-check after the rate limit costs no second trip to the store.
 */
export const rateLimitPeekScript: StoreScript<RateLimitPeekReply> = {
  name: 'quota_rate_limit_peek',
  numberOfKeys: 2,
  lua: `${HIT_LUA}
return {hits, ttl, tonumber(redis.call('GET', KEYS[2]) or '0') or 0}
`,
  local: (kv, [key, balanceKey], [windowMs]) => {
    const [hits, ttl] = localHit(kv, key, windowMs);
    const balance = Number(kv.get(balanceKey) ?? '0');
    return [hits, ttl, Number.isFinite(balance) ? Math.trunc(balance) : 0];
  },
};
