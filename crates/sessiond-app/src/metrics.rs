//! Prometheus metrics: one process-wide recorder, rendered by `GET /metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests by route pattern, method and status.
pub const HTTP_REQUESTS: &str = "sessiond_http_requests_total";
/// Request latency by route pattern, seconds.
pub const HTTP_DURATION: &str = "sessiond_http_request_duration_seconds";
/// Error answers by problem `code` (`rate_limited` counts throttled sign-ins).
pub const PROBLEMS: &str = "sessiond_problems_total";
/// Sessions opened, by role.
pub const SESSIONS_CREATED: &str = "sessiond_sessions_created_total";
/// Sessions ended, by reason.
pub const SESSIONS_ENDED: &str = "sessiond_sessions_ended_total";
/// Cleanup passes, and what they did.
pub const CLEANUP_RUNS: &str = "sessiond_cleanup_runs_total";
pub const CLEANUP_EXPIRED: &str = "sessiond_cleanup_expired_total";
pub const CLEANUP_PURGED: &str = "sessiond_cleanup_purged_total";
/// The live-session cache: hits, misses, and reads that fell back to PostgreSQL.
pub const CACHE_HITS: &str = "sessiond_cache_hits_total";
pub const CACHE_MISSES: &str = "sessiond_cache_misses_total";
pub const CACHE_FALLBACKS: &str = "sessiond_cache_fallbacks_total";
pub const CACHE_DOWN: &str = "sessiond_cache_down";
/// The cache's Redis Cluster (only with `REDIS_CLUSTER_URLS`): 1 when a node says
/// `cluster_state:ok`, 0 when it says otherwise or none answers; the nodes it knows and the
/// primaries serving slots (0 when none answers).
pub const REDIS_CLUSTER_OK: &str = "sessiond_redis_cluster_ok";
pub const REDIS_CLUSTER_NODES: &str = "sessiond_redis_cluster_known_nodes";
pub const REDIS_CLUSTER_PRIMARIES: &str = "sessiond_redis_cluster_primaries";
/// The revocation feed: how far behind the log this instance may be, what it remembers,
/// what it applied and the reads of the log that failed.
pub const FEED_LAG: &str = "sessiond_revocation_feed_lag_seconds";
pub const FEED_REMEMBERED: &str = "sessiond_revocations_remembered";
pub const FEED_APPLIED: &str = "sessiond_revocations_applied_total";
pub const FEED_FAILED_READS: &str = "sessiond_revocation_feed_failed_reads_total";
/// How requests are validated (SPEC §8): 1 for the mode in force, 0 for the others.
pub const VALIDATION_MODE: &str = "sessiond_validation_mode";
/// Sessions in the near cache.
pub const NEAR_CACHE_ENTRIES: &str = "sessiond_near_cache_entries";
/// Activity waiting for its batched write, and activity dropped because the buffer was full.
pub const ACTIVITY_PENDING: &str = "sessiond_activity_pending";
pub const ACTIVITY_DROPPED: &str = "sessiond_activity_dropped_total";

/// Latency buckets, seconds: sub-millisecond cache hits up to slow argon2 sign-ins.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The process's recorder, installed on first use. Several applications in one process
/// (tests) share it.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed: then ours renders nothing, which
        // is visible, not fatal.
        let _ = metrics::set_global_recorder(recorder);
        start_upkeep(handle.clone());
        handle
    })
}

/// Histogram samples are kept until they are folded into their buckets, which rendering
/// `/metrics` does, and so does upkeep: without it, a service nobody scrapes would hold
/// every latency sample it ever took.
fn start_upkeep(handle: PrometheusHandle) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no metrics upkeep thread: histograms fold only when scraped");
    }
}

/// Counts one cleanup pass.
pub fn record_cleanup(report: &sessiond_domain::service::CleanupReport) {
    metrics::counter!(CLEANUP_RUNS).increment(1);
    metrics::counter!(CLEANUP_EXPIRED).increment(report.expired as u64);
    metrics::counter!(CLEANUP_PURGED).increment(report.purged);
}
