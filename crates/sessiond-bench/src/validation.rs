//! Validation throughput: sessiond's `GET /api/v1/sessions/current` (near cache on, in
//! front of Redis and PostgreSQL) and its forward-auth check (`GET /api/v1/auth/check`, the
//! same validation answered with headers only) beside the reference servers (`reference.rs`: the Redis
//! floor, the floor per worker, the in-process ceiling) and beside sessiond's own ceiling
//! (the same route of a second sessiond on the in-memory store, `fixture::start_in_memory`),
//! at 32 and 128 connections, `BENCH_ROUNDS` rounds, alternating. The throughput rows are
//! the best round of each load; the ratios that are the targets are each round's (its runs
//! back to back) and their median, since this shared machine's speed moves between rounds. Around every validate run, `INFO commandstats` counts the Redis
//! reads its near-cache misses made; `pg_stat_user_tables` counts the PostgreSQL session
//! reads over the whole block: the hit rate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool_redis::redis;
use hyper::header::HeaderValue;
use sessiond_domain::model::{SessionId, UserId};
use tokio::runtime::Handle;

use crate::env::{self, RedisServer, scalar, session_key};
use crate::fixture::{self, Fixture};
use crate::load::{self, GetWithAuth, Outcome, Plan, Stop};
use crate::modes::{Sampler, Samples};
use crate::report::{Report, Row};
use crate::{Knobs, reference};

/// The loads, by the name `BENCH_ONLY` gives them.
const LOADS: [&str; 6] = [
    "validate",
    "forward-auth",
    "floor",
    "floor-per-worker",
    "ceiling",
    "own-ceiling",
];

/// Whether `BENCH_ONLY` names one load, run alone (for a profiler) with nothing reported.
pub fn runs_one_load(only: &str) -> bool {
    LOADS.contains(&only)
}

/// The `BENCH_ONLY` name of a load.
fn only_name(name: &str) -> String {
    name.replace(", per ", "-per-").replace(' ', "-")
}

/// What the validate runs cost the stores: the near cache's misses show up here.
#[derive(Debug, Default, Clone, Copy)]
struct Misses {
    /// Requests the validate runs sent, warm-up included.
    validations: u64,
    /// Redis `GET`s during them (`INFO commandstats`: top-level and inside scripts).
    gets: u64,
    /// Redis `SET`s during them (a refill after a PostgreSQL read).
    sets: u64,
}

