//! `GET /metrics`: Prometheus text format.

use actix_web::{HttpResponse, Resource, web};

use crate::http::AppState;
use crate::metrics::{CACHE_DOWN, CACHE_FALLBACKS, CACHE_HITS, CACHE_MISSES, handle};

pub fn resource() -> Resource {
    web::resource("/metrics").route(web::get().to(render))
}

/// Counters, gauges and latency histograms in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
async fn render(state: web::Data<AppState>) -> HttpResponse {
    if let Some(cache) = &state.probes.redis {
        // The adapter counts in atomics; publish its counters at scrape time.
        let stats = cache.stats();
        metrics::counter!(CACHE_HITS).absolute(stats.hits);
        metrics::counter!(CACHE_MISSES).absolute(stats.misses);
        metrics::counter!(CACHE_FALLBACKS).absolute(stats.errors + stats.refused);
        metrics::gauge!(CACHE_DOWN).set(if stats.outage { 1.0 } else { 0.0 });
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle().render())
}
