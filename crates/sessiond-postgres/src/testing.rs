//! A freshly migrated database per test (feature `testing`).
//!
//! Test processes share one template database per version of `migrations/` (named after a
//! fingerprint of its files, computed by `build.rs`): the first process to need it creates
//! and migrates it under an advisory lock, so parallel test processes (nextest runs one per
//! test) neither race nor repeat the work. Every test then gets its own clone with
//! `CREATE DATABASE … TEMPLATE …`, a few tens of milliseconds.
//!
//! The server is `postgres://postgres@127.0.0.1:5432/postgres` unless `TEST_DATABASE_URL`
//! names another (any database on it: the helper only connects there to create others).
//! Test databases are named `sessiond_test_<unix seconds>_<uuid>`. They are not dropped
//! when a test ends (its pool may still hold connections), but each test process, once,
//! drops those older than an hour and the templates of other migration versions, so they
//! never pile up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::{PgError, PgPool, PgSettings, run_migrations};

/// The default server: the one in the development setup and in CI.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Test databases older than this are dropped (once per test process).
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Serialises template creation and cleanup among test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x7365_7373_7465_7374; // "sesstest"

const TEST_PREFIX: &str = "sessiond_test_";
const TEMPLATE_PREFIX: &str = "sessiond_tpl_";

/// This build's template: one per version of the migrations.
const TEMPLATE: &str = concat!("sessiond_tpl_", env!("SESSIOND_MIGRATIONS_FINGERPRINT"));

/// Set once the template exists and this process has cleaned up.
static READY: OnceCell<()> = OnceCell::const_new();

/// The server's URL: `TEST_DATABASE_URL` or [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// Settings for a pool on `url` that suit tests: enough connections for the contract
/// suite's parallel sign-ins, timeouts long enough for a loaded 2-core CI machine.
pub fn settings(url: String) -> PgSettings {
    PgSettings {
        url,
        max_connections: 8,
        acquire_timeout: Duration::from_secs(30),
        statement_timeout: Duration::from_secs(30),
    }
}

/// A pool on a new, fully migrated, empty database of its own.
///
/// # Errors
/// [`PgError`] when the server cannot be reached or a migration fails.
pub async fn fresh_pool() -> Result<PgPool, PgError> {
    PgPool::connect(&settings(fresh_database_url().await?)).await
}

/// The URL of a new, fully migrated, empty database of its own: for tests that need several
/// pools on one database (several service instances).
///
/// # Errors
/// [`PgError`] when the server cannot be reached or a migration fails.
pub async fn fresh_database_url() -> Result<String, PgError> {
    let admin = admin_url();
    READY.get_or_try_init(|| prepare_template(&admin)).await?;
    let name = database_name(TEST_PREFIX);
    let mut conn = AsyncPgConnection::establish(&admin).await?;
    clone_template(&mut conn, TEMPLATE, &name).await?;
    Ok(with_database(&admin, &name))
}

/// Drops stale databases and makes sure this build's template exists, under a lock
/// shared by all test processes on the server.
async fn prepare_template(admin: &str) -> Result<(), PgError> {
    let mut conn = AsyncPgConnection::establish(admin).await?;
    // Session-level lock, released when `conn` closes at the end of this function.
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .execute(&mut conn)
        .await?;
    drop_stale_databases(&mut conn).await?;
    let existing: Vec<TestDatabase> = diesel::sql_query(
        "SELECT datname, shobj_description(oid, 'pg_database') AS built FROM pg_database \
         WHERE datname = $1",
    )
    .bind::<Text, _>(TEMPLATE)
    .load(&mut conn)
    .await?;
    if !existing.is_empty() {
        return Ok(());
    }
    // Built under a temporary name and renamed when complete: a process that dies while
    // migrating leaves no half-migrated template behind (only a test database to clean).
    let building = database_name(TEST_PREFIX);
    diesel::sql_query(format!("CREATE DATABASE {building}"))
        .execute(&mut conn)
        .await?;
    let pool = PgPool::connect(&settings(with_database(admin, &building))).await?;
    run_migrations(&pool).await?;
    drop(pool);
    // Stamped with its time: other checkouts (other migrations, other templates) testing on
    // this server at the same time leave it alone until it is stale.
    diesel::sql_query(format!(
        "COMMENT ON DATABASE {building} IS '{}'",
        unix_seconds()
    ))
    .execute(&mut conn)
    .await?;
    retry_while_in_use(
        || diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {TEMPLATE}")),
        &mut conn,
    )
    .await
}

#[derive(QueryableByName)]
struct TestDatabase {
    #[diesel(sql_type = Text)]
    datname: String,
    /// A template's build time (unix seconds), from its comment.
    #[diesel(sql_type = Nullable<Text>)]
    built: Option<String>,
}

/// Drops the test databases (of any process) created over an hour ago, and the templates of
/// other migrations built over an hour ago (or unstamped).
async fn drop_stale_databases(conn: &mut AsyncPgConnection) -> Result<(), PgError> {
    let names: Vec<TestDatabase> = diesel::sql_query(
        "SELECT datname, shobj_description(oid, 'pg_database') AS built FROM pg_database \
         WHERE datname LIKE 'sessiond\\_test\\_%' OR datname LIKE 'sessiond\\_tpl\\_%'",
    )
    .load(conn)
    .await?;
    let cutoff = unix_seconds().saturating_sub(STALE_AFTER.as_secs());
    for TestDatabase { datname, built } in names {
        if datname.starts_with(TEMPLATE_PREFIX) {
            let built = built.and_then(|built| built.parse::<u64>().ok());
            if datname != TEMPLATE && built.is_none_or(|built| built < cutoff) {
                drop_best_effort(conn, &datname).await;
            }
            continue;
        }
        let created = datname
            .strip_prefix(TEST_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<u64>().ok());
        if created.is_some_and(|created| created < cutoff) {
            drop_best_effort(conn, &datname).await;
        }
    }
    Ok(())
}

/// Best effort: a database still in use by a stuck process is left for a later run.
async fn drop_best_effort(conn: &mut AsyncPgConnection, name: &str) {
    let dropped = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(conn)
        .await;
    if let Err(error) = dropped {
        eprintln!("could not drop stale test database {name}: {error}");
    }
}

/// `CREATE DATABASE name TEMPLATE template`, retried while the template still shows a
/// connection (the migration pool's backends exit asynchronously).
async fn clone_template(
    conn: &mut AsyncPgConnection,
    template: &str,
    name: &str,
) -> Result<(), PgError> {
    retry_while_in_use(
        || diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}")),
        conn,
    )
    .await
}

/// Runs `statement` until it no longer fails because a database it names still has
/// connections (backends of a closed pool exit asynchronously), for at most five seconds.
async fn retry_while_in_use(
    statement: impl Fn() -> diesel::query_builder::SqlQuery,
    conn: &mut AsyncPgConnection,
) -> Result<(), PgError> {
    let mut attempt = 0;
    loop {
        match statement().execute(conn).await {
            Ok(_) => return Ok(()),
            Err(error)
                if attempt < 50
                    && error
                        .to_string()
                        .contains("is being accessed by other users") =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A unique database name whose creation time can be read back for cleanup.
fn database_name(prefix: &str) -> String {
    format!("{prefix}{}_{}", unix_seconds(), Uuid::new_v4().simple())
}

#[expect(
    clippy::disallowed_methods,
    reason = "naming test databases by wall-clock time, not a domain decision"
)]
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_in_any_url_shape() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