/// Runs the loads and reports their throughput and ratios; with `only` naming one load
/// ([`runs_one_load`]), runs that one alone and reports nothing. `settled`: the
/// PostgreSQL statistics have been published since the last statement sessiond sent (see
/// `per_request.rs`), so a snapshot taken now is exact.
#[expect(
    clippy::too_many_arguments,
    reason = "the run's context, passed as it is"
)]
pub async fn against_references(
    report: &mut Report,
    clients: &Handle,
    rconn: &mut redis::aio::MultiplexedConnection,
    redis: &RedisServer,
    fixture: &Fixture,
    knobs: Knobs,
    only: &str,
    settled: bool,
) -> anyhow::Result<()> {
    let (floor_tokens, values) = reference_inputs(rconn, &fixture.sessions).await?;
    let floor_addr = reference::spawn_floor(&redis.url, knobs.server_workers).await?;
    let worker_floor_addr = reference::spawn_floor_per_worker(&redis.url, knobs.server_workers)?;
    let ceiling_addr = reference::spawn_ceiling(values, knobs.server_workers)?;
    let floor_tokens = Arc::new(floor_tokens);
    let only_one = runs_one_load(only);
    let own = if !only_one || only == "own-ceiling" {
        let t = Instant::now();
        let (own, tokens) =
            fixture::start_in_memory(knobs, fixture.sessions.len() as u64, &fixture.passwords)
                .await?;
        sweep(clients, own.addr, &tokens).await?;
        eprintln!(
            "bench: own ceiling: sessiond on the in-memory store at {}, {} sessions written through its repositories and validated through its API in {:.1?}",
            own.addr,
            tokens.len(),
            t.elapsed()
        );
        Some((own, tokens))
    } else {
        None
    };
    if !only_one && !settled {
        // The cache fill's PostgreSQL reads, published before the first snapshot.
        tokio::time::sleep(STATISTICS_DELAY).await;
    }
    let scans_before = session_reads(&fixture.sql).await?;
    let mut best: HashMap<(&str, usize), Outcome> = HashMap::new();
    // Each round's rate (answered 2xx) of each load, for the per-round ratios.
    let mut rates: HashMap<(&str, usize), Vec<f64>> = HashMap::new();
    let mut misses: HashMap<usize, Misses> = HashMap::new();
    let mut modes = Samples::default();
    let mut targets: Vec<(&str, SocketAddr, &str, Arc<Vec<HeaderValue>>)> = vec![
        (
            "validate",
            fixture.addr,
            CURRENT,
            Arc::clone(&fixture.tokens),
        ),
        (
            "forward-auth",
            fixture.addr,
            CHECK,
            Arc::clone(&fixture.tokens),
        ),
        ("floor", floor_addr, "/floor", Arc::clone(&floor_tokens)),
        (
            "floor, per worker",
            worker_floor_addr,
            "/floor",
            Arc::clone(&floor_tokens),
        ),
        (
            "ceiling",
            ceiling_addr,
            "/ceiling",
            Arc::clone(&floor_tokens),
        ),
    ];
    if let Some((own, tokens)) = &own {
        targets.push(("own ceiling", own.addr, CURRENT, Arc::clone(tokens)));
    }
    for round in 0..knobs.rounds {
        for connections in [32usize, 128] {
            for (name, target, path, headers) in &targets {
                if only_one && only_name(name) != only {
                    continue;
                }
                let (target, path, headers) = (*target, *path, Arc::clone(headers));
                let before = env::command_calls(rconn).await?;
                let sampler =
                    (*name == "validate").then(|| Sampler::start(clients, fixture.metrics));
                let outcome = load::run_on(
                    clients,
                    target,
                    Plan {
                        connections,
                        warm_up: knobs.warm_up,
                        stop: Stop::After(knobs.duration),
                    },
                    move |w| GetWithAuth::new(target, path, headers.clone(), w, connections),
                )
                .await?;
                if let Some(sampler) = sampler {
                    modes.merge(&sampler.stop().await);
                    let after = env::command_calls(rconn).await?;
                    let count = misses.entry(connections).or_default();
                    count.validations += outcome.sent;
                    count.gets += delta(&before, &after, "get");
                    count.sets += delta(&before, &after, "set");
                }
                eprintln!(
                    "bench: round {round} {name} c={connections}: {:.0} req/s ({:.0} answered 2xx) p50 {:.2} ms p99 {:.2} ms p999 {:.2} ms errors {} {}",
                    outcome.rate(),
                    outcome.ok_rate(),
                    outcome.ms(0.5),
                    outcome.ms(0.99),
                    outcome.ms(0.999),
                    outcome.errors,
                    outcome.failures()
                );
                rates
                    .entry((*name, connections))
                    .or_default()
                    .push(outcome.ok_rate());
                let slot = best.entry((*name, connections));
                match slot {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        if outcome.ok_rate() > e.get().ok_rate() {
                            e.insert(outcome);
                        }
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(outcome);
                    }
                }
            }
        }
    }
    if let Some((own, _)) = own {
        own.stop().await;
    }
    if only_one {
        return Ok(());
    }
    for connections in [32usize, 128] {
        let v = &best[&("validate", connections)];
        let a = &best[&("forward-auth", connections)];
        let f = &best[&("floor", connections)];
        let w = &best[&("floor, per worker", connections)];
        let c = &best[&("ceiling", connections)];
        let o = &best[&("own ceiling", connections)];
        for (name, outcome) in [
            ("validate", v),
            ("forward-auth", a),
            ("floor", f),
            ("floor, per worker", w),
            ("ceiling", c),
            ("sessiond's own ceiling (in-memory store)", o),
        ] {
            report.throughput(name, connections, outcome);
        }
        // Answers that validated (a 503 is quick and is no validation), each round's runs
        // against each other: they ran back to back, so a machine that got busier or
        // quieter between rounds moves both sides of a round's ratio.
        let ratios =
            |a: &str, b: &str| Ratios::of(&rates[&(a, connections)], &rates[&(b, connections)]);
        let floor = ratios("validate", "floor");
        let own_ceiling = ratios("validate", "own ceiling");
        report.row(Row::target(
            format!("validate / floor, {connections} connections"),
            format!(
                "{} (ceiling / floor {}: the HashMap server's own margin over the floor; best rounds: {:.2})",
                floor.describe(),
                ratios("ceiling", "floor").describe(),
                v.ok_rate() / f.ok_rate(),
            ),
            &format!("≥ {FLOOR_TARGET:.2}"),
            floor.median >= FLOOR_TARGET,
        ));
        report.row(Row::target(
            format!("validate / sessiond's own ceiling, {connections} connections"),
            format!(
                "{} (the near cache against the in-memory store, everything else equal; own ceiling / ceiling {}; best rounds: {:.2})",
                own_ceiling.describe(),
                ratios("own ceiling", "ceiling").describe(),
                v.ok_rate() / o.ok_rate(),
            ),
            &format!("≥ {OWN_CEILING_TARGET:.2}"),
            own_ceiling.median >= OWN_CEILING_TARGET,
        ));
        let forward_auth = ratios("forward-auth", "validate");
        report.row(Row::target(
            format!("forward-auth / validate, {connections} connections"),
            format!(
                "{} (`GET /api/v1/auth/check` against `GET /api/v1/sessions/current`, the same token and validation; best rounds: {:.2})",
                forward_auth.describe(),
                a.ok_rate() / v.ok_rate(),
            ),
            &format!("≥ {FORWARD_AUTH_TARGET:.2}"),
            forward_auth.median >= FORWARD_AUTH_TARGET,
        ));
        report.row(Row::info(
            format!("validate / floor per worker, {connections} connections"),
            format!(
                "{} (the same connection shape as sessiond's Redis connections; best rounds: {:.2})",
                ratios("validate", "floor, per worker").describe(),
                v.ok_rate() / w.ok_rate()
            ),
        ));
    }
    // Every near-cache miss reads Redis (a GET) or, while the feed is behind, PostgreSQL
    // (a scan of user_sessions); so these counts bound the misses from above.
    tokio::time::sleep(STATISTICS_DELAY).await;
    let scans = session_reads(&fixture.sql).await? - scans_before;
    let all = misses.values().fold(Misses::default(), |a, m| Misses {
        validations: a.validations + m.validations,
        gets: a.gets + m.gets,
        sets: a.sets + m.sets,
    });
    let hit_rate = |m: &Misses, scans: i64| {
        let missed = m.gets + u64::try_from(scans).unwrap_or(0);
        100.0 * (1.0 - missed as f64 / m.validations.max(1) as f64)
    };
    report.row(Row::info(
        "near-cache hit rate during the validate runs".into(),
        format!(
            "{:.3} % of {} validations: Redis GET {} (32 connections {}, 128 connections {}), SET {}, PostgreSQL session reads (scans of user_sessions) {scans}; hit rate = 1 − (Redis GETs + PostgreSQL session reads) / validations sent, warm-ups included: a lower bound",
            hit_rate(&all, scans),
            all.validations,
            all.gets,
            misses[&32].gets,
            misses[&128].gets,
            all.sets,
        ),
    ));
    report.row(Row::info(
        "validation mode during the validate runs (SPEC §8 trust)".into(),
        format!(
            "{}; errors in the kept rounds: {}",
            modes.describe(),
            [32usize, 128]
                .iter()
                .map(|c| {
                    let v = &best[&("validate", *c)];
                    if v.errors == 0 {
                        format!("{c} connections none")
                    } else {
                        format!("{c} connections {}", v.failures())
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    Ok(())
}

/// One ratio per round, and their median (the target's figure).
pub struct Ratios {
    each: Vec<f64>,
    median: f64,
}

impl Ratios {
    pub fn of(a: &[f64], b: &[f64]) -> Self {
        let each: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
        let mut sorted = each.clone();
        sorted.sort_by(f64::total_cmp);
        let median = match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self { each, median }
    }

    /// "1.29 (median of rounds 1.29, 0.95, 1.31)".
    pub fn describe(&self) -> String {
        format!(
            "{:.2} (median of rounds {})",
            self.median,
            self.each
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The targets' ratios (issues 13 and 17).
const FLOOR_TARGET: f64 = 1.4;
const OWN_CEILING_TARGET: f64 = 0.9;
/// Forward-auth costs no more than `GET /sessions/current`: its throughput is at least as high.
const FORWARD_AUTH_TARGET: f64 = 1.0;
const CURRENT: &str = "/api/v1/sessions/current";
/// Forward authentication: costs no more than `CURRENT` (issue 17).
const CHECK: &str = "/api/v1/auth/check";

/// How long PostgreSQL may take to publish a backend's statistics (at most once a second
/// while busy, after 10 s when idle).
pub const STATISTICS_DELAY: Duration = Duration::from_secs(11);

/// Index and sequential scans of `user_sessions` so far: a session read from PostgreSQL.
async fn session_reads(sql: &tokio_postgres::Client) -> anyhow::Result<i64> {
    scalar(
        sql,
        "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables \
         WHERE relname = 'user_sessions'",
    )
    .await
}

/// The calls of `command` between two `INFO commandstats` snapshots.
fn delta(before: &[(String, u64)], after: &[(String, u64)], command: &str) -> u64 {
    let calls = |all: &[(String, u64)]| {
        all.iter()
            .find(|(name, _)| name == command)
            .map_or(0, |(_, calls)| *calls)
    };
    calls(after).saturating_sub(calls(before))
}

/// Validates each of `tokens` once at 32 connections; fails unless every one is accepted.
pub async fn sweep(
    clients: &Handle,
    addr: SocketAddr,
    tokens: &Arc<Vec<HeaderValue>>,
) -> anyhow::Result<()> {
    let headers = Arc::clone(tokens);
    let outcome = load::run_on(
        clients,
        addr,
        Plan {
            connections: 32,
            warm_up: Duration::ZERO,
            stop: Stop::Each((headers.len() as u64).div_ceil(32)),
        },
        move |w| GetWithAuth::new(addr, CURRENT, headers.clone(), w, 32),
    )
    .await?;
    anyhow::ensure!(
        outcome.errors == 0,
        "{} of {} validations on {addr} failed ({})",
        outcome.errors,
        outcome.requests,
        outcome.failures()
    );
    Ok(())
}

/// The floor and ceiling inputs: `Bearer <session key>` for each bulk session, and the
/// cached values (copied out of Redis) for the ceiling's map.
async fn reference_inputs(
    conn: &mut redis::aio::MultiplexedConnection,
    sessions: &[(UserId, SessionId)],
) -> anyhow::Result<(Vec<HeaderValue>, HashMap<String, Bytes>)> {
    let mut headers = Vec::with_capacity(sessions.len());
    let mut values = HashMap::with_capacity(sessions.len());
    for &(user_id, session_id) in sessions {
        let key = session_key(user_id, session_id);
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(conn).await?;
        let value = value.ok_or_else(|| anyhow::anyhow!("{key} is not cached"))?;
        headers.push(HeaderValue::from_str(&format!("Bearer {key}"))?);
        values.insert(key, Bytes::from(value));
    }
    Ok((headers, values))
}
