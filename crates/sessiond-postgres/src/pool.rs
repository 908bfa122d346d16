//! The connection pool and the embedded migrations.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::Object;
use diesel::ConnectionError;
use diesel::migration::{MigrationSource, MigrationVersion};
use diesel::pg::Pg;
use diesel::result::{ConnectionResult, DatabaseErrorKind, QueryResult};
use diesel::sql_types::Bool;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;

use crate::PgError;

/// The migrations in the repository's top-level `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Key of the session-level advisory lock held while migrating, so that instances starting
/// together apply each migration once instead of failing on each other's tables.
const MIGRATION_LOCK_KEY: i64 = 0x7365_7373_696f_6e64; // "sessiond"

/// How to reach PostgreSQL.
#[derive(Clone)]
pub struct PgSettings {
    /// `postgres://user:password@host:port/database[?options]`.
    pub url: String,
    /// Most connections the pool opens.
    pub max_connections: usize,
    /// How long a caller waits for a connection (and for a new one to be established)
    /// before the store reports itself unavailable.
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout`, set on every new connection; zero disables it.
    pub statement_timeout: Duration,
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &redact_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// The URL with any password replaced, fit for logs.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// A pool of PostgreSQL connections: cheap to clone, shared by the repositories.
#[derive(Clone)]
pub struct PgPool {
    pool: Pool<AsyncPgConnection>,
    /// What the pool was built from: a connection of its own (the revocation listener)
    /// reaches the same database the same way.
    settings: Arc<PgSettings>,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgPool")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .field("available", &status.available)
            .finish()
    }
}

pub(crate) type PgConnection = Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

impl PgPool {
    /// Builds the pool. Connections are opened lazily, on first use, so a service can start
    /// while PostgreSQL is down and report itself not ready ([`Self::ping`]) until it is up.
    ///
    /// # Errors
    /// [`PgError::Config`] when the pool cannot be built from `settings`.
    pub async fn connect(settings: &PgSettings) -> Result<PgPool, PgError> {
        let statement_timeout_ms = settings.statement_timeout.as_millis();
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        config.custom_setup = Box::new(move |url| establish(url, statement_timeout_ms).boxed());
        config.recycling_method =
            RecyclingMethod::CustomFunction(Box::new(|conn| still_writable(conn).boxed()));
        let settings = PgSettings {
            url: with_connect_timeout(&settings.url, settings.acquire_timeout),
            ..settings.clone()
        };
        let manager = AsyncDieselConnectionManager::new_with_config(settings.url.clone(), config);
        let pool = Pool::builder(manager)
            .max_size(settings.max_connections.max(1))
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.acquire_timeout))
            .recycle_timeout(Some(settings.acquire_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(PgError::Config)?;
        Ok(PgPool {
            pool,
            settings: Arc::new(settings),
        })
    }

    /// The settings the pool was built from; when the URL names several hosts and no
    /// `connect_timeout`, with one added (each host's share of the acquire timeout, so that
    /// a dead primary that swallows packets does not hide the next host).
    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }

    /// Checks that PostgreSQL answers a trivial query.
    ///
    /// # Errors
    /// [`PgError`] when no connection can be had or the query fails.
    pub async fn ping(&self) -> Result<(), PgError> {
        let mut conn = self.get().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await?;
        Ok(())
    }

    /// A connection from the pool, waiting at most the acquire timeout.
    pub(crate) async fn get(&self) -> Result<PgConnection, PgError> {
        Ok(self.pool.get().await?)
    }
}

/// Opens one connection and applies the per-connection settings.
async fn establish(url: &str, statement_timeout_ms: u128) -> ConnectionResult<AsyncPgConnection> {
    let mut conn = match AsyncPgConnection::establish(url).await {
        Ok(conn) => conn,
        Err(error) => return Err(explained(url, error).await),
    };
    diesel::sql_query(format!("SET statement_timeout = {statement_timeout_ms}"))
        .execute(&mut conn)
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    // Overload is told apart from bugs by PostgreSQL's messages (see `error.rs`): ask for
    // them untranslated. Only roles allowed to set `lc_messages` may; the others keep the
    // server's language, which is English unless someone chose otherwise.
    if diesel::sql_query("SET lc_messages = 'C'")
        .execute(&mut conn)
        .await
        .is_err()
    {
        tracing::debug!("lc_messages cannot be set by this role; the server's messages stay");
    }
    Ok(conn)
}

/// With several hosts (a primary and its standbys, `target_session_attrs=read-write`), the
/// driver tries them in turn, each until it answers or its `connect_timeout` runs out.
/// Without one, a host that swallows packets (the machine of a failed primary) holds every
/// attempt until the checkout gives up, and the next host, the new primary, is never
/// tried. Unless the URL sets it, each host gets an equal share of `acquire_timeout`, at
/// least a second (the driver counts whole seconds).
pub(crate) fn with_connect_timeout(url: &str, acquire_timeout: Duration) -> String {
    let hosts = hosts_and_ports(url).len();
    if hosts < 2 || url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let share = (acquire_timeout.as_secs() / hosts as u64).max(1);
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={share}")
}

/// The check a pooled connection passes before each use, in the one round trip that
/// diesel-async's default check (`SELECT 1`) takes: the server answers, and still takes
/// writes. After a failover, a connection to a server that became read-only (a primary
/// fenced with `default_transaction_read_only`, or anything answering in recovery) is
/// dropped instead of being handed out to fail every write; the pool opens a new one, which
/// `target_session_attrs=read-write` sends to the new primary. A connection to a server that
/// is gone fails the check, or is dropped before it as closed.
async fn still_writable(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Bool)]
        read_only: bool,
    }
    let mode: Mode =
        diesel::sql_query("SELECT current_setting('transaction_read_only')::bool AS read_only")
            .get_result(conn)
            .await?;
    if mode.read_only {
        return Err(diesel::result::Error::DatabaseError(
            DatabaseErrorKind::ReadOnlyTransaction,
            Box::new("the server no longer accepts writes".to_owned()),
        ));
    }
    Ok(())
}

/// The driver says only "error connecting to server" when the server cannot be reached:
/// name the hosts and ports and the operating system's reasons, which is what an operator
/// needs to fix it ("connection refused", "no route to host", a name that does not
/// resolve). With several hosts (a primary and its standbys), the driver reports the last
/// host's error only: every host is named, and when some answer but none accepts writes,
/// that is said (a failover under way, or only standbys listed). Any other failure
/// (authentication, a missing database) is kept as it is.
async fn explained(url: &str, error: ConnectionError) -> ConnectionError {
    let hosts = hosts_and_ports(url);
    if hosts.is_empty() {
        return error;
    }
    let probes = futures::future::join_all(hosts.iter().map(|(host, port)| async move {
        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tokio::net::TcpStream::connect((host.as_str(), *port)),
        )
        .await;
        let reason = match probe {
            Ok(Ok(_)) => None,
            Ok(Err(os)) => Some(os.to_string()),
            Err(_) => Some("no answer within 2 s".to_owned()),
        };
        (format!("{host}:{port}"), reason)
    }))
    .await;
    let unreachable: Vec<String> = probes
        .iter()
        .filter_map(|(at, reason)| reason.as_ref().map(|reason| format!("{at}: {reason}")))
        .collect();
    if unreachable.len() == probes.len() {
        return ConnectionError::BadConnection(format!(
            "cannot reach PostgreSQL at {}",
            unreachable.join("; ")
        ));
    }
    // The driver's refusal of a read-only server reaches us as its bare "error connecting
    // to server" (diesel-async keeps no cause): ask each host that answers, alone, whether
    // it takes writes.
    if url.contains("target_session_attrs=read-write") {
        let answering: Vec<&(String, Option<String>)> = probes
            .iter()
            .filter(|(_, reason)| reason.is_none())
            .collect();
        let mut read_only = Vec::new();
        for ((host, port), (at, reason)) in hosts.iter().zip(&probes) {
            if reason.is_none() && answers_read_only(url, host, *port).await {
                read_only.push(at.as_str());
            }
        }
        if !read_only.is_empty() && read_only.len() == answering.len() {
            let mut message = format!(
                "no PostgreSQL primary among the hosts of DATABASE_URL: {} answered read-only \
                 (a standby; a failover may be under way)",
                read_only.join(", ")
            );
            if !unreachable.is_empty() {
                message.push_str(&format!("; cannot reach {}", unreachable.join("; ")));
            }
            return ConnectionError::BadConnection(message);
        }
    }
    error
}

/// Whether the server at `host:port`, reached with `url`'s other settings, is up and takes
/// no writes (a standby), within 2 s.
async fn answers_read_only(url: &str, host: &str, port: u16) -> bool {
    let Some(alone) = single_host_url(url, host, port) else {
        return false;
    };
    let asked = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut conn = AsyncPgConnection::establish(&alone).await.ok()?;
        Some(still_writable(&mut conn).await)
    })
    .await;
    matches!(
        asked,
        Ok(Some(Err(diesel::result::Error::DatabaseError(
            DatabaseErrorKind::ReadOnlyTransaction,
            _
        ))))
    )
}

/// `url` with `host:port` as its only host and any server accepted.
fn single_host_url(url: &str, host: &str, port: u16) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let user = authority
        .rsplit_once('@')
        .map_or(String::new(), |(user, _)| format!("{user}@"));
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let tail = tail.replace(
        "target_session_attrs=read-write",
        "target_session_attrs=any",
    );
    Some(format!("{scheme}://{user}{host}:{port}{tail}"))
}

/// The hosts and ports of a `postgres://` URL, in order (5432 for a host without a port):
/// `postgres://u@a:5432,b:5433/db` names two.
fn hosts_and_ports(url: &str) -> Vec<(String, u16)> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    hosts.split(',').map_while(host_and_port).collect()
}

