//! The Lua scripts, each run with EVALSHA (loaded on first use and again after a NOSCRIPT,
//! e.g. when Redis restarted). Every key a script touches is passed in `KEYS`, and all of
//! them carry the same `{<user_id>}` hash tag, so the scripts stay legal on a Redis Cluster.

use std::sync::LazyLock;

use deadpool_redis::redis::Script;

/// Stores a session and indexes it, in one round trip.
///
/// `KEYS[1]` the session key, `KEYS[2]` the user's index; `ARGV[1]` the value, `ARGV[2]` the
/// TTL in ms, `ARGV[3]` the index member (session id), `ARGV[4]` its score (`expires_at`,
/// unix ms), `ARGV[5]` now (unix ms). Members that expired by now are dropped on the way,
/// and the index lives as long as its latest member.
pub(crate) static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then
  local ttl = math.floor(tonumber(last[2]) - tonumber(ARGV[5]))
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], string.format('%d', ttl))
  end
end
return 1
",
    )
});

/// Moves the cached `last_activity` forward, keeping the key's TTL; a missing key (or a
/// value of another version) is left alone.
///
/// `KEYS[1]` the session key; `ARGV[1]` the new `last_activity` as 8 bytes (big-endian i64
/// unix micros), `ARGV[2]` the value version this layout belongs to, `ARGV[3]` the field's
/// 0-based byte offset in that layout (see `codec`).
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local at = tonumber(ARGV[3]) + 1
if string.byte(value, 1) ~= tonumber(ARGV[2]) or string.len(value) < at + 7 then return 0 end
local current = struct.unpack('>i8', value, at)
local new = struct.unpack('>i8', ARGV[1])
if new <= current then return 0 end
redis.call('SET', KEYS[1], string.sub(value, 1, at - 1) .. ARGV[1] .. string.sub(value, at + 8), 'KEEPTTL')
return 1
",
    )
});

/// Drops index members whose session key is gone or whose score (expiry) has passed.
///
/// `KEYS[1]` the index, `KEYS[i]` (i ≥ 2) the session key of member `ARGV[i]`; `ARGV[1]` now
/// (unix ms). Checking inside the script means a session stored again between the caller's
/// read of the index and this script keeps its member.
pub(crate) static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local removed = 0
for i = 2, #KEYS do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and (tonumber(score) <= now or redis.call('EXISTS', KEYS[i]) == 0) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
",
    )
});
