//! `GET /metrics`: Prometheus text format, on the metrics listener (`METRICS_ADDR`) only:
//! never on the API listener, and not in the API's OpenAPI document (SPEC §4).

use actix_web::{HttpResponse, Resource, web};
use sessiond_domain::ports::Clock;
use sessiond_domain::trust::ValidationMode;

use crate::http::state::AppState;
use crate::metrics::{
    ACTIVITY_DROPPED, ACTIVITY_PENDING, CACHE_DOWN, CACHE_FALLBACKS, CACHE_HITS, CACHE_MISSES,
    FEED_APPLIED, FEED_FAILED_READS, FEED_LAG, FEED_REMEMBERED, NEAR_CACHE_ENTRIES,
    REDIS_CLUSTER_NODES, REDIS_CLUSTER_OK, REDIS_CLUSTER_PRIMARIES, VALIDATION_MODE, handle,
};
use crate::system::SystemClock;

/// How long a scrape waits for the Redis Cluster's state.
const CLUSTER_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub fn resource() -> Resource {
    web::resource("/metrics").route(web::get().to(render))
}

/// Counters, gauges and latency histograms in the Prometheus text format.
async fn render(state: web::Data<AppState>) -> HttpResponse {
    if let Some(cache) = &state.stores.cache {
        // The cache counts on its own; publish its counters at scrape time.
        let counts = cache.counts();
        metrics::counter!(CACHE_HITS).absolute(counts.hits);
        metrics::counter!(CACHE_MISSES).absolute(counts.misses);
        metrics::counter!(CACHE_FALLBACKS).absolute(counts.fallbacks);
        metrics::gauge!(CACHE_DOWN).set(if counts.down { 1.0 } else { 0.0 });
    }
    if let Some(cluster) = &state.stores.redis_cluster {
        // Asked at scrape time, bounded: a scrape never waits on a hung node for long.
        let cluster = tokio::time::timeout(CLUSTER_PROBE_TIMEOUT, cluster.state())
            .await
            .ok()
            .flatten();
        let (ok, nodes, primaries) =
            cluster.map_or((false, 0, 0), |c| (c.ok, c.known_nodes, c.primaries));
        metrics::gauge!(REDIS_CLUSTER_OK).set(if ok { 1.0 } else { 0.0 });
        metrics::gauge!(REDIS_CLUSTER_NODES).set(nodes as f64);
        metrics::gauge!(REDIS_CLUSTER_PRIMARIES).set(primaries as f64);
    }
    if let Some(feed) = &state.feed {
        let status = feed.status();
        // Never caught up: as far behind as the process is old, shown as +Inf.
        let lag = status.caught_up_to.map_or(f64::INFINITY, |at| {
            (SystemClock.now() - at).as_seconds_f64().max(0.0)
        });
        metrics::gauge!(FEED_LAG).set(lag);
        metrics::gauge!(FEED_REMEMBERED).set(feed.remembered() as f64);
        metrics::counter!(FEED_APPLIED).absolute(status.applied);
        metrics::counter!(FEED_FAILED_READS).absolute(status.failed_reads);
    }
    if let Some(trust) = &state.trust {
        let mode = trust.mode(SystemClock.now());
        for each in ValidationMode::ALL {
            let value = if each == mode { 1.0 } else { 0.0 };
            metrics::gauge!(VALIDATION_MODE, "mode" => each.as_str()).set(value);
        }
    }
    if let Some(near) = &state.near {
        metrics::gauge!(NEAR_CACHE_ENTRIES).set(near.len() as f64);
    }
    metrics::gauge!(ACTIVITY_PENDING).set(state.activity.len() as f64);
    metrics::counter!(ACTIVITY_DROPPED).absolute(state.activity.dropped());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle().render())
}
