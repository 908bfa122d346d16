//! Validation throughput: sessiond's `GET /api/v1/sessions/current` beside the reference
//! servers (`reference.rs`: the Redis floor, the floor per worker, the in-process ceiling)
//! at 32 and 128 connections, best of `BENCH_ROUNDS` rounds, and the ratios that are the
//! target.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use deadpool_redis::redis;
use hyper::header::HeaderValue;
use sessiond_domain::model::{SessionId, UserId};
use tokio::runtime::Handle;

use crate::env::{RedisServer, session_key};
use crate::fixture::Fixture;
use crate::load::{self, GetWithAuth, Outcome, Plan, Stop};
use crate::report::{Report, Row};
use crate::{Knobs, reference};

/// Whether `BENCH_ONLY` names one load, run alone (for a profiler) with nothing reported.
pub fn runs_one_load(only: &str) -> bool {
    ["validate", "floor", "floor-per-worker", "ceiling"].contains(&only)
}

/// Runs the four loads and reports their throughput and ratios; with `only` naming one
/// load ([`runs_one_load`]), runs that one alone and reports nothing.
pub async fn against_references(
    report: &mut Report,
    clients: &Handle,
    rconn: &mut redis::aio::MultiplexedConnection,
    redis: &RedisServer,
    fixture: &Fixture,
    knobs: Knobs,
    only: &str,
) -> anyhow::Result<()> {
    let (floor_tokens, values) = reference_inputs(rconn, &fixture.sessions).await?;
    let floor_addr = reference::spawn_floor(&redis.url, knobs.server_workers).await?;
    let worker_floor_addr = reference::spawn_floor_per_worker(&redis.url, knobs.server_workers)?;
    let ceiling_addr = reference::spawn_ceiling(values, knobs.server_workers)?;
    let floor_tokens = Arc::new(floor_tokens);
    let only_one = runs_one_load(only);
    let mut best: HashMap<(&str, usize), Outcome> = HashMap::new();
    let targets: [(&str, SocketAddr, &str, &Arc<Vec<HeaderValue>>); 4] = [
        (
            "validate",
            fixture.addr,
            "/api/v1/sessions/current",
            &fixture.tokens,
        ),
        ("floor", floor_addr, "/floor", &floor_tokens),
        (
            "floor, per worker",
            worker_floor_addr,
            "/floor",
            &floor_tokens,
        ),
        ("ceiling", ceiling_addr, "/ceiling", &floor_tokens),
    ];
    for round in 0..knobs.rounds {
        for connections in [32usize, 128] {
            for (name, target, path, headers) in &targets {
                if only_one && name.replace(", per ", "-per-") != only {
                    continue;
                }
                let (target, path, headers) = (*target, *path, Arc::clone(headers));
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
                eprintln!(
                    "bench: round {round} {name} c={connections}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms p999 {:.2} ms errors {}",
                    outcome.rate(),
                    outcome.ms(0.5),
                    outcome.ms(0.99),
                    outcome.ms(0.999),
                    outcome.errors
                );
                let slot = best.entry((*name, connections));
                match slot {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        if outcome.rate() > e.get().rate() {
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
    if only_one {
        return Ok(());
    }
    for connections in [32usize, 128] {
        let v = &best[&("validate", connections)];
        let f = &best[&("floor", connections)];
        let w = &best[&("floor, per worker", connections)];
        let c = &best[&("ceiling", connections)];
        for (name, o) in [
            ("validate", v),
            ("floor", f),
            ("floor, per worker", w),
            ("ceiling", c),
        ] {
            report.throughput(name, connections, o);
        }
        let ratio = v.rate() / f.rate();
        report.row(Row::target(
            format!("validate / floor, {connections} connections"),
            format!("{ratio:.2} (ceiling / floor {:.2})", c.rate() / f.rate()),
            "≥ 0.90",
            ratio >= 0.9,
        ));
        report.row(Row::info(
            format!("validate / floor per worker, {connections} connections"),
            format!(
                "{:.2} (sessiond's own work, with the same connection shape)",
                v.rate() / w.rate()
            ),
        ));
    }
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
