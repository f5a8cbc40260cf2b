import type { LocalKv, StoreScript } from '../../store/store.port.js';

/*
 * The only code that changes a token balance: atomic scripts, each in Lua (Redis) and in an
 * equivalent synchronous TypeScript body (the in-process store). Balances are whole tokens and never
 * go below zero; whatever could not be charged is returned as a shortfall for the ledger.
 *
 * A reservation key holds `R|<reserved>|<balance after reserving>` while the completion runs. Settling
 * (or releasing) replaces it by a tombstone `S|<attempt>|<reserved>|<delta>|<balance after>|<shortfall>|
 * <balance after reserving>` that lives a few minutes: the same attempt run again (a retry after a lost
 * reply) gets the recorded outcome back, any other attempt is a no-op. So nothing is ever refunded or
 * charged twice, and the caller learns the outcome exactly once per attempt for its ledger row.
 *
 * An instance that dies mid-completion never settles. So every open reservation is also listed, with
 * its amount and a lease deadline, in its user's open-reservations hash, and the owning instance
 * renews the lease while the completion runs. A lease that ran out is
 * reclaimed (refunded to the balance) by the next script that reads the list: the user's next
 * reservation, or a balance read. A settle that finds its entry reclaimed charges the usage alone.
 */

/** Reservations whose lease ran out, refunded by a script: `[completionId, amount, ...]`, oldest first. */
export type Reclaimed = (string | number)[];

/**
 * `[status, reserved, balance, balanceBeforeReserving, ...reclaimed]`: status 1 reserved, 0 balance
 * below 1 (nothing reserved), 2 this completion already has a reservation (nothing reserved).
 * Expired leases of the user are reclaimed first, whatever the status.
 */
export type ReserveReply = [
  status: 0 | 1 | 2,
  reserved: number,
  balance: number,
  balanceBeforeReserving: number,
  ...reclaimed: Reclaimed,
];

/** `[balance, ...reclaimed]`: the balance once the user's expired leases are refunded. */
export type ReclaimReply = [balance: number, ...reclaimed: Reclaimed];

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

/**
 * The open reservations of a user: a hash of `<completion id>` -> `<reserved>,<lease deadline>`, plus
 * `~next`, a time before which no lease can have run out. Reserving and settling touch one field;
 * only a script that runs after `~next` (or a balance read) looks at them all, so a user with many
 * completions under way does not make each one slower.
 */
const NEXT = '~next';

const LUA_OPEN = `
local NEXT = '${NEXT}'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function parse_open(value)
  local r, d = string.match(value, '^(%d+),(%d+)$')
  return tonumber(r), tonumber(d)
end
local function open_entry(key, id, reserved, deadline)
  redis.call('HSET', key, id, fmt(reserved) .. ',' .. fmt(deadline))
  local next_at = tonumber(redis.call('HGET', key, NEXT) or '')
  if next_at == nil or deadline < next_at then redis.call('HSET', key, NEXT, fmt(deadline)) end
end
local function close_entry(key, id)
  if redis.call('HDEL', key, id) == 0 then return false end
  if redis.call('HLEN', key) == 1 then redis.call('DEL', key) end
  return true
end
-- Refunds the leases that ran out (all of them are looked at only once ~next has passed, unless
-- forced); returns the balance after and the reclaimed ids and amounts.
local function reclaim(balance_key, open_key, now, force)
  local reclaimed, total = {}, 0
  local next_at = tonumber(redis.call('HGET', open_key, NEXT) or '')
  if next_at ~= nil and (force or next_at <= now) then
    local fields, earliest = redis.call('HGETALL', open_key), nil
    for i = 1, #fields, 2 do
      if fields[i] ~= NEXT then
        local r, d = parse_open(fields[i + 1])
        if d <= now then
          total = total + r
          reclaimed[#reclaimed + 1] = fields[i]
          reclaimed[#reclaimed + 1] = r
          redis.call('HDEL', open_key, fields[i])
        elseif earliest == nil or d < earliest then
          earliest = d
        end
      end
    end
    if earliest == nil then redis.call('DEL', open_key) else redis.call('HSET', open_key, NEXT, fmt(earliest)) end
  end
  if total > 0 then return redis.call('INCRBY', balance_key, fmt(total)), reclaimed end
  return int(redis.call('GET', balance_key) or '0'), reclaimed
end
local function with_reclaimed(reply, reclaimed)
  for _, v in ipairs(reclaimed) do reply[#reply + 1] = v end
  return reply
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

function parseOpen(value: string): { reserved: number; deadline: number } {
  const [reserved, deadline] = value.split(',').map(Number);
  return { reserved, deadline };
}

function openEntry(kv: LocalKv, key: string, id: string, reserved: number, deadline: number): void {
  kv.hset(key, id, `${reserved},${deadline}`);
  const next = kv.hget(key, NEXT);
  if (next === null || deadline < Number(next)) kv.hset(key, NEXT, String(deadline));
}

/** Takes the completion's entry out; false when it is not there (its lease was reclaimed). */
function closeEntry(kv: LocalKv, key: string, id: string): boolean {
  if (kv.hdel(key, id) === 0) return false;
  if (kv.hlen(key) === 1) kv.del(key);
  return true;
}

/** As the Lua `reclaim`. */
function reclaimLocal(
  kv: LocalKv,
  balanceKey: string,
  openKey: string,
  now: number,
  force: boolean,
): { balance: number; reclaimed: Reclaimed } {
  const reclaimed: Reclaimed = [];
  let total = 0;
  const next = kv.hget(openKey, NEXT);
  if (next !== null && (force || Number(next) <= now)) {
    const fields = kv.hgetall(openKey);
    let earliest: number | null = null;
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === NEXT) continue;
      const { reserved, deadline } = parseOpen(fields[i + 1]);
      if (deadline <= now) {
        total += reserved;
        reclaimed.push(fields[i], reserved);
        kv.hdel(openKey, fields[i]);
      } else if (earliest === null || deadline < earliest) {
        earliest = deadline;
      }
    }
    if (earliest === null) kv.del(openKey);
    else kv.hset(openKey, NEXT, String(earliest));
  }
  const balance = total > 0 ? kv.incrBy(balanceKey, total) : balanceOf(kv, balanceKey);
  return { balance, reclaimed };
}

/**
 * KEYS: balance, reservation, open reservations. ARGV: amount to reserve (a positive integer),
 * reservation TTL (ms), lease (ms), completion id. Reclaims the user's expired leases, then: balance < 1,
 * nothing more happens; otherwise reserves min(amount, balance), debits it, records the reservation
 * with its TTL and lists it as open with its lease.
 */
export const reserveScript: StoreScript<ReserveReply> = {
  name: 'quota_reserve',
  numberOfKeys: 3,
  lua: `${LUA_HELPERS}${LUA_OPEN}
