//! Several sessiond instances on one store, each behind proxies the test controls (SPEC §8,
//! issue 12).
//!
//! A [`Cluster`] is 2–3 in-process sessiond servers sharing ONE fresh PostgreSQL database
//! and ONE Redis keyspace (the shared Redis under a key prefix of the cluster's own, or a
//! private `redis-server`), as separate processes would: each instance has its own
//! `PgPool`, its own `RedisSessionCache` and its own revocation feed, and reaches
//! PostgreSQL and Redis through a [`TcpProxy`] of its own. A test slows, hangs or cuts one
//! instance's link ([`Mode`](crate::tcp_proxy::Mode)), or arms a proxy trigger that holds a
//! write back until after a revocation, and then asks every instance over HTTP whether a
//! token is accepted (`GET /api/v1/sessions/current`: 200 accepted, 401 refused).
//!
//! The cluster also opens direct connections that bypass the proxies: SQL on the database
//! (what PostgreSQL holds live is the truth the assertions compare with) and `redis-cli` on
//! the cluster's keys. [`Cluster::stop`] stops every server; dropping the cluster drops the
//! proxies (and kills a private `redis-server`).

use std::net::SocketAddr;
use std::ops::{Deref, Index};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond_app::Settings;
use sessiond_app::storage::Storage;
use sessiond_domain::model::Role;
use sessiond_postgres::{PgPool, PgSettings, testing};
use sessiond_redis::{RedisSessionCache, RedisSettings};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::app::{Device, PASSWORD, Reply, SHARED_REDIS_URL, TestApp, WINDOWS, test_settings};
use crate::redis_server::RedisServer;
use crate::tcp_proxy::TcpProxy;

/// How long tests give a revocation to reach every instance: far above the configured
/// `sessions.revocation_bound_ms`, so that a loaded 2-core machine does not flake. Never
/// assert anything tighter.
pub const REVOCATION_BOUND: Duration = Duration::from_secs(3);

/// The instances' `sessions.revocation_bound_ms`. A second: the heartbeats then count an
/// instance as silent after half of it (500 ms), which the in-process instances of a test,
/// sharing their runtime with the test's own requests on a busy machine, do not reach by
/// mere starvation.
pub const CONFIGURED_BOUND_MS: u32 = 1000;

/// The instances' Redis command timeout: a hung link fails fast.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);

/// The instances' PostgreSQL statement and checkout timeouts.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

type Configure = Box<dyn Fn(usize, &mut Settings) + Send + Sync>;

/// How to start a [`Cluster`].
pub struct ClusterBuilder {
    instances: usize,
    private_redis: bool,
    command_timeout: Duration,
    configure: Option<Configure>,
}

impl std::fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("instances", &self.instances)
            .field("private_redis", &self.private_redis)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl ClusterBuilder {
    /// Runs a `redis-server` of the cluster's own instead of the shared one.
    pub fn private_redis(mut self) -> Self {
        self.private_redis = true;
        self
    }

    /// Every instance's Redis command timeout (default [`COMMAND_TIMEOUT`]).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Changes the settings of instance `i` (after the harness's own).
    pub fn configure(
        mut self,
        configure: impl Fn(usize, &mut Settings) + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Box::new(configure));
        self
    }

    /// Starts the store and the instances.
    pub async fn start(self) -> Cluster {
        let redis_server = self.private_redis.then(RedisServer::start);
        let redis_url = redis_server
            .as_ref()
            .map_or_else(|| SHARED_REDIS_URL.to_owned(), RedisServer::url);
        let redis_target = resolve(authority(&redis_url).1).await;
        let key_prefix = format!("test:{}:", Uuid::new_v4().simple());
        let database_url = testing::fresh_database_url()
            .await
            .expect("a fresh PostgreSQL test database");
        let (_, pg_authority, _) = authority(&database_url);
        let pg_target = resolve(pg_authority).await;

        let (sql, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
            .await
            .expect("a direct SQL connection");
        let sql_task = tokio::spawn(async move {
            let _ = connection.await;
        });

        let mut cluster = Cluster {
            instances: Vec::with_capacity(self.instances),
            database_url,
            redis_url,
            key_prefix,
            sql,
            sql_task,
            redis_server,
            targets: (pg_target, redis_target),
            command_timeout: self.command_timeout,
            configure: self.configure,
        };
        for _ in 0..self.instances {
            cluster.join().await;
        }
        cluster
    }
}

