import type { LocalKv, StoreScript } from '../../store/store.port.js';

/*
 * The only code that changes a token balance: four atomic scripts, each in Lua (Redis) and in an
 * equivalent synchronous TypeScript body (the in-process store). Balances are whole tokens and never
 * go below zero; whatever could not be charged is returned as a shortfall for the ledger.
 *
 * A reservation key holds `R|<reserved>|<balance after reserving>` while the completion runs. Settling
 * (or releasing) replaces it by a tombstone `S|<attempt>|<reserved>|<delta>|<balance after>|<shortfall>|
 * <balance after reserving>` that lives a few minutes: the same attempt run again (a retry after a lost
 * reply) gets the recorded outcome back, any other attempt is a no-op. So nothing is ever refunded or
 * charged twice, and the caller learns the outcome exactly once per attempt for its ledger row.
 */

/** `[status, reserved, balance]`: status 1 reserved, 0 balance below 1 (nothing done), 2 this completion already has a reservation (nothing done). */
export type ReserveReply = [status: 0 | 1 | 2, reserved: number, balance: number];

/**
 * `[0]` no reservation (never made, or expired), `[2]` already settled by another attempt, or
 * `[1, reserved, delta, balanceAfter, shortfall, balanceAfterReserve]` when this attempt settled it
 * (`delta` > 0 refunded, < 0 charged on top of the reservation).
 */
export type SettleReply =
  | [status: 0]
  | [status: 2]
  | [
      status: 1,
      reserved: number,
      delta: number,
      balanceAfter: number,
      shortfall: number,
      balanceAfterReserve: number,
    ];

/**
 * `[status, added, reserved, balance]`: status 1 the open reservation now holds `reserved` (`added` more,
 * possibly 0 when the balance is empty), 0 no open reservation (none, expired or settled: nothing done).
 */
export type ExtendReply = [status: 0 | 1, added: number, reserved: number, balance: number];

/** `[applied, balanceAfter, shortfall]`: the delta actually applied (clamped so the balance stays >= 0). */
export type AdjustReply = [applied: number, balanceAfter: number, shortfall: number];

const LUA_HELPERS = `
local function fmt(n) return string.format('%d', n) end
local function int(v)
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) then error('not an integer') end
  return n
end
`;

function int(value: string | null): number {
  const n = Number(value ?? '0');
  if (!Number.isSafeInteger(n)) throw new Error('ERR not an integer');
  return n;
}

function balanceOf(kv: LocalKv, key: string): number {
  return int(kv.get(key));
}

/**
 * KEYS: balance, reservation. ARGV: amount to reserve (a positive integer), reservation TTL (ms).
 * Balance < 1: nothing happens. Otherwise reserves min(amount, balance), debits it and records the
 * reservation with its TTL.
 */
export const reserveScript: StoreScript<ReserveReply> = {
  name: 'quota_reserve',
  numberOfKeys: 2,
  lua: `${LUA_HELPERS}
local balance = int(redis.call('GET', KEYS[1]) or '0')
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, 0, balance} end
if balance < 1 then return {0, 0, balance} end
local reserved = int(ARGV[1])
if reserved > balance then reserved = balance end
local after = redis.call('DECRBY', KEYS[1], fmt(reserved))
redis.call('SET', KEYS[2], 'R|' .. fmt(reserved) .. '|' .. fmt(after), 'PX', ARGV[2])
return {1, reserved, after}
`,
  local: (kv, [balanceKey, reservationKey], [amount, ttlMs]) => {
    const balance = balanceOf(kv, balanceKey);
    if (kv.get(reservationKey) !== null) return [2, 0, balance];
    if (balance < 1) return [0, 0, balance];
    const reserved = Math.min(int(amount), balance);
    const after = kv.incrBy(balanceKey, -reserved);
    kv.set(reservationKey, `R|${reserved}|${after}`, Number(ttlMs));
    return [1, reserved, after];
  },
};

/**
 * KEYS: balance, reservation. ARGV: actual tokens (>= 0), attempt id, tombstone TTL (ms).
 * Refunds `reserved - actual` when positive, or charges the extra but never below zero (the rest is
 * the shortfall). Release is settling with 0 actual tokens.
 */