local now = now_ms()
local balance, reclaimed = reclaim(KEYS[1], KEYS[3], now, false)
if redis.call('EXISTS', KEYS[2]) == 1 then return with_reclaimed({2, 0, balance, balance}, reclaimed) end
if balance < 1 then return with_reclaimed({0, 0, balance, balance}, reclaimed) end
local reserved = int(ARGV[1])
if reserved > balance then reserved = balance end
local after = redis.call('DECRBY', KEYS[1], fmt(reserved))
redis.call('SET', KEYS[2], 'R|' .. fmt(reserved) .. '|' .. fmt(after), 'PX', ARGV[2])
open_entry(KEYS[3], ARGV[4], reserved, now + int(ARGV[3]))
return with_reclaimed({1, reserved, after, balance}, reclaimed)
`,
  local: (kv, [balanceKey, reservationKey, openKey], [amount, ttlMs, leaseMs, id]) => {
    const now = Date.now();
    const { balance, reclaimed } = reclaimLocal(kv, balanceKey, openKey, now, false);
    if (kv.get(reservationKey) !== null) return [2, 0, balance, balance, ...reclaimed];
    if (balance < 1) return [0, 0, balance, balance, ...reclaimed];
    const reserved = Math.min(int(amount), balance);
    const after = kv.incrBy(balanceKey, -reserved);
    kv.set(reservationKey, `R|${reserved}|${after}`, Number(ttlMs));
    openEntry(kv, openKey, id, reserved, now + int(leaseMs));
    return [1, reserved, after, balance, ...reclaimed];
  },
};

/**
 * KEYS: balance, reservation, open reservations. ARGV: actual tokens (>= 0), attempt id, tombstone
 * TTL (ms), completion id. Refunds `reserved - actual` when positive, or charges the extra but never
 * below zero (the rest is the shortfall). Release is settling with 0 actual tokens. A reservation
 * whose lease was reclaimed meanwhile counts as 0 reserved: its refund happened then.
 */
export const settleScript: StoreScript<SettleReply> = {
  name: 'quota_settle',
  numberOfKeys: 3,
  lua: `${LUA_HELPERS}${LUA_OPEN}
local value = redis.call('GET', KEYS[2])
if not value then return {0} end
if string.sub(value, 1, 2) == 'S|' then
  local attempt, r, d, a, sf, ra = string.match(value, '^S|([^|]*)|(%d+)|(%-?%d+)|(%d+)|(%d+)|(%d+)$')
  if attempt == ARGV[2] then return {1, int(r), int(d), int(a), int(sf), int(ra)} end
  return {2}
