//! Chooses the storage adapters from the settings (SPEC §7): PostgreSQL when `DATABASE_URL`
//! is set, with Redis in front of it when `REDIS_URL` is set too; in-memory otherwise.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sessiond_domain::caching::CachedSessionRepository;
use sessiond_domain::ports::{
    AttemptCounter, SessionCache, SessionCleanup, SessionRepository, UserAdministration,
    UserRepository,
};
use sessiond_memory::{MemoryAttemptCounter, MemorySessionRepository, MemoryUserRepository};
use sessiond_postgres::{
    PgAttemptCounter, PgPool, PgSessionCleanup, PgSessionRepository, PgSettings, PgUserRepository,
    run_migrations,
};
use sessiond_redis::{RedisSessionCache, RedisSettings};

use crate::config::Settings;

/// The storage ports, wired.
#[derive(Clone)]
pub struct Storage {
    pub users: Arc<dyn UserRepository>,
    pub administration: Arc<dyn UserAdministration>,
    pub sessions: Arc<dyn SessionRepository>,
    pub cleanup: Arc<dyn SessionCleanup>,
    pub attempts: Arc<dyn AttemptCounter>,
    /// The live-session cache, when one is configured (already composed into `sessions`).
    pub cache: Option<Arc<dyn SessionCache>>,
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
        let sessions = Arc::new(MemorySessionRepository::new());
        Self {
            users: users.clone(),
            administration: users,
            sessions: sessions.clone(),
            cleanup: sessions,
            attempts: Arc::new(MemoryAttemptCounter::new()),
            cache: None,
            probes: Probes::default(),
        }
    }

    /// PostgreSQL as the durable record, with `cache` in front of session validation.
    pub fn postgres(pool: PgPool, cache: Option<RedisSessionCache>) -> Self {
        let users = Arc::new(PgUserRepository::new(pool.clone()));
        let durable: Arc<dyn SessionRepository> = Arc::new(PgSessionRepository::new(pool.clone()));
        let (sessions, cache_port): (Arc<dyn SessionRepository>, Option<Arc<dyn SessionCache>>) =
            match &cache {
                Some(redis) => {
                    let port: Arc<dyn SessionCache> = Arc::new(redis.clone());
                    let cached = CachedSessionRepository::new(Arc::clone(&port), durable);
                    (Arc::new(cached), Some(port))
                }
                None => (durable, None),
            };
        Self {
            users: users.clone(),
            administration: users,
            sessions,
            cleanup: Arc::new(PgSessionCleanup::new(pool.clone())),
            attempts: Arc::new(PgAttemptCounter::new(pool.clone())),
            cache: cache_port,
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
