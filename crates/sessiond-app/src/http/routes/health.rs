//! Liveness (the process answers) and readiness (its stores answer too).

use std::time::Duration;

use actix_web::{HttpResponse, Scope, web};

use crate::http::state::AppState;
use crate::http::views::{Liveness, Readiness, StoreStatus};
use crate::probes::ReadinessProbe;

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

/// 200 when every configured store answers, 503 naming those that do not. In-memory storage
/// is always ready.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Every configured store answers", body = Readiness),
        (status = 503, description = "A store is down", body = Readiness),
    )
)]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let stores = &state.stores;
    let readiness = Readiness::new(
        status(stores.postgres.as_deref()).await,
        status(stores.redis.as_deref()).await,
    );
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
    async fn a_configured_store_that_does_not_answer_makes_the_instance_unavailable() {
        let down = Readiness::new(
            status(Some(&Answers(true))).await,
            status(Some(&Answers(false))).await,
        );
        assert!(!down.is_ready());
        assert_eq!(
            serde_json::to_value(&down).unwrap(),
            json!({ "status": "unavailable", "checks": { "postgres": "up", "redis": "down" } })
        );
        let in_memory = Readiness::new(status(None).await, status(None).await);
        assert!(in_memory.is_ready());
        assert_eq!(
            serde_json::to_value(&in_memory).unwrap(),
            json!({ "status": "ready", "checks": { "postgres": "not_configured", "redis": "not_configured" } })
        );
    }
}
