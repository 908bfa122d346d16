//! The synchronised-activity case (SPEC §8, issue 13): the whole population falls due for
//! its `last_activity` write at once, under a validate load, with the default
//! `activity_interval` (60 s) and `activity_flush_ms` (1 000). When the write was
//! synchronous this took a validate load from 41 000 to 9 000–13 000 req/s (p99 83 ms);
//! written behind, a validation only notes it.
//!
//! How: the bulk sessions' `last_activity` is set in PostgreSQL to [`LEAD`] from now minus
//! the interval, so that all of them fall due at one instant, `due`; their Redis copies are
//! deleted (a cached value carries `last_activity` as stored), and a second sessiond on the
//! same stores, with the default interval, validates each once, which fills its near cache
//! and Redis from PostgreSQL with that `last_activity`. A validate load (32 connections, the
//! usual warm-up and duration) on it is the steady state before; then the same load is
//! started so that `due` falls one second into its measured period: every session is found
//! due within a fraction of a second, each validation that finds it notes it, and the next
//! flushes write the batch; then the same load again is the steady state after (nothing
//! falls due again for a minute). The targets compare the synchronised run with the mean of
//! the two around it (the machine is shared: its load can change between runs).
//! PostgreSQL then tells how many sessions' `last_activity` was written at or after `due`:
//! the proof that the population did fall due inside the window.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis;
use tokio::runtime::Handle;

use crate::env::{BenchDatabase, RedisServer, scalar, session_key};
use crate::fixture::{self, Fixture};
use crate::load::{self, GetWithAuth, Outcome, Plan, Stop};
use crate::modes::{Sampler, Samples};
use crate::report::{Report, Row};
use crate::{Knobs, now, validation};

/// How far ahead `due` is set: the second instance's start and its sweep happen before it.
const LEAD: Duration = Duration::from_secs(30);
/// Where `due` falls in the measured period.
const INTO_THE_WINDOW: Duration = Duration::from_secs(1);
const CONNECTIONS: usize = 32;
const CURRENT: &str = "/api/v1/sessions/current";

/// The targets (issue 13).
const RATE_TARGET: f64 = 0.8;
const P99_TARGET: f64 = 2.0;

pub async fn synchronised(
    report: &mut Report,
    clients: &Handle,
    rconn: &mut redis::aio::MultiplexedConnection,
    redis_server: &RedisServer,
    database: &BenchDatabase,
    fixture: &Fixture,
    knobs: Knobs,
) -> anyhow::Result<()> {
    let defaults = sessiond_app::Settings::default().sessions;
    let interval = defaults.activity_interval;
    let due = now() + LEAD;
    let last = due - time::Duration::seconds(i64::from(interval));
    fixture
        .sql
        .batch_execute(&format!(
            "UPDATE user_sessions SET last_activity = to_timestamp({}) WHERE is_active",
            micros_text(last)
        ))
        .await?;
    for chunk in fixture.sessions.chunks(1_000) {
        let mut del = redis::cmd("DEL");
        for &(user_id, session_id) in chunk {
            del.arg(session_key(user_id, session_id));
        }
        let _: u64 = del.query_async(rconn).await?;
    }
    let instance =
        fixture::start_postgres_instance(knobs, redis_server, database, interval).await?;
    let outcome = measure(clients, &instance, fixture, knobs, due).await;
    instance.stop().await;
    let Measured {
        before,
        synchronised,
        after,
        modes,
    } = outcome?;
    let written: i64 = scalar(
        &fixture.sql,
        &format!(
            "SELECT count(*) FROM user_sessions WHERE is_active AND last_activity >= to_timestamp({})",
            micros_text(due)
        ),
    )
    .await?;

    let label = format!(
        "{} sessions falling due together on a second instance with the default activity_interval ({interval} s) and activity_flush_ms ({} ms)",
        fixture.sessions.len(),
        defaults.activity_flush_ms
    );
    report.throughput(
        "synchronised activity: the steady state before (same instance, nothing due)",
        CONNECTIONS,
        &before,
    );
    report.throughput(
        &format!("synchronised activity: validate while {label}"),
        CONNECTIONS,
        &synchronised,
    );
    report.throughput(
        "synchronised activity: the steady state after (same instance, nothing due)",
        CONNECTIONS,
        &after,
    );
    // The steady state brackets the synchronised run: the mean of the two runs around it,
    // so that a machine that got busier or quieter meanwhile moves both sides.
    let steady_rate = (before.ok_rate() + after.ok_rate()) / 2.0;
    let steady_p99 = (before.ms(0.99) + after.ms(0.99)) / 2.0;
    let rate = synchronised.ok_rate() / steady_rate;
    let p99 = synchronised.ms(0.99) / steady_p99;
    let second = Duration::from_secs(1);
    let steady_worst = (before.worst_rate(second) + after.worst_rate(second)) / 2.0;
    report.row(Row::target(
        "synchronised activity / steady state (the mean of before and after): throughput, p99".into(),
        format!(
            "throughput {rate:.2} ({:.0} / {steady_rate:.0} answered 2xx/s), p99 {p99:.2} ({:.2} / {steady_p99:.2} ms); worst second {:.0} vs {steady_worst:.0} req/s ({:.2}); {written} of {} sessions' last_activity written at or after the due instant (PostgreSQL, after the runs); sessiond_validation_mode during the synchronised run: {}",
            synchronised.ok_rate(),
            synchronised.ms(0.99),
            synchronised.worst_rate(second),
            synchronised.worst_rate(second) / steady_worst,
            fixture.sessions.len(),
            modes.describe()
        ),
        &format!("throughput ≥ {RATE_TARGET:.1}×, p99 ≤ {P99_TARGET:.0}×"),
        rate >= RATE_TARGET && p99 <= P99_TARGET && written as usize == fixture.sessions.len(),
    ));
    Ok(())
}

