//! The Lua scripts that make each store operation one atomic round trip.
//! Keys and arguments are named in each script's comment.

pub(crate) const ACQUIRE: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

/// Takes or renews each lease in KEYS for ARGV[1] (TTL ARGV[2] ms), in
/// order, until ARGV[3] have succeeded: one round trip for a whole share.
pub(crate) const ACQUIRE_MANY: &str = r"
local got, out = 0, {}
local limit = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  if got >= limit then break end
  local holder = redis.call('GET', key)
  if not holder then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    got = got + 1
    out[i] = 1
  elseif holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    got = got + 1
    out[i] = 1
  else
    out[i] = 0
  end
end
return out";

pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Deletes each lease in KEYS that ARGV[1] holds.
pub(crate) const RELEASE_MANY: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
  end
end
return 0";

/// GCRA on the server's clock: KEYS[1] holds the bucket's theoretical
/// arrival time in µs; ARGV[1] = interval µs, ARGV[2] = tolerance µs.
/// Returns 0 when the request may go (and books it), else the µs to wait.
pub(crate) const TAKE_REQUEST: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed = tat - tonumber(ARGV[2])
if now < allowed then return allowed - now end
local next = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1000)
return 0";

/// Pushes the bucket KEYS[1] to at least now + ARGV[1] µs.
pub(crate) const HOLD_REQUESTS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local until_ = now + tonumber(ARGV[1])
if tat < until_ then tat = until_ end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return 0";

/// Concurrency slots on the server's clock: KEYS[1] is a sorted set of
/// holders scored by the ms their slot lapses; ARGV[1] = token, ARGV[2] =
/// limit, ARGV[3] = TTL ms. Lapsed holders are dropped first; returns 1 when
/// ARGV[1] holds a slot after the call.
pub(crate) const TAKE_SLOT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(last[2])) + 1000)
return 1";

/// Saves ARGV[2] in KEYS[2] only while ARGV[1] holds the role KEYS[1].
pub(crate) const SAVE_CHECKPOINT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0";

pub(crate) const UPDATE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0";

pub(crate) const APPEND_FINAL: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[1])
end
return false";