end
local r, ra = string.match(value, '^R|(%d+)|(%d+)$')
if not r then return redis.error_reply('ERR malformed reservation') end
local listed = close_entry(KEYS[3], ARGV[4])
local reserved = 0
if listed then reserved = int(r) end
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
  local: (kv, [balanceKey, reservationKey, openKey], [actual, attempt, ttlMs, id]) => {
    const value = kv.get(reservationKey);
    if (value === null) return [0];
    if (value.startsWith('S|')) {
      const m = /^S\|([^|]*)\|(\d+)\|(-?\d+)\|(\d+)\|(\d+)\|(\d+)$/.exec(value);
      if (m && m[1] === attempt) return [1, int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6])];
      return [2];
    }
    const m = /^R\|(\d+)\|(\d+)$/.exec(value);
    if (!m) throw new Error('ERR malformed reservation');
    const reserved = closeEntry(kv, openKey, id) ? int(m[1]) : 0;
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
 * KEYS: balance, reservation, open reservations. ARGV: extra tokens (a positive integer), reservation
 * TTL (ms, used only if the key somehow has none), completion id. Raises an open reservation by
 * min(extra, balance), keeping its TTL: the completion's estimate grew after it reserved (its
 * conversation's history made the prompt longer). Nothing when its lease was reclaimed.
 */
export const extendScript: StoreScript<ExtendReply> = {
  name: 'quota_extend',
  numberOfKeys: 3,
  lua: `${LUA_HELPERS}${LUA_OPEN}
local value = redis.call('GET', KEYS[2])
if not value then return {0, 0, 0, 0} end
local r = string.match(value, '^R|(%d+)|%d+$')
if not r then return {0, 0, 0, 0} end
local entry = redis.call('HGET', KEYS[3], ARGV[3])
if not entry then return {0, 0, 0, 0} end
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
local listed, deadline = parse_open(entry)
redis.call('HSET', KEYS[3], ARGV[3], fmt(listed + add) .. ',' .. fmt(deadline))
return {1, add, reserved, after}
`,
  local: (kv, [balanceKey, reservationKey, openKey], [extra, ttlMs, id]) => {
    const value = kv.get(reservationKey);
    const m = value === null ? null : /^R\|(\d+)\|\d+$/.exec(value);
    const entry = kv.hget(openKey, id);
    if (!m || entry === null) return [0, 0, 0, 0];
    const balance = balanceOf(kv, balanceKey);
    const add = Math.max(0, Math.min(int(extra), balance));
    const after = add > 0 ? kv.incrBy(balanceKey, -add) : balance;
    const reserved = int(m[1]) + add;
    const ttl = kv.pttl(reservationKey);
    kv.set(reservationKey, `R|${reserved}|${after}`, ttl > 0 ? ttl : Number(ttlMs));
    const listed = parseOpen(entry);
    kv.hset(openKey, id, `${listed.reserved + add},${listed.deadline}`);
    return [1, add, reserved, after];
  },
};

/**
 * KEYS: open reservations. ARGV: lease (ms), then completion ids. Moves the lease deadline of those
 * still listed to now + lease (their completions are still running on the caller's instance). Returns
 * how many were renewed.
 */
export const renewScript: StoreScript<number> = {
  name: 'quota_renew',
  numberOfKeys: 1,
  lua: `${LUA_HELPERS}${LUA_OPEN}
local deadline = now_ms() + int(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  local entry = redis.call('HGET', KEYS[1], ARGV[i])
  if entry then
    local reserved = parse_open(entry)
    redis.call('HSET', KEYS[1], ARGV[i], fmt(reserved) .. ',' .. fmt(deadline))
    renewed = renewed + 1
  end
end
return renewed
`,
  local: (kv, [openKey], [leaseMs, ...ids]) => {
    const deadline = Date.now() + int(leaseMs);
    let renewed = 0;
    for (const id of ids) {
      const entry = kv.hget(openKey, id);
      if (entry === null) continue;
      kv.hset(openKey, id, `${parseOpen(entry).reserved},${deadline}`);
      renewed++;
    }
    return renewed;
  },
};

/** KEYS: balance, open reservations. Refunds the user's expired leases; answers the balance after. */
export const reclaimScript: StoreScript<ReclaimReply> = {
  name: 'quota_reclaim',
  numberOfKeys: 2,
  lua: `${LUA_HELPERS}${LUA_OPEN}
local balance, reclaimed = reclaim(KEYS[1], KEYS[2], now_ms(), true)
return with_reclaimed({balance}, reclaimed)
`,
  local: (kv, [balanceKey, openKey]) => {
    const { balance, reclaimed } = reclaimLocal(kv, balanceKey, openKey, Date.now(), true);
    return [balance, ...reclaimed];
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
  renewScript,
  reclaimScript,
  adjustScript,
];
