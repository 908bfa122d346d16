//! The Redis adapter of sessiond's [`SessionCache`] port: a fast, forgetful copy of live
//! sessions in front of PostgreSQL (SPEC §3), built on `deadpool-redis`.
//!
//! It is a cache and nothing more: PostgreSQL decides (the domain's `CachedSessionRepository`
//! reads it on every miss or cache error), so losing any entry (flush, restart, eviction)
//! logs nobody out. It holds no token material.
//!
//! # Key layout
//!
//! - `<prefix>session:{<user_id>}:<session_id>`: one string per live session, with a TTL of
//!   `expires_at - now` in milliseconds (`SET ... PX`; `now` is the caller's, time is a
//!   parameter). Only live sessions are cached: a `put` of an ended or expired session drops
//!   the cached copy instead. The value is a compact, versioned
//!   binary encoding of a `SessionSummary` (about 80 bytes; see [`codec`](crate::codec) for
//!   the layout).
//! - `<prefix>sessions:{<user_id>}`: the user's index, a sorted set of session ids scored by
//!   `expires_at` (unix ms), written in the same script as the key; it lives as long as its
//!   latest member. Members that expired are dropped whenever the user's next session is
//!   stored, and by [`RedisSessionCache::prune_user_index`] (the cleanup job).
//!
//! The braces are a Redis Cluster hash tag: one user's keys share a slot, so every script
//! (which declares all its keys) stays legal on a cluster. The prefix is empty in production.
//! No command ever scans the keyspace (no `SCAN`, no `KEYS`).
//!
//! # Hot path
//!
//! `get` is one `GET` on a multiplexed connection of the calling thread's own: deadpool-redis
//! opens it on the thread's first command, then it is taken out of the pool and kept for the
//! thread, because each `pool.get()` checkout costs an `UNWATCH` + `PING` recycle check
//! (three commands instead of one). One per thread rather than one for the process: an
//! actix worker then drives its connection on its own runtime, and a command and its reply
//! never wake another thread (make bench: validate / floor 0.70 → 0.77–0.88). A broken
//! connection is dropped and the next call on its thread opens a new one; one caller
//! connects while the others wait, and after a failed attempt calls fail at once for
//! 200 ms. Every command is bounded by `command_timeout`, so a hung Redis cannot hang
//! requests. `touch` and `put` are one `EVALSHA` each (scripts loaded on first use and
//! again after `NOSCRIPT`), `remove` one `MULTI`/`EXEC` round trip.
//!
//! # When Redis is away
//!
//! - Start-up with Redis down succeeds (degraded mode); the cache connects on a later call.
//! - `get`, `put`, `touch` fail fast with `StoreError::Unavailable`; the caller reads or
//!   writes PostgreSQL alone. The outage is logged once when it starts (warn) and once when
//!   it ends (info), and counted in [`CacheStats`].
//! - `remove` must not return `Ok` while the entry might still be read (SPEC §3 invariant 2).
//!   When Redis cannot be reached, the removal is queued in this process, the instance
//!   becomes "untrusted" (its `get` returns `Unavailable`, so the caller reads PostgreSQL,
//!   which already records the end), a background task retries until every queued removal
//!   is in Redis, and then cached reads resume; `remove` returns `Ok`.
//!
//! ## What this does not cover
//!
//! The queue protects the reads of *this* instance only. If this instance cannot reach
//! Redis while another instance can (a partition of this one, or a Redis that answers others
//! but not us), the other instance may still read the stale entry from Redis until the
//! queued removal is delivered or the key's TTL ends. Likewise, if this process dies with
//! removals queued, the entries stay until their TTL. Closing that gap needs every reader
//! to consult PostgreSQL (or a revocation list) on a hit, which would cost the one-round-trip
//! hot path; the decorator instead fails the revocation when [`SessionCache::remove`]
//! returns an error, and this adapter chooses availability for the partitioned-writer case.
//! An operator who prefers strictness can treat `CacheStats::pending_removals > 0` on any
//! instance as an incident.
//!
//! [`SessionCache`]: sessiond_domain::ports::SessionCache
//! [`SessionCache::remove`]: sessiond_domain::ports::SessionCache::remove

mod cache;
pub mod codec;
mod error;
mod scripts;

pub use cache::{CacheStats, RedisSessionCache, RedisSettings};
pub use error::RedisCacheError;