impl Cluster {
    /// Starts one more instance on the cluster's stores, as a deploy adds one: it loads
    /// the revocation log before it serves.
    pub async fn join(&mut self) {
        let index = self.instances.len();
        let (pg_target, redis_target) = self.targets;
        let postgres = TcpProxy::start(pg_target).await;
        let redis = TcpProxy::start(redis_target).await;
        let mut settings = test_settings();
        settings.redis.command_timeout_ms =
            u64::try_from(self.command_timeout.as_millis()).unwrap_or(u64::MAX);
        settings.redis.key_prefix.clone_from(&self.key_prefix);
        settings.sessions.revocation_bound_ms = CONFIGURED_BOUND_MS;
        if let Some(configure) = &self.configure {
            configure(index, &mut settings);
        }
        // Statements and checkouts bounded as in production, not as the other tests' pools
        // (30 s): a request on a link the test cut gives up within seconds.
        let pg_settings = PgSettings {
            acquire_timeout: STORE_TIMEOUT,
            statement_timeout: STORE_TIMEOUT,
            ..testing::settings(through(&self.database_url, &postgres))
        };
        let pool = PgPool::connect(&pg_settings)
            .await
            .expect("a pool through the proxy");
        let cache = RedisSessionCache::connect(RedisSettings {
            url: through(&self.redis_url, &redis),
            key_prefix: self.key_prefix.clone(),
            command_timeout: self.command_timeout,
        })
        .await
        .expect("a cache through the proxy");
        let app = TestApp::spawn_on(settings, Storage::postgres(pool, Some(cache))).await;
        self.instances.push(Instance {
            name: ["A", "B", "C", "D", "E"]
                .get(index)
                .copied()
                .unwrap_or("N")
                .to_owned(),
            app,
            redis,
            postgres,
        });
    }
}
/// One sessiond of the cluster, with its own links to the stores.
#[derive(Debug)]
pub struct Instance {
    /// A, B, C: for messages.
    pub name: String,
    pub app: TestApp,
    /// This instance's link to Redis.
    pub redis: TcpProxy,
    /// This instance's link to PostgreSQL (every pooled connection, the listener's too).
    pub postgres: TcpProxy,
}

impl Deref for Instance {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Instance {
    /// `GET /api/v1/sessions/current` with `access_token`.
    pub async fn whoami(&self, access_token: &str) -> Reply {
        self.app.get("/api/v1/sessions/current", access_token).await
    }

    /// Whether this instance accepts `access_token` (200); anything but 200 or 401 fails the
    /// test.
    pub async fn accepts(&self, access_token: &str) -> bool {
        let reply = self.whoami(access_token).await;
        match reply.status {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => false,
            other => panic!(
                "instance {}: GET /sessions/current answered {other}: {:?}",
                self.name, reply.body
            ),
        }
    }

    /// Signs `email` in with `password`; the reply as it is.
    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.app.try_login(email, password, WINDOWS).await
    }
}

/// Several instances on one store: see the module docs.
pub struct Cluster {
    pub instances: Vec<Instance>,
    /// The database, directly (not through a proxy).
    pub database_url: String,
    /// Redis, directly (not through a proxy).
    pub redis_url: String,
    /// Every instance's Redis key prefix.
    pub key_prefix: String,
    /// A direct SQL connection to the database.
    pub sql: tokio_postgres::Client,
    sql_task: JoinHandle<()>,
    redis_server: Option<RedisServer>,
    /// Where the instances' proxies forward to: PostgreSQL, Redis.
    targets: (SocketAddr, SocketAddr),
    command_timeout: Duration,
    configure: Option<Configure>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("instances", &self.instances)
            .field("database_url", &self.database_url)
            .field("redis_url", &self.redis_url)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl Index<usize> for Cluster {
    type Output = Instance;

    fn index(&self, index: usize) -> &Instance {
        &self.instances[index]
    }
}

/// A session's row in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub is_active: bool,
    pub reason: Option<String>,
    pub role: String,
    /// Live: active and not expired, by the database's clock.
    pub live: bool,
}

impl Cluster {
    /// A cluster of `instances` on the shared Redis, with the default settings.
    pub fn builder(instances: usize) -> ClusterBuilder {
        assert!((1..=5).contains(&instances), "1 to 5 instances");
        ClusterBuilder {
            instances,
            private_redis: false,
            command_timeout: COMMAND_TIMEOUT,
            configure: None,
        }
    }

