//! [`RedisSessionCache`]: the connection it shares, the commands it sends, and what it does
//! when Redis is away.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, RedisResult};
use deadpool_redis::{Connection, Manager, Pool, Runtime};
use sessiond_domain::model::{SessionId, SessionStatus, SessionSummary, UserId};
use sessiond_domain::ports::SessionCache;
use sessiond_domain::{ErrorChain, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec;
use crate::error::{RedisCacheError, is_unavailable};
use crate::scripts::{PRUNE, PUT, TOMBSTONE_SESSIONS, TOUCH};

/// After a failed connection attempt, calls fail at once for this long instead of each
/// trying again: no thundering herd against a Redis that is down.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);
/// Index members checked per prune script call.
const PRUNE_CHUNK: usize = 100;

/// Where and how to reach Redis.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// Put before every key (`<prefix>session:{...}`); empty in production, a unique
    /// `test:<uuid>:` in tests sharing one Redis.
    pub key_prefix: String,
    /// The longest any one command (or connection attempt) may take.
    pub command_timeout: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        let url = if self.url.contains('@') {
            "<redacted>"
        } else {
            self.url.as_str()
        };
        f.debug_struct("RedisSettings")
            .field("url", &url)
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

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

/// The live-session cache in Redis: a multiplexed connection per calling thread, one
/// command per `get`. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct RedisSessionCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisSessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionCache")
            .field("key_prefix", &self.inner.keys.prefix)
            .field("command_timeout", &self.inner.timeout)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The key layout of SPEC §3.
struct Keys {
    prefix: String,
}

impl Keys {
    fn session(&self, user_id: UserId, id: SessionId) -> String {
        let mut member = Uuid::encode_buffer();
        self.session_of_member(user_id, id.as_uuid().hyphenated().encode_lower(&mut member))
    }

    /// Built by hand rather than with `format!`: it is on every validated request.
    fn session_of_member(&self, user_id: UserId, member: &str) -> String {
        let mut user = Uuid::encode_buffer();
        let user = user_id.as_uuid().hyphenated().encode_lower(&mut user);
        let mut key = String::with_capacity(
            self.prefix.len() + "session:{}:".len() + user.len() + member.len(),
        );
        for part in [self.prefix.as_str(), "session:{", user, "}:", member] {
            key.push_str(part);
        }
        key
    }

    fn index(&self, user_id: UserId) -> String {
        format!("{}sessions:{{{user_id}}}", self.prefix)
    }
}

struct Shared {
    id: u64,
    conn: MultiplexedConnection,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    opened: AtomicU64,
}

struct Inner {
    pool: Pool,
    keys: Keys,
    timeout: Duration,
    /// The connection of each thread that sends commands, opened on its first command. An
    /// actix worker then drives its connection on its own runtime, so a command and its
    /// reply never cross threads: two cross-thread wake-ups fewer per `GET` than one
    /// connection shared by all workers. Bounded by the threads that ever sent a command
    /// (the workers, the start-up thread, the background tasks' runtime).
    connections: RwLock<HashMap<ThreadId, Shared>>,
    /// Held while connecting, so that one caller connects and the others wait; holds the
    /// instant of the last failed attempt.
    connecting: tokio::sync::Mutex<Option<Instant>>,
    next_conn_id: AtomicU64,
    /// Redis is considered unreachable (logged once when it starts and once when it ends).
    outage: AtomicBool,
    counters: Counters,
}

/// Unix milliseconds, rounded down: an entry's `PXAT` never outlasts its `expires_at`.
fn unix_ms(at: OffsetDateTime) -> i64 {
    codec::micros(at).div_euclid(1_000)
}

/// Unix milliseconds, rounded up: a tombstone lasts at least until its `until`.
fn unix_ms_ceil(at: OffsetDateTime) -> i64 {
    codec::micros(at).saturating_add(999).div_euclid(1_000)
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
        let timeout = settings.command_timeout.max(Duration::from_millis(1));
        // No response timeout on the connection: `Inner::run` bounds every command,
        // including its wait for the connection's queue; a second timer per command (the
        // library's default is 500 ms) would only cost.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        let manager = Manager::new_with_config(settings.url.as_str(), config)
            .map_err(RedisCacheError::Settings)?;
        // The pool only opens connections (with deadpool's hooks and runtime): every command
        // then goes over its thread's multiplexed connection, taken out of the pool, because
        // a checkout per command costs an UNWATCH + PING recycle check each time.
        let pool = Pool::builder(manager)
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(RedisCacheError::Build)?;
        let inner = Arc::new(Inner {
            pool,
            keys: Keys {
                prefix: settings.key_prefix,
            },
            timeout,
            connections: RwLock::new(HashMap::new()),
            connecting: tokio::sync::Mutex::new(None),
            next_conn_id: AtomicU64::new(0),
            outage: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let cache = RedisSessionCache { inner };
        if cache.ping().await.is_ok() {
            tracing::info!(redis.prefix = %cache.inner.keys.prefix, "connected to Redis");
        }
        Ok(cache)
    }

    /// Checks that Redis answers (for the readiness probe).
    ///
    /// # Errors
    /// [`RedisCacheError`] when it does not, within the command timeout.
    pub async fn ping(&self) -> Result<(), RedisCacheError> {
        self.inner
            .run(|mut conn| async move { redis::cmd("PING").query_async::<()>(&mut conn).await })
            .await
    }

    /// Removes the members of `user_id`'s index whose session key is gone (or a tombstone)
    /// or whose expiry is at or before `now`; returns how many. For the cleanup job: the
    /// index otherwise sheds expired members only when the user's next session is stored.
    async fn prune(&self, user_id: UserId, now: OffsetDateTime) -> Result<u64, RedisCacheError> {
        let inner = &self.inner;
        let index = inner.keys.index(user_id);
        let members: Vec<String> = {
            let index = index.clone();
            inner
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
            let mut invocation = PRUNE.prepare_invoke();
            invocation.key(&index);
            for member in chunk {
                invocation.key(inner.keys.session_of_member(user_id, member));
            }
            invocation.arg(now_ms);
            for member in chunk {
                invocation.arg(member);
            }
            let count: u64 = inner
                .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                .await?;
            removed += count;
        }
        Ok(removed)
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            connections_opened: c.opened.load(Ordering::Relaxed),
            outage: self.inner.outage.load(Ordering::Relaxed),
        }
    }

    async fn fetch(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, RedisCacheError> {
        let inner = &self.inner;
        let key = inner.keys.session(user_id, id);
        let value: Option<Vec<u8>> = inner
            .run(|mut conn| async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        let Some(bytes) = value.filter(|bytes| !codec::is_tombstone(bytes)) else {
            // A tombstone reads as a miss: the caller asks PostgreSQL, which knows the end,
            // and its refill is refused by the put script.
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        match codec::decode(&bytes, user_id, id) {
            Ok(session) => {
                inner.counters.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(session))
            }
            Err(error) => {
                inner.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    user.id = %user_id, session.id = %id, error = %error,
                    "unreadable cached session; reading PostgreSQL instead"
                );
                Err(RedisCacheError::Corrupt(error))
            }
        }
    }

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
        let mut invocation = PUT.prepare_invoke();
        invocation
            .key(inner.keys.session(session.user_id, session.id))
            .key(inner.keys.index(session.user_id))
            .arg(codec::encode(session))
            .arg(unix_ms(session.expires_at))
            .arg(session.id.to_string())
            .arg(unix_ms(now));
        let written: u8 = inner
            .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
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
        let mut invocation = TOMBSTONE_SESSIONS.prepare_invoke();
        invocation.key(inner.keys.index(user_id));
        for id in ids {
            invocation.key(inner.keys.session(user_id, *id));
        }
        invocation.arg(unix_ms_ceil(until));
        for id in ids {
            invocation.arg(id.to_string());
        }
        inner
            .run(|mut conn| async move { invocation.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn touch_at(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), RedisCacheError> {
        let inner = &self.inner;
        let mut invocation = TOUCH.prepare_invoke();
        invocation
            .key(inner.keys.session(user_id, id))
            .arg(codec::micros(at).to_be_bytes().as_slice());
        inner
            .run(|mut conn| async move { invocation.invoke_async::<()>(&mut conn).await })
            .await
    }
}

impl Inner {
    /// Runs one command (or pipeline, or script) on this thread's connection, bounded by the
    /// command timeout; keeps the outage state and the connection's health up to date.
    async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisCacheError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let result = match self.connection().await {
            Ok((conn_id, conn)) => match tokio::time::timeout(self.timeout, command(conn)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => {
                    if error.is_unrecoverable_error() || is_unavailable(&error) {
                        self.discard(conn_id);
                    }
                    Err(RedisCacheError::Command(error))
                }
                Err(_) => {
                    // A connection that stops answering may be half-open (a partition, a
                    // dead peer): open a fresh one rather than queue behind it forever.
                    self.discard(conn_id);
                    Err(RedisCacheError::Timeout(self.timeout))
                }
            },
            Err(error) => Err(error),
        };
        match &result {
            Ok(_) => self.mark_up(),
            Err(error) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                if error.is_unavailable() {
                    self.mark_down(error);
                }
            }
        }
        result
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        let connections = self
            .connections
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        connections
            .get(&thread::current().id())
            .map(|shared| (shared.id, shared.conn.clone()))
    }

    /// This thread's connection, opening one if there is none: one caller connects, the others
    /// wait for it; after a failed attempt, callers fail fast for [`RECONNECT_BACKOFF`].
    async fn connection(&self) -> Result<(u64, MultiplexedConnection), RedisCacheError> {
        match self.current() {
            Some(found) => Ok(found),
            // Boxed: the connecting state is large, and every command's future would
            // otherwise carry (and move) it.
            None => Box::pin(self.reconnect()).await,
        }
    }

    async fn reconnect(&self) -> Result<(u64, MultiplexedConnection), RedisCacheError> {
        let mut last_failure = tokio::time::timeout(self.timeout, self.connecting.lock())
            .await
            .map_err(|_| RedisCacheError::Timeout(self.timeout))?;
        if let Some(found) = self.current() {
            return Ok(found);
        }
        if last_failure.is_some_and(|at| at.elapsed() < RECONNECT_BACKOFF) {
            return Err(RedisCacheError::Reconnecting);
        }
        let opened = match tokio::time::timeout(self.timeout, self.pool.get()).await {
            Ok(Ok(conn)) => Connection::take(conn),
            Ok(Err(error)) => {
                *last_failure = Some(Instant::now());
                return Err(RedisCacheError::Connect(error));
            }
            Err(_) => {
                *last_failure = Some(Instant::now());
                return Err(RedisCacheError::Timeout(self.timeout));
            }
        };
        *last_failure = None;
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(redis.connection = id, "opened a Redis connection");
        let mut connections = self
            .connections
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        connections.insert(
            thread::current().id(),
            Shared {
                id,
                conn: opened.clone(),
            },
        );
        Ok((id, opened))
    }

    /// Forgets connection `id` if it is still in use; the next call on its thread
    /// reconnects.
    fn discard(&self, id: u64) {
        let mut connections = self
            .connections
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|_, shared| shared.id != id);
    }

    fn mark_down(&self, error: &RedisCacheError) {
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %ErrorChain(error),
                "Redis is unreachable: session validation reads PostgreSQL until it is back"
            );
        }
    }

    fn mark_up(&self) {
        if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::AcqRel) {
            tracing::info!("Redis is reachable again");
        }
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

    async fn touch(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Ok(self.touch_at(user_id, id, at).await?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout_of_spec_section_3() {
        let keys = Keys {
            prefix: "test:".into(),
        };
        let user = UserId::from_uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
        let id = SessionId::from_uuid(Uuid::from_u128(u128::MAX - 1));
        assert_eq!(
            keys.session(user, id),
            "test:session:{01234567-89ab-cdef-0123-456789abcdef}:ffffffff-ffff-ffff-ffff-fffffffffffe"
        );
        assert_eq!(
            keys.session(user, id),
            format!("test:session:{{{user}}}:{id}")
        );
        assert_eq!(keys.index(user), format!("test:sessions:{{{user}}}"));
    }
}
