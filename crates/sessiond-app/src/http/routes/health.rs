//! Liveness (the process answers) and readiness (its stores answer too).

use std::time::Duration;

use actix_web::{HttpResponse, Scope, web};

use sessiond_domain::ports::Clock;
use sessiond_domain::trust::ValidationMode;

use crate::http::state::AppState;
use crate::http::views::{Liveness, Readiness, RedisClusterCheck, StoreStatus};
use crate::probes::{ClusterProbe, ReadinessProbe};
use crate::system::SystemClock;

/// How long readiness waits for each store: a probe must answer fast to be useful.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn scope() -> Scope {
    web::scope("/health")
        .service(web::resource("/live").route(web::get().to(live)))
        .service(web::resource("/ready").route(web::get().to(ready)))
}

/// The process answers.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Liveness))
)]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness::OK)
}

/// 200 while this instance can validate requests correctly, 503 only when it cannot: with
/// Redis, when validation has failed closed (SPEC §8); without, when PostgreSQL is down.
/// Each store's state is in the body either way, and the Redis Cluster's when the cache
/// runs on one. In-memory storage is always ready.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Requests are validated correctly", body = Readiness),
        (status = 503, description = "Validation has failed closed", body = Readiness),
    )
)]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let stores = &state.stores;
    let postgres = status(stores.postgres.as_deref()).await;
    let redis = status(stores.redis.as_deref()).await;
    let validation = match &state.trust {
        Some(trust) => trust.mode(SystemClock.now()),
        None if postgres == StoreStatus::Down => ValidationMode::Closed,
        None => ValidationMode::StoreOnly,
    };
    let mut readiness = Readiness::new(validation, postgres, redis);
    if let Some(cluster) = stores.redis_cluster.as_deref() {
        readiness = readiness.with_redis_cluster(cluster_check(cluster).await);
    }
    if readiness.is_ready() {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}

/// A store's state; one that does not answer within [`PROBE_TIMEOUT`] is down.
async fn status(probe: Option<&dyn ReadinessProbe>) -> StoreStatus {
    let Some(probe) = probe else {
        return StoreStatus::NotConfigured;
    };
    if tokio::time::timeout(PROBE_TIMEOUT, probe.check())
        .await
        .unwrap_or(false)
    {
        StoreStatus::Up
    } else {
        StoreStatus::Down
    }
}

/// The cluster's state; one whose nodes do not answer within [`PROBE_TIMEOUT`] is
/// unreachable.
async fn cluster_check(probe: &dyn ClusterProbe) -> RedisClusterCheck {
    RedisClusterCheck::new(
        tokio::time::timeout(PROBE_TIMEOUT, probe.state())
            .await
            .ok()
            .flatten(),
    )
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use serde_json::json;

    use super::*;

    /// A store that answers, or not, as told.
    struct Answers(bool);

    #[async_trait]
    impl ReadinessProbe for Answers {
        async fn check(&self) -> bool {
            self.0
        }
    }

    #[tokio::test]
    async fn only_failing_closed_makes_the_instance_unavailable() {
        // Redis down: validation reads PostgreSQL, the instance serves.
        let redis_down = Readiness::new(
            ValidationMode::Cached,
            status(Some(&Answers(true))).await,
            status(Some(&Answers(false))).await,
        );
        assert!(redis_down.is_ready());
        assert_eq!(
            serde_json::to_value(&redis_down).unwrap(),
            json!({ "status": "ready", "validation": "cached", "checks": { "postgres": "up", "redis": "down" } })
        );
        let closed = Readiness::new(
            ValidationMode::Closed,
            status(Some(&Answers(false))).await,
            status(Some(&Answers(true))).await,
        );
        assert!(!closed.is_ready());
        assert_eq!(
            serde_json::to_value(&closed).unwrap(),
            json!({ "status": "unavailable", "validation": "closed", "checks": { "postgres": "down", "redis": "up" } })
        );
        let in_memory = Readiness::new(
            ValidationMode::StoreOnly,
            status(None).await,
            status(None).await,
        );
        assert!(in_memory.is_ready());
        assert_eq!(
            serde_json::to_value(&in_memory).unwrap(),
            json!({ "status": "ready", "validation": "store_only", "checks": { "postgres": "not_configured", "redis": "not_configured" } })
        );
    }
}
