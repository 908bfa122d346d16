//! [`RedisSessionCache`]: the commands of the [`SessionCache`] port, each one `GET` or one
//! script over [`Connections`], and the counters they keep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::model::{SessionId, SessionStatus, SessionSummary, UserId};
use sessiond_domain::ports::SessionCache;
use time::OffsetDateTime;

use crate::cluster::ClusterHealth;
use crate::codec;
use crate::connection::{Connections, RedisClusterSettings, RedisSettings, Topology};
use crate::error::RedisCacheError;
use crate::keys::Keys;
use crate::scripts::{PRUNE, PUT, TOMBSTONE_SESSIONS, unix_ms, unix_ms_ceil};

/// Index members checked per prune script call.
const PRUNE_CHUNK: usize = 100;

/// A snapshot of the cache's counters, for a metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `get` calls answered from Redis.
    pub hits: u64,
    /// `get` calls that found no entry, or a tombstone.
    pub misses: u64,
    /// Commands that failed (unreachable, timeout, error reply, corrupt value).
    pub errors: u64,
    /// Connections opened (the first one included).
    pub connections_opened: u64,
    /// Whether Redis is considered unreachable now.
    pub outage: bool,
}

/// The live-session cache in Redis, on one server (a multiplexed connection per calling
/// thread) or on a Redis Cluster (one cluster connection); one command per `get`. Cheap to
/// clone; clones share everything.
#[derive(Clone)]
pub struct RedisSessionCache {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Connections,
    keys: Keys,
    /// `get` calls answered from Redis.
    hits: AtomicU64,
    /// `get` calls that found no entry, or a tombstone.
    misses: AtomicU64,
    /// Values read that this build cannot decode (counted with the failed commands).
    corrupt: AtomicU64,
}

