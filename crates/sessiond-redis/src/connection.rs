//! Reaching Redis: the settings, the link to one server or to a cluster, the timeout on
//! every command, reconnecting after a failure, and whether Redis is considered unreachable
//! now (the outage state).
//!
//! - **One server**: a multiplexed connection per calling thread (opened through the pool,
//!   then kept out of it).
//! - **A Redis Cluster**: one [`ClusterConnection`] for the process, cloned for each command.
//!   It keeps a multiplexed connection per node, follows `MOVED` and `ASK`, refreshes the
//!   slot map and reconnects to the nodes by itself, so nothing here pools, pings or
//!   discards it: once open, it is kept.
//!
//! Either way a command sees a [`RedisConnection`], so every command and script is written
//! once for both.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use deadpool_redis::{Connection, Manager, Pool, Runtime};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use sessiond_domain::ErrorChain;

use crate::error::{RedisCacheError, is_unavailable};

/// After a failed connection attempt, calls fail at once for this long instead of each
/// trying again: no thundering herd against a Redis that is down.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

/// On a cluster, one node's failure is not the others': while a primary fails over, its
/// slots fail and the others answer. The outage ends only once no command has found a node
/// unreachable for this long, so that a failover is one outage (logged twice), not one per
/// request.
const CLUSTER_OUTAGE_QUIET: Duration = Duration::from_secs(1);