/// The three runs.
struct Measured {
    before: Outcome,
    synchronised: Outcome,
    after: Outcome,
    modes: Samples,
}

/// The sweep that fills the instance, the steady load before `due`, the load across it,
/// and the steady load after.
async fn measure(
    clients: &Handle,
    instance: &fixture::Instance,
    fixture: &Fixture,
    knobs: Knobs,
    due: time::OffsetDateTime,
) -> anyhow::Result<Measured> {
    let addr = instance.addr;
    validation::sweep(clients, addr, &fixture.tokens).await?;
    let plan = Plan {
        connections: CONNECTIONS,
        warm_up: knobs.warm_up,
        stop: Stop::After(knobs.duration),
    };
    let run = |tokens: Arc<Vec<hyper::header::HeaderValue>>| {
        load::run_on(clients, addr, plan, move |w| {
            GetWithAuth::new(addr, CURRENT, tokens.clone(), w, CONNECTIONS)
        })
    };
    let before = run(Arc::clone(&fixture.tokens)).await?;
    let start_at = due - knobs.warm_up - INTO_THE_WINDOW;
    let wait = start_at - now();
    anyhow::ensure!(
        wait.is_positive(),
        "the second instance was not filled and measured before the sessions fell due ({wait} late): raise LEAD"
    );
    tokio::time::sleep(wait.unsigned_abs()).await;
    let sampler = Sampler::start(clients, instance.metrics);
    let synchronised = run(Arc::clone(&fixture.tokens)).await?;
    let modes = sampler.stop().await;
    let after = run(Arc::clone(&fixture.tokens)).await?;
    for (name, o) in [
        ("before", &before),
        ("synchronised", &synchronised),
        ("after", &after),
    ] {
        eprintln!(
            "bench: synchronised activity, {name}: {:.0} req/s ({:.0} 2xx), p99 {:.2} ms, worst second {:.0} req/s {}",
            o.rate(),
            o.ok_rate(),
            o.ms(0.99),
            o.worst_rate(Duration::from_secs(1)),
            o.failures()
        );
    }
    Ok(Measured {
        before,
        synchronised,
        after,
        modes,
    })
}

/// Unix seconds with microseconds, as `to_timestamp` takes them.
fn micros_text(at: time::OffsetDateTime) -> String {
    let micros = at.unix_timestamp_nanos() / 1_000;
    format!(
        "{}.{:06}",
        micros.div_euclid(1_000_000),
        micros.rem_euclid(1_000_000)
    )
}
