//! The near cache's hit cost, alone: `QuickNearCache::get` (the adapter sessiond runs,
//! `crates/sessiond-memory/src/near_cache.rs`) in a plain `Instant` loop over a few million
//! gets, on one thread and on two at once, with the cache holding the bench's population
//! and holding its default capacity. Beside it, `NearSessions::live`, the domain's rules
//! around the same get (the entry's user and liveness; no trust here, which is one atomic
//! read more in sessiond).
//!
//! Each get is a hit: it read-locks one shard, finds the entry and clones its `Arc` (the
//! clone is dropped at once, as a request drops it when it answers). Two threads share the
//! entries, so their reference counts are contended the way two actix workers contend them.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond_domain::caching::NearSessions;
use sessiond_domain::model::{
    DeviceClass, DeviceInfo, RevocationMemory, Role, SessionId, SessionStatus, SessionSummary,
    UserId,
};
use sessiond_domain::ports::NearCache;
use sessiond_memory::QuickNearCache;
use time::OffsetDateTime;

use crate::now;
use crate::report::{Report, Row};

/// Gets per thread in one measurement.
const GETS: usize = 4_000_000;

/// What one measurement found.
#[derive(Debug, Clone, Copy)]
struct Timed {
    /// Nanoseconds per get, per thread (the slowest thread's).
    ns: f64,
    /// Gets per second, all threads together.
    rate: f64,
    misses: u64,
}

/// Measures and reports the hit cost (blocking; run it on a blocking thread).
pub fn hit_cost(report: &mut Report, population: usize) {
    let capacity = sessiond_app::Settings::default()
        .sessions
        .near_cache_capacity;
    let at = now();
    for entries in [population, capacity] {
        let cache = Arc::new(QuickNearCache::new(capacity));
        let ids: Vec<(UserId, SessionId)> = (0..entries)
            .map(|_| {
                let summary = summary(at);
                let key = (summary.user_id, summary.id);
                cache.insert(Arc::new(summary));
                key
            })
            .collect();
        // What the cache kept (it holds "about" its capacity: a full one evicts a few).
        let kept: Vec<(UserId, SessionId)> = ids
            .into_iter()
            .filter(|&(_, id)| cache.get(id).is_some())
            .collect();
        let near = NearSessions::new(
            Arc::clone(&cache) as Arc<dyn NearCache>,
            Arc::new(RevocationMemory::new(time::Duration::minutes(20))),
            None,
        );
        let get = |&(_, id): &(UserId, SessionId)| cache.get(id).is_some();
        let live = |&(user, id): &(UserId, SessionId)| near.live(user, id, at).is_some();
        // A first pass warms the caches of the CPU and the allocator.
        let _ = measure(&kept, 1, &get);
        let one = measure(&kept, 1, &get);
        let two = measure(&kept, 2, &get);
        let live_one = measure(&kept, 1, &live);
        let live_two = measure(&kept, 2, &live);
        eprintln!(
            "bench: near cache, {} entries: get {:.1} ns/hit (1 thread), {:.1} ns/hit (2 threads); live {:.1} / {:.1} ns",
            kept.len(),
            one.ns,
            two.ns,
            live_one.ns,
            live_two.ns
        );
        let misses = one.misses + two.misses + live_one.misses + live_two.misses;
        report.row(Row::info(
            format!(
                "near-cache hit cost, QuickNearCache::get, {} entries (capacity {capacity})",
                kept.len()
            ),
            format!(
                "1 thread: {:.1} ns/hit ({:.1} M hits/s); 2 threads: {:.1} ns/hit each ({:.1} M hits/s together); NearSessions::live around it: {:.1} / {:.1} ns ({GETS} gets per thread{})",
                one.ns,
                one.rate / 1e6,
                two.ns,
                two.rate / 1e6,
                live_one.ns,
                live_two.ns,
                if misses == 0 {
                    String::new()
                } else {
                    format!(", {misses} misses")
                }
            ),
        ));
    }
}

/// `GETS` lookups on each of `threads` threads, each walking `keys` from its own offset.
fn measure(
    keys: &[(UserId, SessionId)],
    threads: usize,
    lookup: &(impl Fn(&(UserId, SessionId)) -> bool + Sync),
) -> Timed {
    let elapsed: Vec<(Duration, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut i = t * keys.len() / threads;
                    let mut misses = 0u64;
                    let started = Instant::now();
                    for _ in 0..GETS {
                        if !lookup(black_box(&keys[i])) {
                            misses += 1;
                        }
                        i += 1;
                        if i == keys.len() {
                            i = 0;
                        }
                    }
                    (started.elapsed(), misses)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a measuring thread"))
            .collect()
    });
    let slowest = elapsed.iter().map(|(d, _)| *d).max().unwrap_or_default();
    Timed {
        ns: slowest.as_nanos() as f64 / GETS as f64,
        rate: (threads * GETS) as f64 / slowest.as_secs_f64(),
        misses: elapsed.iter().map(|(_, m)| m).sum(),
    }
}

/// A live session as the cache holds them.
fn summary(at: OffsetDateTime) -> SessionSummary {
    SessionSummary {
        id: SessionId::from_uuid(uuid::Uuid::new_v4()),
        user_id: UserId::from_uuid(uuid::Uuid::new_v4()),
        role: Role::Guest,
        hotel_id: None,
        device: DeviceInfo {
            class: DeviceClass::IPhone,
            browser: Some("Safari".into()),
        },
        device_name: None,
        ip_address: Some([203, 0, 113, 7].into()),
        user_agent: None,
        created_at: at,
        last_activity: at,
        expires_at: at + time::Duration::days(1),
        status: SessionStatus::Active,
        version: 1,
    }
}
