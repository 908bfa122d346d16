//! [`RedisSessionCache`]: the connection it shares, the commands it sends, and what it does
//! when Redis is away.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, RedisResult};
use deadpool_redis::{Connection, Manager, Pool, Runtime};
use sessiond_domain::StoreError;
use sessiond_domain::model::{SessionId, SessionStatus, SessionSummary, UserId};
use sessiond_domain::ports::SessionCache;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::codec::{self, LAST_ACTIVITY_OFFSET, VERSION};
use crate::error::{RedisCacheError, is_unavailable};
use crate::scripts::{PRUNE, PUT, TOUCH};

/// After a failed connection attempt, calls fail at once for this long instead of each
/// trying again: no thundering herd against a Redis that is down.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);
/// Retry delays of the background flush of pending removals.
const FLUSH_RETRY_MIN: Duration = Duration::from_millis(50);
const FLUSH_RETRY_MAX: Duration = Duration::from_secs(1);
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
    /// `get` calls that found no entry.
    pub misses: u64,
    /// Commands that failed (unreachable, timeout, error reply, corrupt value).
    pub errors: u64,
    /// `get` calls refused while removals were pending (the caller read PostgreSQL).
    pub refused: u64,
    /// Session removals that could not reach Redis at once and were queued.
    pub deferred_removals: u64,
    /// Removals queued now, not yet in Redis.
    pub pending_removals: u64,
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

