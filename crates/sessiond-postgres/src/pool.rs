//! The connection pool and the embedded migrations.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::Object;
use diesel::ConnectionError;
use diesel::migration::{MigrationSource, MigrationVersion};
use diesel::pg::Pg;
use diesel::result::ConnectionResult;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
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
            settings: Arc::new(settings.clone()),
        })
    }

    /// The settings the pool was built from.
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

/// The driver says only "error connecting to server" when the server cannot be reached:
/// name the host and port and the operating system's reason, which is what an operator
/// needs to fix it ("connection refused", "no route to host", a name that does not
/// resolve). Any other failure (authentication, a missing database) is kept as it is.
async fn explained(url: &str, error: ConnectionError) -> ConnectionError {
    let Some((host, port)) = host_and_port(url) else {
        return error;
    };
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await;
    match probe {
        Ok(Ok(_)) => error,
        Ok(Err(os)) => ConnectionError::BadConnection(format!(
            "cannot reach PostgreSQL at {host}:{port}: {os}"
        )),
        Err(_) => ConnectionError::BadConnection(format!(
            "cannot reach PostgreSQL at {host}:{port}: no answer within 2 s"
        )),
    }
}

/// The first host and port of a `postgres://` URL (5432 when none is given).
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    let first = hosts.split(',').next()?;
    let (host, port) = match first.strip_prefix('[') {
        // [2001:db8::1]:5433
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match first.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (first, None),
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
    fn the_host_and_port_to_name_come_from_the_first_host_of_the_url() {
        let at = |url: &str| host_and_port(url);
        assert_eq!(at("postgres://u:p@db:5433/x"), Some(("db".into(), 5433)));
        assert_eq!(at("postgres://db/x"), Some(("db".into(), 5432)));
        assert_eq!(
            at("postgres://u@a:1,b:2/x?target_session_attrs=read-write"),
            Some(("a".into(), 1))
        );
        assert_eq!(at("postgres://[::1]:6000/x"), Some(("::1".into(), 6000)));
        assert_eq!(at("postgres://[::1]/x"), Some(("::1".into(), 5432)));
        assert_eq!(at("not a url"), None);
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