export const settleScript: StoreScript<SettleReply> = {
  name: 'quota_settle',
  numberOfKeys: 2,
  lua: `${LUA_HELPERS}
local value = redis.call('GET', KEYS[2])
if not value then return {0} end
if string.sub(value, 1, 2) == 'S|' then
  local attempt, r, d, a, sf, ra = string.match(value, '^S|([^|]*)|(%d+)|(%-?%d+)|(%d+)|(%d+)|(%d+)$')
  if attempt == ARGV[2] then return {1, int(r), int(d), int(a), int(sf), int(ra)} end
  return {2}
end
local r, ra = string.match(value, '^R|(%d+)|(%d+)$')
if not r then return redis.error_reply('ERR malformed reservation') end
local reserved = int(r)
local balance = int(redis.call('GET', KEYS[1]) or '0')
local delta = reserved - int(ARGV[1])
local shortfall = 0
if balance + delta < 0 then
  shortfall = -(balance + delta)
  delta = -balance
end
local after = balance
if delta ~= 0 then after = redis.call('INCRBY', KEYS[1], fmt(delta)) end
redis.call('SET', KEYS[2], 'S|' .. ARGV[2] .. '|' .. fmt(reserved) .. '|' .. fmt(delta) .. '|' .. fmt(after) .. '|' .. fmt(shortfall) .. '|' .. ra, 'PX', ARGV[3])
return {1, reserved, delta, after, shortfall, int(ra)}
`,
  local: (kv, [balanceKey, reservationKey], [actual, attempt, ttlMs]) => {
    const value = kv.get(reservationKey);
    if (value === null) return [0];
    if (value.startsWith('S|')) {
      const m = /^S\|([^|]*)\|(\d+)\|(-?\d+)\|(\d+)\|(\d+)\|(\d+)$/.exec(value);
      if (m && m[1] === attempt) return [1, int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6])];
      return [2];
    }
    const m = /^R\|(\d+)\|(\d+)$/.exec(value);
    if (!m) throw new Error('ERR malformed reservation');
    const reserved = int(m[1]);
    const balance = balanceOf(kv, balanceKey);
    let delta = reserved - int(actual);
    let shortfall = 0;
    if (balance + delta < 0) {
      shortfall = -(balance + delta);
      delta = 0 - balance; // not -balance: no -0
    }
    const after = delta !== 0 ? kv.incrBy(balanceKey, delta) : balance;
    kv.set(reservationKey, `S|${attempt}|${reserved}|${delta}|${after}|${shortfall}|${m[2]}`, Number(ttlMs));
    return [1, reserved, delta, after, shortfall, int(m[2])];
  },
};

/**
 * KEYS: balance, reservation. ARGV: extra tokens (a positive integer), reservation TTL (ms, used only if
 * the key somehow has none). Raises an open reservation by min(extra, balance), keeping its TTL: the
 * completion's estimate grew after it reserved (its conversation's history made the prompt longer).
 */
export const extendScript: StoreScript<ExtendReply> = {
  name: 'quota_extend',
  numberOfKeys: 2,
  lua: `${LUA_HELPERS}
local value = redis.call('GET', KEYS[2])
if not value then return {0, 0, 0, 0} end
local r = string.match(value, '^R|(%d+)|%d+$')
if not r then return {0, 0, 0, 0} end
local balance = int(redis.call('GET', KEYS[1]) or '0')
local add = int(ARGV[1])
if add > balance then add = balance end
if add < 0 then add = 0 end
local after = balance
if add > 0 then after = redis.call('DECRBY', KEYS[1], fmt(add)) end
local reserved = int(r) + add
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 1 then ttl = int(ARGV[2]) end
redis.call('SET', KEYS[2], 'R|' .. fmt(reserved) .. '|' .. fmt(after), 'PX', ttl)
return {1, add, reserved, after}
`,
  local: (kv, [balanceKey, reservationKey], [extra, ttlMs]) => {
    const value = kv.get(reservationKey);
    const m = value === null ? null : /^R\|(\d+)\|\d+$/.exec(value);
    if (!m) return [0, 0, 0, 0];
    const balance = balanceOf(kv, balanceKey);
    const add = Math.max(0, Math.min(int(extra), balance));
    const after = add > 0 ? kv.incrBy(balanceKey, -add) : balance;
    const reserved = int(m[1]) + add;
    const ttl = kv.pttl(reservationKey);
    kv.set(reservationKey, `R|${reserved}|${after}`, ttl > 0 ? ttl : Number(ttlMs));
    return [1, add, reserved, after];
  },
};

/** KEYS: balance. ARGV: delta (an integer). Adds it, clamping at zero; returns what was applied. */
export const adjustScript: StoreScript<AdjustReply> = {
  name: 'quota_adjust',
  numberOfKeys: 1,
  lua: `${LUA_HELPERS}
local balance = int(redis.call('GET', KEYS[1]) or '0')
local delta = int(ARGV[1])
local shortfall = 0
if balance + delta < 0 then
  shortfall = -(balance + delta)
  delta = -balance
end
local after = redis.call('INCRBY', KEYS[1], fmt(delta))
return {delta, after, shortfall}
`,
  local: (kv, [balanceKey], [rawDelta]) => {
    const balance = balanceOf(kv, balanceKey);
    let delta = int(rawDelta);
    let shortfall = 0;
    if (balance + delta < 0) {
      shortfall = -(balance + delta);
      delta = 0 - balance; // not -balance: no -0
    }
    return [delta, kv.incrBy(balanceKey, delta), shortfall];
  },
};

export const BALANCE_SCRIPTS: readonly StoreScript<unknown>[] = [
  reserveScript,
  extendScript,
  settleScript,
  adjustScript,
];
