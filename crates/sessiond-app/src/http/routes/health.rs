//! Liveness (the process answers) and readiness (its stores answer too).

use std::time::Duration;

use actix_web::{HttpResponse, Scope, web};
use serde_json::json;

use crate::http::AppState;

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
    responses((status = 200, description = "Alive", body = crate::http::openapi::Liveness))
)]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when every configured store answers, 503 naming those that do not. In-memory storage
/// is always ready.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Every configured store answers", body = crate::http::openapi::Readiness),
        (status = 503, description = "A store is down", body = crate::http::openapi::Readiness),
    )
)]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let probes = &state.probes;
    let postgres = match &probes.postgres {
        None => None,
        Some(pool) => Some(
            tokio::time::timeout(PROBE_TIMEOUT, pool.ping())
                .await
                .is_ok_and(|result| result.is_ok()),
        ),
    };
    let redis = match &probes.redis {
        None => None,
        Some(cache) => Some(
            tokio::time::timeout(PROBE_TIMEOUT, cache.ping())
                .await
                .is_ok_and(|result| result.is_ok()),
        ),
    };
    let status = |up: Option<bool>| match up {
        None => "not_configured",
        Some(true) => "up",
        Some(false) => "down",
    };
    let body = json!({
        "status": if postgres != Some(false) && redis != Some(false) { "ready" } else { "unavailable" },
        "checks": { "postgres": status(postgres), "redis": status(redis) },
    });
    if postgres == Some(false) || redis == Some(false) {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}
