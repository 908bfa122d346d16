//! What operations read of the external stores: whether each answers (`/health/ready`) and
//! what the cache has counted (`/metrics`). The HTTP layer sees these traits, never the
//! adapters behind them.

use std::sync::Arc;

use async_trait::async_trait;
use sessiond_postgres::PgPool;
use sessiond_redis::RedisSessionCache;

/// A store that readiness asks whether it answers.
#[async_trait]
pub trait ReadinessProbe: Send + Sync {
    /// Whether the store answers now. The caller bounds how long it waits.
    async fn check(&self) -> bool;
}

/// What the live-session cache has counted since start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that found no entry, or a tombstone.
    pub misses: u64,
    /// Commands that failed: their reads fell back to PostgreSQL.
    pub fallbacks: u64,
    /// Whether the cache is considered unreachable now.
    pub down: bool,
}

/// A cache that counts its reads, published at scrape time.
pub trait CacheStatistics: Send + Sync {
    fn counts(&self) -> CacheCounts;
}

/// A Redis Cluster's state, as one of its nodes sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterState {
    /// Every slot is served by a primary that node deems reachable (`cluster_state:ok`).
    pub ok: bool,
    /// Nodes known to the cluster, primaries and replicas, reachable or not.
    pub known_nodes: u64,
    /// Primaries serving slots.
    pub primaries: u64,
}

/// A cache on a Redis Cluster, which readiness and metrics ask for the cluster's state.
#[async_trait]
pub trait ClusterProbe: Send + Sync {
    /// The cluster's state; `None` when no node answers. The caller bounds how long it
    /// waits.
    async fn state(&self) -> Option<ClusterState>;
}

/// The stores of this instance as operations see them; `None` for a store not configured.
#[derive(Clone, Default)]
pub struct StoreProbes {
    pub postgres: Option<Arc<dyn ReadinessProbe>>,
    pub redis: Option<Arc<dyn ReadinessProbe>>,
    pub cache: Option<Arc<dyn CacheStatistics>>,
    /// The cache's cluster, when it runs on one (`REDIS_CLUSTER_URLS`).
    pub redis_cluster: Option<Arc<dyn ClusterProbe>>,
}

impl std::fmt::Debug for StoreProbes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreProbes")
            .field("postgres", &self.postgres.is_some())
            .field("redis", &self.redis.is_some())
            .field("redis_cluster", &self.redis_cluster.is_some())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ReadinessProbe for PgPool {
    async fn check(&self) -> bool {
        self.ping().await.is_ok()
    }
}

#[async_trait]
impl ReadinessProbe for RedisSessionCache {
    async fn check(&self) -> bool {
        self.ping().await.is_ok()
    }
}

#[async_trait]
impl ClusterProbe for RedisSessionCache {
    async fn state(&self) -> Option<ClusterState> {
        let health = self.cluster_health().await.ok().flatten()?;
        Some(ClusterState {
            ok: health.ok,
            known_nodes: health.known_nodes,
            primaries: health.primaries,
        })
    }
}

impl CacheStatistics for RedisSessionCache {
    fn counts(&self) -> CacheCounts {
        let stats = self.stats();
        CacheCounts {
            hits: stats.hits,
            misses: stats.misses,
            fallbacks: stats.errors,
            down: stats.outage,
        }
    }
}
