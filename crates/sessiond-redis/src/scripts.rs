//! The Lua scripts, each run with `EVALSHA`, and with `EVAL` and its body when the node
//! does not know it (`NOSCRIPT`: on first use, after a restart, a failover or a `SCRIPT
//! FLUSH`); the node then keeps it for the next `EVALSHA`. Every key a script touches is
//! passed in `KEYS`, and all of them carry the same hash tag (`{<user_id>}`, or
//! `{sessiond}` for the heartbeats), so each script runs on one slot: legal on a Redis
//! Cluster, and routed there by its first key.
//!
//! The codec's constants (layout version, tombstone byte, field offsets) are written into
//! the script text, so a script and the values it reads cannot disagree. Every decision is
//! taken inside one script, so no other command runs between a check and the write it
//! guards. Numbers go back to Redis as strings formatted here (`%d`): Redis would format a
//! Lua number as a float.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind, ToRedisArgs};
use time::OffsetDateTime;

use crate::codec::{self, GENERATION_OFFSET, PREVIOUS_VERSION, TOMBSTONE, VERSION};

/// An instant as the scripts take it (`PXAT`, index scores): unix milliseconds, rounded
/// down, so that an entry's `PXAT` never outlasts its `expires_at`.
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    codec::micros(at).div_euclid(1_000)
}

/// Unix milliseconds, rounded up: a tombstone lasts at least until its `until`.
pub(crate) fn unix_ms_ceil(at: OffsetDateTime) -> i64 {
    codec::micros(at).saturating_add(999).div_euclid(1_000)
}

/// A Lua script: its body and its SHA1.
pub(crate) struct LuaScript {
    body: String,
    sha1: String,
}

impl LuaScript {
    fn new(body: &str) -> LuaScript {
        LuaScript {
            body: body.to_owned(),
            sha1: Script::new(body).get_hash().to_owned(),
        }
    }

    /// A call of this script, to be given its keys and arguments.
    pub(crate) fn call(&'static self) -> ScriptCall {
        ScriptCall {
            script: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// One call of a script: its keys (`KEYS`) and arguments (`ARGV`).
///
/// Why not the redis crate's `ScriptInvocation`: it answers `NOSCRIPT` with `SCRIPT LOAD`,
/// which on a cluster goes to every node and needs each to answer. Right after a failover
/// (a new primary with an empty script cache, the dead node still listed) that fails, and
/// so would every write of the slots that moved. `EVAL` with the body goes where the keys
/// are, like the `EVALSHA` it replaces.
pub(crate) struct ScriptCall {
    script: &'static LuaScript,
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
}

impl ScriptCall {
    /// Adds a key; the first one routes the call on a cluster.
    pub(crate) fn key(&mut self, key: String) -> &mut ScriptCall {
        self.keys.push(key);
        self
    }

    /// Adds an argument.
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut ScriptCall {
        arg.write_redis_args(&mut self.args);
        self
    }

    /// Runs the script by its SHA1, or by its body if the node does not know it.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        match self
            .command("EVALSHA", &self.script.sha1)
            .query_async(conn)
            .await
        {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.command("EVAL", &self.script.body)
                    .query_async(conn)
                    .await
            }
            answered => answered,
        }
    }

    fn command(&self, name: &str, script: &str) -> Cmd {
        let mut command = redis::cmd(name);
        command.arg(script).arg(self.keys.len());
        for key in &self.keys {
            command.arg(key);
        }
        for arg in &self.args {
            command.arg(arg.as_slice());
        }
        command
    }
}

/// Stores a session and indexes it, in one round trip, unless that would go backwards:
/// nothing is written when the key holds a tombstone, holds a greater generation of the
/// session, or when the session's expiry has passed (on the caller's clock or Redis's).
/// A value of the previous layout is compared by its generation too (it sits at the same
/// offset); a value of any other layout is overwritten. Returns 1 when written,
/// 0 when not.
///
/// `KEYS[1]` the session key, `KEYS[2]` the user's index; `ARGV[1]` the value, `ARGV[2]`
/// `expires_at` (unix ms: the key's `PXAT` and the member's score), `ARGV[3]` the index
/// member (session id), `ARGV[4]` the caller's now (unix ms). Members that expired by now
/// are dropped on the way, and the index expires with its latest member.
///
/// The expiry check guards more than the caller's own check: `SET` with a `PXAT` already
/// past on Redis's clock would delete the key, and a put never deletes.
pub(crate) static PUT: LazyLock<LuaScript> = LazyLock::new(|| {
    // Generations are u64: compared as two exact 32-bit halves, since a Lua number is a
    // double (and string comparison follows the server's locale).
    let generation_at = GENERATION_OFFSET + 1;
    LuaScript::new(&format!(
        r"
local expires_at = tonumber(ARGV[2])
local clock = redis.call('TIME')
local server_now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if expires_at <= tonumber(ARGV[4]) or expires_at <= server_now then return 0 end
local cached = redis.call('GET', KEYS[1])
if cached then
  local layout = string.byte(cached, 1)
  if layout == {TOMBSTONE} then return 0 end
  if (layout == {VERSION} or layout == {PREVIOUS_VERSION}) and string.len(cached) >= {generation_at} + 7 then
    local old_hi, old_lo = struct.unpack('>I4I4', cached, {generation_at})
    local new_hi, new_lo = struct.unpack('>I4I4', ARGV[1], {generation_at})
    if old_hi > new_hi or (old_hi == new_hi and old_lo > new_lo) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[2], string.format('%d', tonumber(last[2])))
end
return 1
",
    ))
});