    /// Starts `instances` instances with the default settings.
    pub async fn start(instances: usize) -> Self {
        Self::builder(instances).start().await
    }

    /// Stops every server and closes the direct connections.
    pub async fn stop(self) {
        for instance in self.instances {
            instance.app.stop().await;
            drop(instance.redis);
            drop(instance.postgres);
        }
        self.sql_task.abort();
        drop(self.redis_server);
    }

    /// Creates a user of `role` with [`PASSWORD`]; returns its e-mail and id.
    pub async fn create_user(&self, role: Role) -> (String, String) {
        let email = self.instances[0].create_user(role).await;
        let id = self.user_id(&email).await;
        (email, id)
    }

    /// A new `system_admin`, signed in on the first instance.
    pub async fn admin(&self) -> Device {
        let (email, _) = self.create_user(Role::SystemAdmin).await;
        self.instances[0].login(&email, WINDOWS).await
    }

    /// The id of the user with `email`.
    pub async fn user_id(&self, email: &str) -> String {
        self.sql
            .query_one("SELECT id::text FROM users WHERE email = $1", &[&email])
            .await
            .expect("the user exists")
            .get(0)
    }

    /// The ids of `user_id`'s live sessions, as PostgreSQL has them.
    pub async fn live_sessions(&self, user_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sql
            .query(
                "SELECT id::text FROM user_sessions \
                 WHERE user_id = $1::text::uuid AND is_active AND expires_at > now()",
                &[&user_id],
            )
            .await
            .expect("the live sessions")
            .iter()
            .map(|row| row.get(0))
            .collect();
        ids.sort();
        ids
    }

    /// How many sessions `user_id` has ever had (live or ended): how many sign-ins committed.
    pub async fn session_count(&self, user_id: &str) -> usize {
        let count: i64 = self
            .sql
            .query_one(
                "SELECT count(*) FROM user_sessions WHERE user_id = $1::text::uuid",
                &[&user_id],
            )
            .await
            .expect("the session count")
            .get(0);
        usize::try_from(count).unwrap_or(0)
    }

    /// A session's row, if it exists.
    pub async fn session(&self, session_id: &str) -> Option<SessionRow> {
        self.sql
            .query_opt(
                "SELECT is_active, invalidation_reason::text, role, \
                        is_active AND expires_at > now() \
                 FROM user_sessions WHERE id = $1::text::uuid",
                &[&session_id],
            )
            .await
            .expect("the session's row")
            .map(|row| SessionRow {
                is_active: row.get(0),
                reason: row.get(1),
                role: row.get(2),
                live: row.get(3),
            })
    }

    /// Whether the session's refresh token has been rotated at least once.
    pub async fn rotated(&self, session_id: &str) -> bool {
        self.sql
            .query_opt(
                "SELECT 1 FROM user_sessions \
                 WHERE id = $1::text::uuid AND refresh_rotated_at IS NOT NULL",
                &[&session_id],
            )
            .await
            .expect("the session's rotation")
            .is_some()
    }

