//! The Redis adapter of sessiond's [`SessionCache`] port: a fast, forgetful copy of live
//! sessions in front of PostgreSQL (SPEC §3), built on `deadpool-redis`.
//!
//! It is a cache and nothing more: PostgreSQL decides (the domain's `CachedSessionRepository`
//! reads it on every miss or cache error), so losing any entry (flush, restart, eviction)
//! logs nobody out. It holds no token material.
//!
//! # Key layout
//!
//! - `<prefix>session:{<user_id>}:<session_id>`: one string per session, either
//!   - a live session: a compact binary encoding of its `SessionSummary` (about 90 bytes;
//!     see [`codec`]) that starts with the layout version (`4`) and the
//!     session's generation (`SessionSummary::version`, bumped by PostgreSQL on every change
//!     of state), and expires at the session's `expires_at` (`SET ... PXAT`, an absolute
//!     unix-ms instant); or
//!   - a tombstone: the single byte `0` (no layout version is `0`), written by
//!     [`SessionCache::tombstone`] when a session ends and expiring at the `until` it was
//!     given (the revocation window: as long as a token of the session could still be
//!     presented). `get` reads a tombstone as a miss.
//! - `<prefix>sessions:{<user_id>}`: the user's index, a sorted set of session ids scored by
//!   `expires_at` (unix ms), written in the same script as the key; it expires with its
//!   latest member. A tombstone drops its member. Members that expired are dropped whenever
//!   the user's next session is stored, and by [`SessionCache::prune_index`], which also
//!   drops members whose key is gone or a tombstone; the domain's cleanup pass
//!   (`CleanupService`) calls it for each user who had a session expire.
//!
//! The braces are a Redis Cluster hash tag: one user's keys share a slot, so every script
//! (which declares all its keys) stays legal on a cluster. The prefix is empty in production
//! unless set (`redis.key_prefix`). No command ever scans the keyspace (no `SCAN`, no
//! `KEYS`).
//!
//! - `<prefix>heartbeats:{sessiond}`: one hash, a field per running instance holding how far
//!   it has read the revocation log (SPEC §8), written and read back by one script per beat
//!   ([`Heartbeats`]); fields older than the freshness window are dropped by the script.
//!
//! Requires Redis 7.0 or later (`SET ... PXAT`, `PEXPIRETIME`).
//!
//! A cached value's `last_activity` is the one it was stored with: activity is written
//! behind to PostgreSQL only (SPEC §8), and each instance keeps its own in its near cache.
//!
//! # Ordering: what a late write can and cannot do
//!
//! A command can land long after it was sent: a slow link, a retransmission, or a command
//! that timed out on our side (the caller got an error) but still sits in a socket buffer
//! and executes when the link recovers. So no write to a session key is unconditional:
//! each is one Lua script, and a script decides on what the key holds *when it runs*, not
//! when it was sent, with no other command in between.
//!
//! - **`put`** writes only if the key holds no tombstone and no greater generation of the
//!   session (an equal one is replaced: same state), and only if the session's `expires_at`
//!   is still ahead, on the caller's clock and on Redis's. The expiry is `PXAT expires_at`,
//!   not a relative TTL, so a copy can never outlive its session however late it lands
//!   (with a relative TTL, a write delayed by *d* would keep the copy *d* too long). A put
//!   never deletes: an ended or expired session is simply not written.
//! - **`tombstone`** overwrites whatever the key holds (a session of any generation) and
//!   only ever lengthens a tombstone already there. Late, it is still correct: it ends what
//!   has ended.
//!
//! Hence a late put cannot bring back a session ended before it lands (the tombstone is
//! there until `until`), and cannot roll a session back to an older generation (the
//! generation check). What a late put *can* do: fill a key that is empty (a miss, an
//! eviction, a restart) with the generation it carries, if that is still unexpired. After a
//! tombstone's `until` that is harmless: no access token issued before the revocation is
//! still valid, and no new one can be issued (refresh reads PostgreSQL). Before `until`
//! the key is only empty if Redis lost the tombstone (restart, failover, eviction): then
//! the copy may reappear in Redis, but every instance remembers the revocations it heard
//! from the PostgreSQL revocation log for the same window and refuses the session whatever
//! Redis returns (SPEC §8). Tombstones make the others refuse a session before they hear of
//! it; correctness does not rest on them.
//!
//! Expiry is judged on two clocks: `PXAT` on Redis's, liveness on the instance's. A skew
//! between them only changes how long a copy stays cached, never whether an expired session
//! validates (validation checks `expires_at` itself).
//!
//! # Hot path
//!
//! On one server, `get` is one `GET` on a multiplexed connection of the calling thread's own: deadpool-redis
//! opens it on the thread's first command, then it is taken out of the pool and kept for the
//! thread, because each `pool.get()` checkout costs an `UNWATCH` + `PING` recycle check
//! (three commands instead of one). One per thread rather than one for the process: an
//! actix worker then drives its connection on its own runtime, and a command and its reply
//! never wake another thread (make bench: validate / floor 0.70 → 0.77–0.88). A broken
//! connection is dropped and the next call on its thread opens a new one; one caller
//! connects while the others wait, and after a failed attempt calls fail at once for
//! 200 ms. Every command is bounded by `command_timeout`, so a hung Redis cannot hang
//! requests. `put` and `tombstone` are one `EVALSHA` each (an `EVAL` with the script's
//! body instead when the node answers `NOSCRIPT`: first use, restart, failover, `SCRIPT
//! FLUSH`).
//!
//! # On a Redis Cluster
//!
//! [`RedisSessionCache::connect_cluster`] takes seed nodes (`REDIS_CLUSTER_URLS`) instead of
//! one URL; the keys, values and scripts are the same. The process holds one cluster
//! connection (a multiplexed connection per node, cloned for each command: no pool, so no
//! `PING` per checkout), which routes each command and script by its first key, follows
//! `MOVED` and `ASK`, and reconnects and refreshes the slot map after a failover by itself.
//! Every script's keys share one hash tag, so each runs on one node; nothing here uses
//! `MULTI`. Connecting is bounded by the command timeout (connecting can hang, redis-rs
//! #1953), as is each node's answer; `TCP_NODELAY` is set. A `NOSCRIPT` is answered with
//! `EVAL` and the body, routed like the `EVALSHA`, never with a `SCRIPT LOAD` sent to every
//! node, which fails while a dead node is still listed.
//!
//! While a primary fails over, commands for its slots fail (and a command for another
//! node's may time out once while the client refreshes its slot map): callers read
//! PostgreSQL meanwhile. That is one outage, logged when it starts and when it ends: it
//! ends once no command has found a node unreachable for a second, not at the first answer
//! from a healthy node.
//!
//! A failover may lose writes the old primary acknowledged (Redis Cluster replicates
//! asynchronously): a put (harmless: a miss reads PostgreSQL) or a tombstone. A lost
//! tombstone is the case the revocation feed covers, as after a restart (see "Ordering").
//!
//! # When Redis is away
//!
//! - Start-up with Redis down succeeds (degraded mode); the cache connects on a later call.
//! - Every call fails fast with `StoreError::Unavailable`; the caller reads or writes
//!   PostgreSQL alone. The outage is logged once when it starts (warn) and once when it ends
//!   (info), and counted in [`CacheStats`].
//! - A `tombstone` that cannot reach Redis is an error returned to the caller, nothing
//!   more: nothing is queued or retried in this process. The session's end is committed in
//!   PostgreSQL with its entry in the revocation log, which every instance reads and
//!   remembers, so no instance serves the session, whether or not this one reaches Redis.
//!   The other instances also tombstone it when they hear of it.
//!
//! # Upgrading from the release with layout 2
//!
//! Layout 3 adds the User-Agent. Both releases have ordered writes, tombstones (one byte,
//! the same in every layout) and the revocation feed, so they may serve side by side during
//! a rolling deploy: each reads the other's values as unreadable (a miss: PostgreSQL
//! answers, the refill replaces the value with its own layout), and neither can overwrite a
//! tombstone. Nothing else to do.
//!
//! # Upgrading from the release with layout 1
//!
//! That release (value layout 1) writes sessions with a plain `SET ... PX`, which
//! overwrites tombstones, has no revocation feed, and cannot read layout 2 (nor this
//! release layout 1: both fall back to PostgreSQL). An old instance serving beside a new
//! one could therefore bring back a revoked session in Redis and serve it itself. **The
//! two releases must not serve side by side**; a rolling deploy that mixes them is not
//! supported. Either:
//!
//! 1. stop every instance of the old release and wait until they have exited (their Redis
//!    connections closed), then start the new release; no flush is needed: a leftover
//!    layout-1 value is unreadable here, so it falls back to PostgreSQL and is replaced by
//!    the refill or expires on its own; or
//! 2. start the new release under a new key prefix (`redis.key_prefix`, e.g. `v2:`) while
//!    the old one still runs but takes no traffic, move all traffic to the new instances at
//!    once, then stop the old ones. Old stragglers cannot touch the new keys; the old keys
//!    expire with their sessions (or delete them with `redis-cli --scan --pattern
//!    'session:*'` piped to `UNLINK`, from an operator's shell).
//!
//! [`SessionCache`]: sessiond_domain::ports::SessionCache
//! [`Heartbeats`]: sessiond_domain::ports::Heartbeats
//! [`SessionCache::tombstone`]: sessiond_domain::ports::SessionCache::tombstone
//! [`SessionCache::prune_index`]: sessiond_domain::ports::SessionCache::prune_index

// The port's commands (`get`, `put`, `tombstone`, `prune_index`) and the counters.
mod cache;
// What a Redis Cluster says of itself, for readiness and metrics.
mod cluster;
// The cached value's binary layout; public for its `DecodeError`.
pub mod codec;
// One server or a cluster, the command timeout, reconnecting, the outage state.
mod connection;
mod error;
// The instances' heartbeats (SPEC §8), on the same connections.
mod heartbeats;
// The key layout above.
mod keys;
// The Lua scripts every write runs as, and the unix-ms instants they take.
mod scripts;

pub use cache::{CacheStats, RedisSessionCache};
pub use cluster::ClusterHealth;
pub use connection::{RedisClusterSettings, RedisConnection, RedisSettings, Topology};
pub use error::RedisCacheError;