/// Marks sessions ended: each key becomes a tombstone that expires at `until`, and each
/// member leaves the index, in one round trip. A tombstone already there that lasts
/// longer is kept (a tombstone is never shortened). An `until` already past on Redis's
/// clock deletes the key (`SET` with a past `PXAT`): the cached copy goes either way.
///
/// `KEYS[1]` the index, `KEYS[i]` (i ≥ 2) the session key of member `ARGV[i]`; `ARGV[1]`
/// `until` (unix ms).
pub(crate) static TOMBSTONE_SESSIONS: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(&format!(
        r"
local until_ms = tonumber(ARGV[1])
local marker = string.char({TOMBSTONE})
for i = 2, #KEYS do
  local keep = false
  local cached = redis.call('GET', KEYS[i])
  if cached and string.byte(cached, 1) == {TOMBSTONE} then
    local at = redis.call('PEXPIRETIME', KEYS[i])
    keep = at == -1 or at >= until_ms
  end
  if not keep then
    redis.call('SET', KEYS[i], marker, 'PXAT', ARGV[1])
  end
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return 1
",
    ))
});

/// Drops index members whose session key is gone, holds a tombstone, or whose score
/// (expiry) has passed. Returns how many it dropped.
///
/// `KEYS[1]` the index, `KEYS[i]` (i ≥ 2) the session key of member `ARGV[i]`; `ARGV[1]` now
/// (unix ms). Checking inside the script means a session stored again between the caller's
/// read of the index and this script keeps its member.
pub(crate) static PRUNE: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(&format!(
        r"
local now = tonumber(ARGV[1])
local removed = 0
for i = 2, #KEYS do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score then
    local value = tonumber(score) > now and redis.call('GET', KEYS[i])
    if not value or string.byte(value, 1) == {TOMBSTONE} then
      removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
    end
  end
end
return removed
",
    ))
});

/// Publishes one instance's heartbeat and returns every one still kept, in one round trip;
/// older ones are dropped on the way. Ages are judged on Redis's clock (`TIME`), so the
/// instances' clocks never need to agree.
///
/// `KEYS[1]` the heartbeats hash; `ARGV[1]` the instance, `ARGV[2]` its position, `ARGV[3]`
/// the newest entry it read (`-1` for none), followed by ` left` in a final heartbeat,
/// `ARGV[4]` how long a heartbeat is kept (ms). Returns `[instance, "position newest
/// [left] at_ms", …]`. The hash expires once no instance has beaten for twice that long.
pub(crate) static HEARTBEAT: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local keep_for = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. string.format('%d', now))
local all = redis.call('HGETALL', KEYS[1])
local kept = {}
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '(%d+)$'))
  if at and at >= now - keep_for then
    kept[#kept + 1] = all[i]
    kept[#kept + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('PEXPIRE', KEYS[1], string.format('%d', keep_for * 2))
return kept
",
    )
});