/// Where and how to reach one Redis server.
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
        f.debug_struct("RedisSettings")
            .field("url", &redacted(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// Where and how to reach a Redis Cluster (SPEC §8): the same keys and scripts as on one
/// server, thanks to the hash tags of SPEC §3.
#[derive(Clone)]
pub struct RedisClusterSettings {
    /// Seed nodes, `redis://[:password@]host:port` each; the others are discovered.
    pub seeds: Vec<String>,
    /// As [`RedisSettings::key_prefix`].
    pub key_prefix: String,
    /// The longest any one command (retries and redirections included), and the connection
    /// to the cluster, may take.
    pub command_timeout: Duration,
}

impl std::fmt::Debug for RedisClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seeds: Vec<&str> = self.seeds.iter().map(|seed| redacted(seed)).collect();
        f.debug_struct("RedisClusterSettings")
            .field("seeds", &seeds)
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// A URL as it may be logged: one that may carry a password is not.
fn redacted(url: &str) -> &str {
    if url.contains('@') { "<redacted>" } else { url }
}

/// The connection a command runs on: to one server, or to the cluster (routed by the
/// command's first key). Public so that tools and tests speak to either topology alike.
#[derive(Clone)]
pub enum RedisConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "RedisConnection::Single",
            Self::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_command(cmd),
            RedisConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(conn) => conn.get_db(),
            RedisConnection::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Whether this process talks to one server or to a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One Redis server (`REDIS_URL`).
    Single,
    /// A Redis Cluster (`REDIS_CLUSTER_URLS`).
    Cluster,
}

/// An open connection, with the id it is discarded by.
struct Shared<C> {
    id: u64,
    conn: C,
}

/// How connections are opened and kept, per topology.
enum Link {
    Single {
        /// Only opens connections (with deadpool's hooks and runtime): each is then taken
        /// out of the pool, because a checkout per command costs an `UNWATCH` + `PING`
        /// recycle check.
        pool: Pool,
        /// The connection of each thread that sends commands, opened on its first command.
        /// An actix worker then drives its connection on its own runtime, so a command and
        /// its reply never cross threads: two cross-thread wake-ups fewer per `GET` than one
        /// connection shared by all workers. Bounded by the threads that ever sent a
        /// command (the workers, the start-up thread, the background tasks' runtime).
        per_thread: RwLock<HashMap<ThreadId, Shared<MultiplexedConnection>>>,
    },
    Cluster {
        // Boxed: it is large, and there is one per process.
        client: Box<ClusterClient>,
        /// The process's one cluster connection, once open.
        open: RwLock<Option<Shared<ClusterConnection>>>,
    },
}

/// The connections to Redis and what they have seen: every command goes through
/// [`Connections::run`].
pub(crate) struct Connections {
    link: Link,
    timeout: Duration,
    /// Held while connecting, so that one caller connects and the others wait; holds the
    /// instant of the last failed attempt.
    connecting: tokio::sync::Mutex<Option<Instant>>,
    next_id: AtomicU64,
    /// Redis is considered unreachable (logged once when it starts and once when it ends).
    outage: AtomicBool,
    /// When a command last found Redis unreachable, in ms after `created`.
    last_unavailable_ms: AtomicU64,
    created: Instant,
    /// Commands that failed (unreachable, timeout, error reply).
    failed: AtomicU64,
    /// Connections opened (the first one included).
    opened: AtomicU64,
}

impl Connections {
    /// Builds the pool for one server; opens nothing yet (the first command does).
    ///
    /// # Errors
    /// [`RedisCacheError::Settings`] or [`RedisCacheError::Build`] when the settings are
    /// unusable (a malformed URL).
    pub(crate) fn single(settings: &RedisSettings) -> Result<Connections, RedisCacheError> {
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
        Ok(Connections::with_link(
            Link::Single {
                pool,
                per_thread: RwLock::new(HashMap::new()),
            },
            timeout,
        ))
    }

    /// Builds the client of a cluster; connects to nothing yet (the first command does).
    ///
    /// `TCP_NODELAY` is set on every node's socket (the redis crate leaves it off before
    /// 2.0: each small command would otherwise wait for the previous one's ACK), and each
    /// node's answer is bounded by the command timeout, as is connecting to a node.
    ///
    /// # Errors
    /// [`RedisCacheError::Settings`] when a seed is not a usable URL or there is none.
    pub(crate) fn cluster(settings: &RedisClusterSettings) -> Result<Connections, RedisCacheError> {
        let timeout = settings.command_timeout.max(Duration::from_millis(1));
        let client = ClusterClient::builder(settings.seeds.iter().map(String::as_str))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .tcp_settings(TcpSettings::default().set_nodelay(true))
            .build()
            .map_err(RedisCacheError::Settings)?;
        Ok(Connections::with_link(
            Link::Cluster {
                client: Box::new(client),
                open: RwLock::new(None),
            },
            timeout,
        ))
    }

    fn with_link(link: Link, timeout: Duration) -> Connections {
        Connections {
            link,
            timeout,
            connecting: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(0),
            outage: AtomicBool::new(false),
            last_unavailable_ms: AtomicU64::new(0),
            created: Instant::now(),
            failed: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    /// One server or a cluster.
    pub(crate) fn topology(&self) -> Topology {
        match self.link {
            Link::Single { .. } => Topology::Single,
            Link::Cluster { .. } => Topology::Cluster,
        }
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

    /// Checks that Redis answers: the server, or every primary of the cluster (a `PING` is
    /// sent to each of them).
    pub(crate) async fn ping(&self) -> Result<(), RedisCacheError> {
        self.run(|mut conn| async move { redis::cmd("PING").query_async::<()>(&mut conn).await })
            .await
    }

    /// Runs one command (or pipeline, or script) on this thread's connection, or the
    /// cluster's, bounded by the command timeout; keeps the outage state and the
    /// connection's health up to date.
    pub(crate) async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisCacheError>
    where
        F: FnOnce(RedisConnection) -> Fut,
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

    fn current(&self) -> Option<(u64, RedisConnection)> {
        match &self.link {
            Link::Single { per_thread, .. } => per_thread
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&thread::current().id())
                .map(|shared| (shared.id, RedisConnection::Single(shared.conn.clone()))),
            Link::Cluster { open, .. } => open
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|shared| (shared.id, RedisConnection::Cluster(shared.conn.clone()))),
        }
    }

    /// The connection to use, opening one if there is none: one caller connects, the others
    /// wait for it; after a failed attempt, callers fail fast for [`RECONNECT_BACKOFF`].
    async fn connection(&self) -> Result<(u64, RedisConnection), RedisCacheError> {
        match self.current() {
            Some(found) => Ok(found),
            // Boxed: the connecting state is large, and every command's future would
            // otherwise carry (and move) it.
            None => Box::pin(self.reconnect()).await,
        }
    }

    async fn reconnect(&self) -> Result<(u64, RedisConnection), RedisCacheError> {
        let mut last_failure = tokio::time::timeout(self.timeout, self.connecting.lock())
            .await
            .map_err(|_| RedisCacheError::Timeout(self.timeout))?;
        if let Some(found) = self.current() {
            return Ok(found);
        }
        if last_failure.is_some_and(|at| at.elapsed() < RECONNECT_BACKOFF) {
            return Err(RedisCacheError::Reconnecting);
        }
        // Bounded here whatever the library does: connecting to a cluster can hang
        // (redis-rs #1953).
        match tokio::time::timeout(self.timeout, self.open()).await {
            Ok(Ok(opened)) => {
                *last_failure = None;
                self.opened.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(redis.connection = opened.0, "opened a Redis connection");
                Ok(opened)
            }
            Ok(Err(error)) => {
                *last_failure = Some(Instant::now());
                Err(error)
            }
            Err(_) => {
                *last_failure = Some(Instant::now());
                Err(RedisCacheError::Timeout(self.timeout))
            }
        }
    }

    /// Opens a connection of the link's kind and keeps it: for this thread (one server) or
    /// for the process (a cluster).
    async fn open(&self) -> Result<(u64, RedisConnection), RedisCacheError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        match &self.link {
            Link::Single { pool, per_thread } => {
                let conn = Connection::take(pool.get().await.map_err(RedisCacheError::Connect)?);
                per_thread
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        thread::current().id(),
                        Shared {
                            id,
                            conn: conn.clone(),
                        },
                    );
                Ok((id, RedisConnection::Single(conn)))
            }
            Link::Cluster { client, open } => {
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(RedisCacheError::ConnectCluster)?;
                *open.write().unwrap_or_else(PoisonError::into_inner) = Some(Shared {
                    id,
                    conn: conn.clone(),
                });
                Ok((id, RedisConnection::Cluster(conn)))
            }
        }
    }

    /// Forgets connection `id` if it is still in use; the next call on its thread
    /// reconnects. The cluster's connection is never forgotten: it reconnects each node on
    /// its own, and opening it again would have to reach a node that may be the one down.
    fn discard(&self, id: u64) {
        if let Link::Single { per_thread, .. } = &self.link {
            per_thread
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, shared| shared.id != id);
        }
    }

    /// Milliseconds since this was built.
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn mark_down(&self, error: &RedisCacheError) {
        self.last_unavailable_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %ErrorChain(error),
                "Redis is unreachable: session validation reads PostgreSQL until it is back"
            );
        }
    }

    fn mark_up(&self) {
        if !self.outage.load(Ordering::Relaxed) {
            return;
        }
        if self.topology() == Topology::Cluster {
            let since = self
                .elapsed_ms()
                .saturating_sub(self.last_unavailable_ms.load(Ordering::Relaxed));
            if u128::from(since) < CLUSTER_OUTAGE_QUIET.as_millis() {
                return;
            }
        }
        if self.outage.swap(false, Ordering::AcqRel) {
            tracing::info!("Redis is reachable again");
        }
    }
}