    /// Backends of this database that wait for a lock: a security event queued behind a
    /// sign-in's transaction.
    pub async fn lock_waiters(&self) -> i64 {
        self.sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0)
    }

    /// Runs `redis-cli` on the cluster's Redis, directly; its standard output.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        let (host, port) = authority(&self.redis_url)
            .1
            .rsplit_once(':')
            .expect("host:port");
        let output = Command::new("redis-cli")
            .args(["-h", host, "-p", port])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The Redis key of a session (SPEC §3), under the cluster's prefix.
    pub fn session_key(&self, user_id: &str, session_id: &str) -> String {
        format!("{}session:{{{user_id}}}:{session_id}", self.key_prefix)
    }

    /// Deletes a session's Redis key behind every instance's back: the next read misses.
    pub fn evict(&self, user_id: &str, session_id: &str) {
        let key = self.session_key(user_id, session_id);
        self.redis_cli(&["DEL", &key]);
    }

    /// The names of the instances that accept `access_token`.
    pub async fn accepting(&self, access_token: &str) -> Vec<String> {
        let mut accepting = Vec::new();
        for instance in &self.instances {
            if instance.accepts(access_token).await {
                accepting.push(instance.name.clone());
            }
        }
        accepting
    }

    /// Polls every instance until none accepts any of `tokens`, for at most `within`;
    /// fails the test with what was still accepted.
    pub async fn refused_within(&self, tokens: &[&str], within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        loop {
            let mut accepted = Vec::new();
            for (i, token) in tokens.iter().enumerate() {
                let on = self.accepting(token).await;
                if !on.is_empty() {
                    accepted.push(format!("token {i} on {}", on.join(",")));
                }
            }
            if accepted.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still accepted after {within:?}: {}",
                accepted.join("; ")
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Checks every instance `rounds` times, `every` apart: none may accept any of `tokens`.
    pub async fn stay_refused(&self, tokens: &[&str], rounds: usize, every: Duration, what: &str) {
        for round in 0..rounds {
            for (i, token) in tokens.iter().enumerate() {
                let on = self.accepting(token).await;
                assert!(
                    on.is_empty(),
                    "{what}: token {i} accepted again on {} (round {round})",
                    on.join(",")
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Lifts every hold and waits until the held bytes have reached the stores.
    pub async fn heal(&self) {
        for instance in &self.instances {
            instance.redis.restore();
            instance.postgres.restore();
        }
        for instance in &self.instances {
            assert!(
                instance
                    .redis
                    .wait_until_drained(Duration::from_secs(5))
                    .await,
                "instance {}: held Redis bytes were not delivered",
                instance.name
            );
            assert!(
                instance
                    .postgres
                    .wait_until_drained(Duration::from_secs(5))
                    .await,
                "instance {}: held PostgreSQL bytes were not delivered",
                instance.name
            );
        }
    }
}

/// Calls of the API the revocation tests share.
impl Instance {
    /// `DELETE /api/v1/admin/sessions/{id}` as `admin`; expects 2xx.
    pub async fn admin_revoke(&self, admin: &Device, session_id: &str) {
        let reply = self
            .delete(
                &format!("/api/v1/admin/sessions/{session_id}"),
                &admin.access_token,
            )
            .await;
        assert!(
            reply.status.is_success(),
            "instance {}: admin revoke answered {}: {:?}",
            self.name,
            reply.status,
            reply.body
        );
    }

    /// `PATCH /api/v1/admin/users/{id}` as `admin`.
    pub async fn admin_update(&self, admin: &Device, user_id: &str, change: Value) -> Reply {
        self.call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(&admin.access_token),
            Some(change),
        )
        .await
    }

    /// `POST /api/v1/users/me/password` from `device`, from [`PASSWORD`] to `new_password`.
    pub async fn change_password(&self, device: &Device, new_password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/users/me/password",
            Some(&device.access_token),
            Some(json!({ "current_password": PASSWORD, "new_password": new_password })),
        )
        .await
    }
}

/// A signed-in device read from a 200 sign-in or refresh reply.
pub fn device(reply: &Reply) -> Device {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    Device {
        access_token: text(&reply.body["access_token"]),
        refresh_token: text(&reply.body["refresh_token"]),
        session_id: text(&reply.body["session"]["id"]),
        body: reply.body.clone(),
    }
}

/// The claims of a JWT, unverified (the test only reads what the service signed).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// `url` with its `host:port` replaced by the proxy's.
fn through(url: &str, proxy: &TcpProxy) -> String {
    let (scheme_and_user, _, rest) = authority(url);
    format!("{scheme_and_user}{}{rest}", proxy.addr())
}

/// Splits `scheme://[user@]host:port/rest` into (`scheme://[user@]`, `host:port`, `/rest`).
fn authority(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let start = url[start..]
        .find('@')
        .filter(|at| !url[start..start + at].contains('/'))
        .map_or(start, |at| start + at + 1);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |end| start + end);
    (&url[..start], &url[start..end], &url[end..])
}

async fn resolve(host_port: &str) -> SocketAddr {
    tokio::net::lookup_host(host_port)
        .await
        .expect("a resolvable host")
        .find(SocketAddr::is_ipv4)
        .expect("an IPv4 address")
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn urls_split_around_the_authority() {
        assert_eq!(
            authority("postgres://postgres@127.0.0.1:5432/db?x=1"),
            ("postgres://postgres@", "127.0.0.1:5432", "/db?x=1")
        );
        assert_eq!(
            authority("redis://127.0.0.1:6379"),
            ("redis://", "127.0.0.1:6379", "")
        );
    }
}