/// One `host[:port]` of a URL's host list.
fn host_and_port(host: &str) -> Option<(String, u16)> {
    let (host, port) = match host.strip_prefix('[') {
        // [2001:db8::1]:5433
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host, None),
        },
    };
    let port = port.map_or(Some(5432), |port| port.parse().ok())?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// Applies the pending embedded migrations and returns the names of those it applied, in
/// order (empty when the schema is up to date). Safe to call from several instances at once:
/// they take turns on an advisory lock.
///
/// # Errors
/// [`PgError::Pool`] when no connection can be had, [`PgError::Migration`] when a migration
/// fails (that migration is rolled back; earlier ones stay applied).
pub async fn run_migrations(pool: &PgPool) -> Result<Vec<String>, PgError> {
    // Taken out of the pool: if anything below fails, dropping the connection closes it and
    // releases the advisory lock, instead of returning a locked connection to the pool.
    let mut conn = Object::take(pool.get().await?);
    // A migration may legitimately outlast the request-sized statement timeout (an index on
    // a big table); this connection is closed afterwards, so the change dies with it.
    diesel::sql_query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)
        .await?;
    // The harness drives the async connection from synchronous diesel code with
    // `block_in_place`; on a blocking thread that works under any runtime flavour.
    let (mut conn, applied) = tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        let applied = harness
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| migration_names(&versions));
        (harness.into_inner(), applied)
    })
    .await
    .map_err(|join| PgError::Migration(Box::new(join)))?;
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)
        .await?;
    applied.map_err(PgError::Migration)
}

