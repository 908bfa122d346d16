//! Chooses the storage adapters from the settings (SPEC §7, §8): PostgreSQL when
//! `DATABASE_URL` is set, with Redis in front of it when `REDIS_URL` (one server) or
//! `REDIS_CLUSTER_URLS` (a Redis Cluster) is set too; in-memory otherwise.
//! The adapters are only chosen here; `services` composes them with the domain's caching
//! and revocation feed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sessiond_domain::ports::{
    AttemptCounter, Heartbeats, RevocationLog, SessionCache, SessionCleanup, SessionRepository,
    SessionStatistics, UserAdministration, UserDirectory, UserRepository,
};
use sessiond_memory::{MemoryAttemptCounter, MemorySessionRepository, MemoryUserRepository};
use sessiond_postgres::{
    PgAttemptCounter, PgPool, PgRevocationLog, PgSessionCleanup, PgSessionRepository,
    PgSessionStatistics, PgSettings, PgUserRepository, run_migrations,
};
use sessiond_redis::{RedisClusterSettings, RedisSessionCache, RedisSettings, Topology};

use crate::config::Settings;
use crate::probes::{CacheStatistics, ClusterProbe, ReadinessProbe, StoreProbes};

/// The storage ports, wired.
#[derive(Clone)]
pub struct Storage {
    pub users: Arc<dyn UserRepository>,
    pub administration: Arc<dyn UserAdministration>,
    /// The administrators' search of the same users.
    pub directory: Arc<dyn UserDirectory>,
    /// The durable record of sessions.
    pub sessions: Arc<dyn SessionRepository>,
    pub cleanup: Arc<dyn SessionCleanup>,
    pub attempts: Arc<dyn AttemptCounter>,
    /// The counts behind the administrators' statistics.
    pub statistics: Arc<dyn SessionStatistics>,
    /// The live-session cache in front of `sessions`, when one is configured.
    pub cache: Option<Arc<dyn ObservableCache>>,
    /// The revocation log that keeps every instance's cache honest; only a store shared by
    /// several instances has one.
    pub revocation_log: Option<Arc<dyn RevocationLog>>,
    /// Where the instances tell each other how far they have read the log (Redis).
    pub heartbeats: Option<Arc<dyn Heartbeats>>,
    /// The durable store, for readiness; `None` in memory.
    pub database_probe: Option<Arc<dyn ReadinessProbe>>,
    /// The cache's Redis Cluster, for readiness and metrics; `None` unless the cache runs
    /// on one.
    pub cluster_probe: Option<Arc<dyn ClusterProbe>>,
}

/// The live-session cache as the service runs it: the domain's port, and what operations
/// read of it.
pub trait ObservableCache: SessionCache + ReadinessProbe + CacheStatistics {}