impl std::fmt::Debug for RedisSessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionCache")
            .field("key_prefix", &self.inner.keys.prefix)
            .field("command_timeout", &self.inner.redis.timeout())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RedisSessionCache {
    /// Builds the cache and tries to connect once. A Redis that is down is not an error:
    /// the cache starts in degraded mode (every call fails fast, callers use PostgreSQL) and
    /// connects on a later call.
    ///
    /// # Errors
    /// [`RedisCacheError::Settings`] or [`RedisCacheError::Build`] when the settings are
    /// unusable (a malformed URL).
    pub async fn connect(settings: RedisSettings) -> Result<RedisSessionCache, RedisCacheError> {
        let redis = Connections::single(&settings)?;
        Ok(Self::start(redis, settings.key_prefix).await)
    }

    /// As [`Self::connect`], on a Redis Cluster: the same keys and scripts, each routed to
    /// the node that serves its user's slot.
    ///
    /// # Errors
    /// [`RedisCacheError::Settings`] when a seed is not a usable URL or there is none.
    pub async fn connect_cluster(
        settings: RedisClusterSettings,
    ) -> Result<RedisSessionCache, RedisCacheError> {
        let redis = Connections::cluster(&settings)?;
        Ok(Self::start(redis, settings.key_prefix).await)
    }

    async fn start(redis: Connections, prefix: String) -> RedisSessionCache {
        let inner = Arc::new(Inner {
            redis,
            keys: Keys { prefix },
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        });
        let cache = RedisSessionCache { inner };
        if cache.ping().await.is_ok() {
            tracing::info!(
                redis.prefix = %cache.inner.keys.prefix,
                redis.topology = ?cache.topology(),
                "connected to Redis"
            );
        }
        cache
    }

    /// One server or a cluster.
    pub fn topology(&self) -> Topology {
        self.inner.redis.topology()
    }

    /// What the cluster says of itself (`CLUSTER INFO`, asked of any one node); `None` on
    /// a single server.
    ///
    /// # Errors
    /// [`RedisCacheError`] when no node answers within the command timeout.
    pub async fn cluster_health(&self) -> Result<Option<ClusterHealth>, RedisCacheError> {
        if self.topology() != Topology::Cluster {
            return Ok(None);
        }
        let info: String = self
            .inner
            .redis
            .run(|mut conn| async move {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        ClusterHealth::parse(&info).map(Some)
    }

    /// Checks that Redis answers: the server, or every primary of the cluster (for the
    /// readiness probe).
    ///
    /// # Errors
    /// [`RedisCacheError`] when it does not, within the command timeout.
    pub async fn ping(&self) -> Result<(), RedisCacheError> {
        self.inner.redis.ping().await
    }

    /// The connections, for the other ports this adapter serves (heartbeats).
    pub(crate) fn connections(&self) -> &Connections {
        &self.inner.redis
    }

    /// The key layout.
    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let inner = &self.inner;
        CacheStats {
            hits: inner.hits.load(Ordering::Relaxed),
            misses: inner.misses.load(Ordering::Relaxed),
            errors: inner.redis.failed() + inner.corrupt.load(Ordering::Relaxed),
            connections_opened: inner.redis.opened(),
            outage: inner.redis.is_down(),
        }
    }

    /// One `GET`; a tombstone reads as a miss.
    async fn fetch(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, RedisCacheError> {
        let inner = &self.inner;
        let key = inner.keys.session(user_id, id);
        let value: Option<Vec<u8>> = inner
            .redis
            .run(|mut conn| async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        let Some(bytes) = value.filter(|bytes| !codec::is_tombstone(bytes)) else {
            // A tombstone reads as a miss: the caller asks PostgreSQL, which knows the end,
            // and its refill is refused by the put script.
            inner.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        match codec::decode(&bytes, user_id, id) {
            Ok(session) => {
                inner.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(session))
            }
            Err(error) => {
                inner.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    user.id = %user_id, session.id = %id, error = %error,
                    "unreadable cached session; reading PostgreSQL instead"
                );
                Err(RedisCacheError::Corrupt(error))
            }
        }
    }

    /// Stores a live session and indexes it (the put script decides whether it may).
    async fn store(
        &self,
        session: &SessionSummary,
        now: OffsetDateTime,
    ) -> Result<(), RedisCacheError> {
        let inner = &self.inner;
        if session.status != SessionStatus::Active || session.expires_at <= now {
            // Only live sessions are cached, and a put never deletes: ending a session is
            // `tombstone`'s job, expiry is the key's own.
            return Ok(());
        }
        let mut invocation = PUT.call();
        invocation
            .key(inner.keys.session(session.user_id, session.id))
            .key(inner.keys.index(session.user_id))
            .arg(codec::encode(session))
            .arg(unix_ms(session.expires_at))
            .arg(session.id.to_string())
            .arg(unix_ms(now));
        let written: u8 = inner
            .redis
            .run(|mut conn| async move { invocation.invoke(&mut conn).await })
            .await?;
        if written == 0 {
            tracing::debug!(
                user.id = %session.user_id, session.id = %session.id,
                session.version = session.version,
                "cache write refused: a tombstone or a newer generation is cached"
            );
        }
        Ok(())
    }

    /// Tombstones the sessions' keys and drops their index members, in one script.
    async fn mark_ended(
        &self,
        user_id: UserId,
        ids: &[SessionId],
        until: OffsetDateTime,
    ) -> Result<(), RedisCacheError> {
        if ids.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let mut invocation = TOMBSTONE_SESSIONS.call();
        invocation.key(inner.keys.index(user_id));
        for id in ids {
            invocation.key(inner.keys.session(user_id, *id));
        }
        invocation.arg(unix_ms_ceil(until));
        for id in ids {
            invocation.arg(id.to_string());
        }
        inner
            .redis
            .run(|mut conn| async move { invocation.invoke::<()>(&mut conn).await })
            .await
    }

    /// Removes the members of `user_id`'s index whose session key is gone (or a tombstone)
    /// or whose expiry is at or before `now`; returns how many. Called by the domain's
    /// cleanup pass (`CleanupService`) for each user who had a session expire: the index
    /// otherwise sheds expired members only when the user's next session is stored.
    async fn prune(&self, user_id: UserId, now: OffsetDateTime) -> Result<u64, RedisCacheError> {
        let inner = &self.inner;
        let index = inner.keys.index(user_id);
        let members: Vec<String> = {
            let index = index.clone();
            inner
                .redis
                .run(|mut conn| async move {
                    redis::cmd("ZRANGE")
                        .arg(&index)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await
                })
                .await?
        };
        let now_ms = unix_ms(now);
        let mut removed = 0;
        for chunk in members.chunks(PRUNE_CHUNK) {
            let mut invocation = PRUNE.call();
            invocation.key(index.clone());
            for member in chunk {
                invocation.key(inner.keys.session_of_member(user_id, member));
            }
            invocation.arg(now_ms);
            for member in chunk {
                invocation.arg(member);
            }
            let count: u64 = inner
                .redis
                .run(|mut conn| async move { invocation.invoke(&mut conn).await })
                .await?;
            removed += count;
        }
        Ok(removed)
    }
}

#[async_trait]
impl SessionCache for RedisSessionCache {
    async fn get(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        Ok(self.fetch(user_id, id).await?)
    }

    async fn put(&self, session: &SessionSummary, now: OffsetDateTime) -> Result<(), StoreError> {
        Ok(self.store(session, now).await?)
    }

    async fn tombstone(
        &self,
        user_id: UserId,
        ids: &[SessionId],
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Ok(self.mark_ended(user_id, ids, until).await?)
    }

    async fn prune_index(&self, user_id: UserId, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.prune(user_id, now).await?)
    }
}