/// Removals that could not reach Redis yet, each with the sequence number of its latest
/// request (so a flush retires only what it actually sent).
#[derive(Default)]
struct Pending {
    entries: HashMap<(UserId, SessionId), u64>,
    next_seq: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
    deferred: AtomicU64,
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
    pending: Mutex<Pending>,
    /// Pending removals exist: this instance serves no cached reads.
    untrusted: AtomicBool,
    flush_signal: Arc<Notify>,
    counters: Counters,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Wakes the flush task so that it notices it is the last one and ends.
        self.flush_signal.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    codec::micros(at).div_euclid(1_000)
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl RedisSessionCache {
    /// Builds the cache and tries to connect once. A Redis that is down is not an error:
    /// the cache starts in degraded mode (every call fails fast, callers use PostgreSQL) and
    /// connects on a later call.
    ///
    /// Must be called within a Tokio runtime (it spawns the task that flushes pending
    /// removals).
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
        let flush_signal = Arc::new(Notify::new());
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
            pending: Mutex::new(Pending::default()),
            untrusted: AtomicBool::new(false),
            flush_signal: Arc::clone(&flush_signal),
            counters: Counters::default(),
        });
        tokio::spawn(flush_pending_removals(Arc::downgrade(&inner), flush_signal));
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

    /// Removes the members of `user_id`'s index whose session key is gone or whose expiry
    /// is at or before `now`; returns how many. For the cleanup job: the index otherwise
    /// sheds expired members only when the user's next session is stored.
    ///
    /// # Errors
    /// [`RedisCacheError`] when Redis cannot be reached or fails.
    pub async fn prune_user_index(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<u64, RedisCacheError> {
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
            refused: c.refused.load(Ordering::Relaxed),
            deferred_removals: c.deferred.load(Ordering::Relaxed),
            pending_removals: lock(&self.inner.pending).entries.len() as u64,
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
        if inner.untrusted.load(Ordering::Acquire) {
            inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(RedisCacheError::Untrusted);
        }
        let key = inner.keys.session(user_id, id);
        let value: Option<Vec<u8>> = inner
            .run(|mut conn| async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        let Some(bytes) = value else {
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
        let ttl_ms =
            i64::try_from((session.expires_at - now).whole_milliseconds()).unwrap_or(i64::MAX);
        if ttl_ms <= 0 || session.status != SessionStatus::Active {
            // Only live sessions are cached; "replacing any cached copy" then means dropping
            // it (an ended session must not linger in the cache or the index).
            return inner.remove_now(session.user_id, &[session.id]).await;
        }
        let mut invocation = PUT.prepare_invoke();
        invocation
            .key(inner.keys.session(session.user_id, session.id))
            .key(inner.keys.index(session.user_id))
            .arg(codec::encode(session))
            .arg(ttl_ms)
            .arg(session.id.to_string())
            .arg(unix_ms(session.expires_at))
            .arg(unix_ms(now));
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
            .arg(codec::micros(at).to_be_bytes().as_slice())
            .arg(VERSION)
            .arg(LAST_ACTIVITY_OFFSET);
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
                error = %chain(error),
                "Redis is unreachable: session validation reads PostgreSQL until it is back"
            );
        }
    }

    fn mark_up(&self) {
        if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::AcqRel) {
            tracing::info!("Redis is reachable again");
        }
    }

    /// Deletes the sessions' keys and index members in one round trip (MULTI/EXEC).
    async fn remove_now(&self, user_id: UserId, ids: &[SessionId]) -> Result<(), RedisCacheError> {
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.keys.session(user_id, *id))
            .collect();
        let members: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(keys)
            .ignore()
            .zrem(self.keys.index(user_id), members)
            .ignore();
        self.run(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await
    }

    /// Queues removals that could not reach Redis and stops serving cached reads until the
    /// flush task has delivered them.
    fn defer(&self, user_id: UserId, ids: &[SessionId]) {
        let newly_untrusted = {
            let mut pending = lock(&self.pending);
            for id in ids {
                pending.next_seq += 1;
                let seq = pending.next_seq;
                pending.entries.insert((user_id, *id), seq);
            }
            !self.untrusted.swap(true, Ordering::AcqRel)
        };
        self.counters
            .deferred
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        if newly_untrusted {
            tracing::warn!(
                "session removals could not reach Redis: this instance reads sessions from \
                 PostgreSQL only until they are delivered"
            );
        }
        tracing::debug!(user.id = %user_id, count = ids.len(), "queued cache removals");
        self.flush_signal.notify_one();
    }

    /// Sends every pending removal; `true` when none is left.
    async fn flush_pending(&self) -> bool {
        let snapshot: HashMap<UserId, Vec<(SessionId, u64)>> = {
            let pending = lock(&self.pending);
            let mut by_user: HashMap<UserId, Vec<(SessionId, u64)>> = HashMap::new();
            for (&(user_id, id), &seq) in &pending.entries {
                by_user.entry(user_id).or_default().push((id, seq));
            }
            by_user
        };
        for (user_id, entries) in snapshot {
            let ids: Vec<SessionId> = entries.iter().map(|(id, _)| *id).collect();
            if self.remove_now(user_id, &ids).await.is_err() {
                return false;
            }
            let mut pending = lock(&self.pending);
            for (id, seq) in entries {
                if pending.entries.get(&(user_id, id)) == Some(&seq) {
                    pending.entries.remove(&(user_id, id));
                }
            }
        }
        let pending = lock(&self.pending);
        if !pending.entries.is_empty() {
            return false;
        }
        if self.untrusted.swap(false, Ordering::AcqRel) {
            tracing::info!("pending session removals reached Redis: cached reads resume");
        }
        true
    }
}

/// The background task behind deferred removals: sleeps until one is queued, then retries
/// with a growing delay until Redis has them all. Ends with the last cache handle.
async fn flush_pending_removals(inner: Weak<Inner>, signal: Arc<Notify>) {
    loop {
        signal.notified().await;
        let mut delay = FLUSH_RETRY_MIN;
        loop {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            if inner.flush_pending().await {
                break;
            }
            drop(inner);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(FLUSH_RETRY_MAX);
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

    /// Deletes keys and index members in one round trip. When Redis cannot be reached, the
    /// removals are queued, this instance refuses cached reads until they are delivered,
    /// and the call succeeds (see the crate docs for what that does and does not cover).
    async fn remove(&self, user_id: UserId, ids: &[SessionId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        match self.inner.remove_now(user_id, ids).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_unavailable() => {
                self.inner.defer(user_id, ids);
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
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