impl<T: SessionCache + ReadinessProbe + CacheStatistics> ObservableCache for T {}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("database", &self.database_probe.is_some())
            .field("cache", &self.cache.is_some())
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
            administration: users.clone(),
            directory: users,
            sessions: sessions.clone(),
            cleanup: sessions.clone(),
            statistics: sessions,
            attempts: Arc::new(MemoryAttemptCounter::new()),
            cache: None,
            revocation_log: None,
            heartbeats: None,
            database_probe: None,
            cluster_probe: None,
        }
    }

    /// PostgreSQL as the durable record, with `cache` in front of session validation and
    /// the revocation log keeping it honest.
    pub fn postgres(pool: PgPool, cache: Option<RedisSessionCache>) -> Self {
        let users = Arc::new(PgUserRepository::new(pool.clone()));
        // Without a cache every validation reads PostgreSQL: nothing to keep honest.
        let revocation_log = cache
            .as_ref()
            .map(|_| Arc::new(PgRevocationLog::new(pool.clone())) as Arc<dyn RevocationLog>);
        Self {
            users: users.clone(),
            administration: users.clone(),
            directory: users,
            statistics: Arc::new(PgSessionStatistics::new(pool.clone())),
            sessions: Arc::new(PgSessionRepository::new(pool.clone())),
            cleanup: Arc::new(PgSessionCleanup::new(pool.clone())),
            attempts: Arc::new(PgAttemptCounter::new(pool.clone())),
            heartbeats: cache
                .clone()
                .map(|redis| Arc::new(redis) as Arc<dyn Heartbeats>),
            cluster_probe: cache
                .clone()
                .filter(|redis| redis.topology() == Topology::Cluster)
                .map(|redis| Arc::new(redis) as Arc<dyn ClusterProbe>),
            cache: cache.map(|redis| Arc::new(redis) as Arc<dyn ObservableCache>),
            revocation_log,
            database_probe: Some(Arc::new(pool)),
        }
    }

    /// The cache as the domain's port.
    pub fn session_cache(&self) -> Option<Arc<dyn SessionCache>> {
        self.cache
            .clone()
            .map(|cache| cache as Arc<dyn SessionCache>)
    }

    /// What readiness and metrics read of these stores.
    pub fn probes(&self) -> StoreProbes {
        StoreProbes {
            postgres: self.database_probe.clone(),
            redis: self
                .cache
                .clone()
                .map(|cache| cache as Arc<dyn ReadinessProbe>),
            cache: self
                .cache
                .clone()
                .map(|cache| cache as Arc<dyn CacheStatistics>),
            redis_cluster: self.cluster_probe.clone(),
        }
    }

    /// The adapters the settings ask for. Unreachable stores do not stop start-up: requests
    /// answer 503 until they are back (readiness says so).
    ///
    /// # Errors
    /// When a URL is malformed or start-up migrations fail.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let Some(pool) = postgres_pool(settings).await? else {
            if !settings.is_dev() && !settings.database.allow_in_memory {
                anyhow::bail!(
                    "no DATABASE_URL: outside dev mode sessiond keeps its users and sessions in \
                     PostgreSQL (set SESSIOND_DATABASE__ALLOW_IN_MEMORY=true for a throwaway \
                     instance that forgets everything at exit)"
                );
            }
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
        let cache = redis_cache(settings).await?;
        Ok(Self::postgres(pool, cache))
    }
}

/// The live-session cache the settings name: on one server (`REDIS_URL`), on a Redis
/// Cluster (`REDIS_CLUSTER_URLS`; the settings refuse both at once), or none.
///
/// # Errors
/// When a URL cannot be used.
async fn redis_cache(settings: &Settings) -> anyhow::Result<Option<RedisSessionCache>> {
    let key_prefix = settings.redis.key_prefix.clone();
    let command_timeout = Duration::from_millis(settings.redis.command_timeout_ms);
    if let Some(url) = &settings.redis_url {
        let cache = RedisSessionCache::connect(RedisSettings {
            url: url.expose_secret().to_owned(),
            key_prefix,
            command_timeout,
        })
        .await
        .context("REDIS_URL")?;
        return Ok(Some(cache));
    }
    if settings.redis_cluster_urls.is_some() {
        let cache = RedisSessionCache::connect_cluster(RedisClusterSettings {
            seeds: settings.redis_cluster_seeds(),
            key_prefix,
            command_timeout,
        })
        .await
        .context("REDIS_CLUSTER_URLS")?;
        return Ok(Some(cache));
    }
    tracing::info!(
        "no REDIS_URL nor REDIS_CLUSTER_URLS: every request validates against PostgreSQL"
    );
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn production_without_a_database_is_refused_unless_allowed() {
        let mut settings = Settings::default();
        let refused = Storage::connect(&settings).await.unwrap_err().to_string();
        assert!(refused.contains("no DATABASE_URL"), "{refused}");
        settings.database.allow_in_memory = true;
        let storage = Storage::connect(&settings).await.unwrap();
        assert!(storage.database_probe.is_none());
        let dev = Settings {
            env: crate::config::DEV_ENV.into(),
            ..Settings::default()
        };
        assert!(Storage::connect(&dev).await.is_ok());
    }
}
