//! Chooses the storage adapters from the settings (SPEC §7): PostgreSQL when `DATABASE_URL`
//! is set, with Redis in front of it when `REDIS_URL` is set too; in-memory otherwise.
//! The adapters are only chosen here; `startup` composes them with the domain's caching
//! and revocation feed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sessiond_domain::ports::{
    AttemptCounter, RevocationLog, SessionCache, SessionCleanup, SessionRepository,
    UserAdministration, UserRepository,
};
use sessiond_memory::{MemoryAttemptCounter, MemorySessionRepository, MemoryUserRepository};
use sessiond_postgres::{
    PgAttemptCounter, PgPool, PgRevocationLog, PgSessionCleanup, PgSessionRepository, PgSettings,
    PgUserRepository, run_migrations,
};
use sessiond_redis::{RedisSessionCache, RedisSettings};

use crate::config::Settings;

/// The storage ports, wired.
#[derive(Clone)]
pub struct Storage {
    pub users: Arc<dyn UserRepository>,
    pub administration: Arc<dyn UserAdministration>,
    /// The durable record of sessions.
    pub sessions: Arc<dyn SessionRepository>,
    pub cleanup: Arc<dyn SessionCleanup>,
    pub attempts: Arc<dyn AttemptCounter>,
    /// The live-session cache in front of `sessions`, when one is configured.
    pub cache: Option<Arc<dyn SessionCache>>,
    /// The revocation log that keeps every instance's cache honest; only a store shared by
    /// several instances has one.
    pub revocation_log: Option<Arc<dyn RevocationLog>>,
    /// What readiness checks.
    pub probes: Probes,
}

/// Handles to the external stores, for readiness checks.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    pub postgres: Option<PgPool>,
    pub redis: Option<RedisSessionCache>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("probes", &self.probes)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Process-local storage: everything is lost when the process stops.
    pub fn in_memory() -> Self {
        let users = Arc::new(MemoryUserRepository::new());
        let sessions = Arc::new(MemorySessionRepository::new(Arc::clone(&users)));
        Self {
            users: users.clone(),
            administration: users,
            sessions: sessions.clone(),
            cleanup: sessions,
            attempts: Arc::new(MemoryAttemptCounter::new()),
            cache: None,
            revocation_log: None,
            probes: Probes::default(),
        }
    }

    /// PostgreSQL as the durable record, with `cache` in front of session validation and
    /// the revocation log keeping it honest.
    pub fn postgres(pool: PgPool, cache: Option<RedisSessionCache>) -> Self {
        let users = Arc::new(PgUserRepository::new(pool.clone()));
        let cache_port = cache
            .clone()
            .map(|redis| Arc::new(redis) as Arc<dyn SessionCache>);
        // Without a cache every validation reads PostgreSQL: nothing to keep honest.
        let revocation_log = cache
            .as_ref()
            .map(|_| Arc::new(PgRevocationLog::new(pool.clone())) as Arc<dyn RevocationLog>);
        Self {
            users: users.clone(),
            administration: users,
            sessions: Arc::new(PgSessionRepository::new(pool.clone())),
            cleanup: Arc::new(PgSessionCleanup::new(pool.clone())),
            attempts: Arc::new(PgAttemptCounter::new(pool.clone())),
            cache: cache_port,
            revocation_log,
            probes: Probes {
                postgres: Some(pool),
                redis: cache,
            },
        }
    }

    /// The adapters the settings ask for. Unreachable stores do not stop start-up: requests
    /// answer 503 until they are back (readiness says so).
    ///
    /// # Errors
    /// When a URL is malformed or start-up migrations fail.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let Some(pool) = postgres_pool(settings).await? else {
            tracing::warn!(
                "no DATABASE_URL: using in-memory storage; every user and session is lost when sessiond stops"
            );
            return Ok(Self::in_memory());
        };
        if settings.database.migrate_on_start {
            let applied = run_migrations(&pool).await.context("start-up migrations")?;
            for name in applied {
                tracing::info!(migration = %name, "applied migration");
            }
        }
        let cache = match &settings.redis_url {
            Some(url) => Some(
                RedisSessionCache::connect(RedisSettings {
                    url: url.expose_secret().to_owned(),
                    key_prefix: settings.redis.key_prefix.clone(),
                    command_timeout: Duration::from_millis(settings.redis.command_timeout_ms),
                })
                .await
                .context("REDIS_URL")?,
            ),
            None => {
                tracing::info!("no REDIS_URL: every request validates against PostgreSQL");
                None
            }
        };
        Ok(Self::postgres(pool, cache))
    }
}

/// The PostgreSQL pool, if `DATABASE_URL` is set.
///
/// # Errors
/// When the URL cannot be used.
pub async fn postgres_pool(settings: &Settings) -> anyhow::Result<Option<PgPool>> {
    let Some(url) = &settings.database_url else {
        return Ok(None);
    };
    let pool = PgPool::connect(&PgSettings {
        url: url.expose_secret().to_owned(),
        max_connections: settings.database.max_connections,
        acquire_timeout: Duration::from_millis(settings.database.acquire_timeout_ms),
        statement_timeout: Duration::from_millis(settings.database.statement_timeout_ms),
    })
    .await
    .context("DATABASE_URL")?;
    Ok(Some(pool))
}