/// The full names (`<version>_<name>`) of the embedded migrations with these versions.
fn migration_names(applied: &[MigrationVersion<'_>]) -> Vec<String> {
    let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS).unwrap_or_default();
    applied
        .iter()
        .map(|version| {
            migrations
                .iter()
                .find(|migration| migration.name().version() == *version)
                .map_or_else(
                    || version.to_string(),
                    |migration| migration.name().to_string(),
                )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_of_the_url_is_named_with_its_port() {
        let at = |url: &str| hosts_and_ports(url);
        assert_eq!(at("postgres://u:p@db:5433/x"), vec![("db".into(), 5433)]);
        assert_eq!(at("postgres://db/x"), vec![("db".into(), 5432)]);
        assert_eq!(
            at("postgres://u@a:1,b:2/x?target_session_attrs=read-write"),
            vec![("a".into(), 1), ("b".into(), 2)]
        );
        assert_eq!(
            at("postgres://a,[::1]:6000,c/x"),
            vec![("a".into(), 5432), ("::1".into(), 6000), ("c".into(), 5432)]
        );
        assert_eq!(at("postgres://[::1]/x"), vec![("::1".into(), 5432)]);
        assert_eq!(at("not a url"), vec![]);
    }

    #[test]
    fn one_host_of_several_is_asked_alone() {
        assert_eq!(
            single_host_url(
                "postgres://u:p@a:1,b:2/db?target_session_attrs=read-write&x=y",
                "b",
                2
            )
            .as_deref(),
            Some("postgres://u:p@b:2/db?target_session_attrs=any&x=y")
        );
        assert_eq!(
            single_host_url("postgres://a,[::1]:6000/db", "::1", 6000).as_deref(),
            Some("postgres://[::1]:6000/db")
        );
    }

    #[test]
    fn each_of_several_hosts_gets_a_share_of_the_acquire_timeout_to_connect() {
        let within = |url: &str, secs| with_connect_timeout(url, Duration::from_secs(secs));
        assert_eq!(within("postgres://u@a/db", 5), "postgres://u@a/db");
        assert_eq!(
            within("postgres://u@a:1,b:2/db?target_session_attrs=read-write", 4),
            "postgres://u@a:1,b:2/db?target_session_attrs=read-write&connect_timeout=2"
        );
        assert_eq!(
            within("postgres://u@a,b,c/db", 2),
            "postgres://u@a,b,c/db?connect_timeout=1"
        );
        assert_eq!(
            within("postgres://u@a,b/db?connect_timeout=9", 2),
            "postgres://u@a,b/db?connect_timeout=9"
        );
    }

    #[tokio::test]
    async fn an_unreachable_primary_and_standby_are_both_named() {
        // Bound and released: nothing listens there any more (refused at once).
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|addr| addr.port())
                .unwrap()
        };
        let (first, second) = (free(), free());
        let url = format!(
            "postgres://postgres@127.0.0.1:{first},127.0.0.1:{second}/x\
             ?target_session_attrs=read-write"
        );
        let error = establish(&url, 0).await.err().unwrap().to_string();
        assert!(
            error.contains(&format!("127.0.0.1:{first}: "))
                && error.contains(&format!("127.0.0.1:{second}: ")),
            "{error}"
        );
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        let settings = PgSettings {
            url: "postgres://app:s3cret@db:5432/sessiond?sslmode=disable".into(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("postgres://app:***@db:5432/sessiond?sslmode=disable"));
        assert_eq!(
            redact_password("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
    }
}
