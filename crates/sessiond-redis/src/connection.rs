//! Reaching Redis: the settings, a multiplexed connection per calling thread (opened through
//! the pool, then kept out of it), the timeout on every command, reconnecting after a
//! failure, and whether Redis is considered unreachable now (the outage state).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, RedisResult};
use deadpool_redis::{Connection, Manager, Pool, Runtime};
use sessiond_domain::ErrorChain;

use crate::error::{RedisCacheError, is_unavailable};

/// After a failed connection attempt, calls fail at once for this long instead of each
/// trying again: no thundering herd against a Redis that is down.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

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

/// A connection in use by a thread, with the id it is discarded by.
struct Shared {
    id: u64,
    conn: MultiplexedConnection,
}

/// The connections to one Redis and what they have seen: every command goes through
/// [`Connections::run`].
pub(crate) struct Connections {
    /// Only opens connections (with deadpool's hooks and runtime): each is then taken out of
    /// the pool, because a checkout per command costs an `UNWATCH` + `PING` recycle check.
    pool: Pool,
    timeout: Duration,
    /// The connection of each thread that sends commands, opened on its first command. An
    /// actix worker then drives its connection on its own runtime, so a command and its
    /// reply never cross threads: two cross-thread wake-ups fewer per `GET` than one
    /// connection shared by all workers. Bounded by the threads that ever sent a command
    /// (the workers, the start-up thread, the background tasks' runtime).
    per_thread: RwLock<HashMap<ThreadId, Shared>>,
    /// Held while connecting, so that one caller connects and the others wait; holds the
    /// instant of the last failed attempt.
    connecting: tokio::sync::Mutex<Option<Instant>>,
    next_id: AtomicU64,
    /// Redis is considered unreachable (logged once when it starts and once when it ends).
    outage: AtomicBool,
    /// Commands that failed (unreachable, timeout, error reply).
    failed: AtomicU64,
    /// Connections opened (the first one included).
    opened: AtomicU64,
}

impl Connections {
    /// Builds the pool; opens nothing yet (the first command does).
    ///
    /// # Errors
    /// [`RedisCacheError::Settings`] or [`RedisCacheError::Build`] when the settings are
    /// unusable (a malformed URL).
    pub(crate) fn new(settings: &RedisSettings) -> Result<Connections, RedisCacheError> {
        let timeout = settings.command_timeout.max(Duration::from_millis(1));
        // No response timeout on the connection: `run` bounds every command, including its
        // wait for the connection's queue; a second timer per command (the library's default
        // is 500 ms) would only cost.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        let manager = Manager::new_with_config(settings.url.as_str(), config)
            .map_err(RedisCacheError::Settings)?;
        let pool = Pool::builder(manager)
            .max_size(1)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(RedisCacheError::Build)?;
        Ok(Connections {
            pool,
            timeout,
            per_thread: RwLock::new(HashMap::new()),
            connecting: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(0),
            outage: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        })
    }

    /// The longest any one command may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether Redis is considered unreachable now.
    pub(crate) fn is_down(&self) -> bool {
        self.outage.load(Ordering::Relaxed)
    }

    /// Commands that failed so far.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Connections opened so far.
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Checks that Redis answers.
    pub(crate) async fn ping(&self) -> Result<(), RedisCacheError> {
        self.run(|mut conn| async move { redis::cmd("PING").query_async::<()>(&mut conn).await })
            .await
    }

    /// Runs one command (or pipeline, or script) on this thread's connection, bounded by the
    /// command timeout; keeps the outage state and the connection's health up to date.
    pub(crate) async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisCacheError>
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
                self.failed.fetch_add(1, Ordering::Relaxed);
                if error.is_unavailable() {
                    self.mark_down(error);
                }
            }
        }
        result
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        let per_thread = self
            .per_thread
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        per_thread
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
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.opened.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(redis.connection = id, "opened a Redis connection");
        let mut per_thread = self
            .per_thread
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        per_thread.insert(
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
        let mut per_thread = self
            .per_thread
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        per_thread.retain(|_, shared| shared.id != id);
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
