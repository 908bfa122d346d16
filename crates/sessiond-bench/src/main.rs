//! `make bench`: sessiond's hot path measured side by side with what any Redis-backed
//! validation could reach on the same machine, plus sign-in, refresh, storage, cleanup and
//! listing figures. Prints one table and writes it into `docs/BENCHMARKS.md`.
//!
//! What it is: a measurement tool that starts a real sessiond (release build, PostgreSQL +
//! Redis, the near cache on with its default capacity) in-process on stores of its own (a
//! private `redis-server` and a `sessiond_bench_*` database, dropped at the end). What it is
//! not: a test; nothing here asserts a time (targets are reported as met / not met).
//!
//! Knobs (environment): `BENCH_DURATION_SECS` (measured seconds per throughput run, 6),
//! `BENCH_WARMUP_SECS` (2), `BENCH_ROUNDS` (rounds of the validate/floor/ceiling runs:
//! the best of each is shown, the targets take the median of each round's ratios; 3), `BENCH_USERS` (10 000), `BENCH_CLEANUP_SESSIONS` (1 000 000),
//! `BENCH_SERVER_WORKERS` (actix workers of each server, 2), `BENCH_CLIENT_THREADS` (load
//! generator threads, 2), `BENCH_ONLY=validate` (set up and run only the sessiond
//! validate load, for a profiler; likewise `forward-auth`, `floor`, `floor-per-worker`, `ceiling` and
//! `own-ceiling`), `BENCH_ONLY=ratio` (those loads and their ratios, nothing else),
//! `BENCH_ONLY=activity` (only the synchronised-activity case, `activity.rs`),
//! `BENCH_ONLY=cluster` (only validation on a Redis Cluster against one node, `cluster.rs`),
//! `BENCH_ONLY=propagation` (only the revocation propagation, `propagation.rs`, which
//! writes its own section), `BENCH_ONLY=token-verify` (only the access tokens' verify and
//! sign cost per algorithm, `token_verify.rs`: no stores, its own section),
//! `BENCH_ONLY=admin` (only the administrators' search and statistics, `admin.rs`, which
//! writes its own section), `BENCH_OUT` (the
//! Markdown file; `-` to write none), `BENCH_DATABASE_URL` (the PostgreSQL server, default
//! the local `postgres` superuser).
//!
//! The figures, in the order they are taken (each module measures one):
//!
//! 1. `fixture.rs`: sessiond on the bench's stores, the bulk users, sessions and tokens, the
//!    caches (Redis and the near cache) filled through the API;
//! 2. `storage.rs`: bytes per session in Redis and PostgreSQL;
//! 3. `near_cache.rs`: the near cache's hit cost, `QuickNearCache::get` alone;
//!    `token_verify.rs`: an access token's verify and sign cost, HS256 / ES256 / EdDSA;
//! 4. `per_request.rs`: Redis commands and PostgreSQL statements per validated request in
//!    steady state, the feed's and the heartbeats' background per second beside them;
//! 5. `validation.rs`: validation throughput against the floor, the per-worker floor, the
//!    in-process ceiling and sessiond's own ceiling (a second sessiond on the in-memory
//!    store), forward-auth against validation, and the near cache's hit rate during it;
//! 6. `activity.rs`: validation while the whole population falls due for its activity
//!    write, against the steady state;
//! 7. `sign_in_and_refresh.rs`: sign-ins and refresh rotations;
//! 8. `cleanup_and_listing.rs`: cleanup of 1 000 000 expired sessions, listing around it;
//! 9. `propagation.rs`: how fast a revocation reaches every instance (three `sessiond`
//!    processes, near cache on);
//! 10. `admin.rs`: the administrators' user search and statistics among 100 000 users and
//!     1 000 000 sessions.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a measurement tool: a failed step stops the run loudly"
)]

mod activity;
mod admin;
mod cleanup_and_listing;
mod cluster;
mod env;
mod fixture;
mod load;
mod modes;
mod near_cache;
mod per_request;
mod propagation;
mod reference;
mod report;
mod scenarios;
mod sign_in_and_refresh;
mod storage;
mod token_verify;
mod validation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::runtime::Handle;

use crate::env::{BenchDatabase, RedisServer};
use crate::report::Report;

pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "bench-secret-of-at-least-32-bytes-0123456789";
pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[expect(
    clippy::disallowed_methods,
    reason = "a measurement tool stamping real time, not a domain decision"
)]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[derive(Debug, Clone, Copy)]
struct Knobs {
    duration: Duration,
    warm_up: Duration,
    rounds: u64,
    users: u64,
    cleanup_sessions: u64,
    server_workers: usize,
    client_threads: usize,
}

// The same allocator as the `sessiond` binary, which this process hosts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // CPU only: no store to set up.
    if std::env::var("BENCH_ONLY").is_ok_and(|only| only == "token-verify") {
        return token_verify::run();
    }
    let knobs = Knobs {
        duration: Duration::from_secs(knob("BENCH_DURATION_SECS", 6)),
        warm_up: Duration::from_secs(knob("BENCH_WARMUP_SECS", 2)),
        rounds: knob("BENCH_ROUNDS", 3).max(1),
        users: knob("BENCH_USERS", 10_000).max(100),
        cleanup_sessions: knob("BENCH_CLEANUP_SESSIONS", 1_000_000).max(10),
        server_workers: knob("BENCH_SERVER_WORKERS", 2).max(1) as usize,
        client_threads: knob("BENCH_CLIENT_THREADS", 2).max(1) as usize,
    };
    // The servers' side (sessiond, the reference servers, the stores' drivers) and the load
    // generator on separate runtimes, so that neither schedules the other's tasks.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-servers")
        .enable_all()
        .build()?;
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(knobs.client_threads)
        .thread_name("bench-loadgen")
        .enable_all()
        .build()?;
    let result = servers.block_on(async {
        let redis = RedisServer::start().await?;
        let database = BenchDatabase::create().await?;
        eprintln!(
            "bench: redis-server at {}, database {}",
            redis.url, database.name
        );
        let outcome = bench(knobs, clients.handle().clone(), &redis, &database).await;
        if let Err(error) = database.drop_database().await {
            eprintln!("bench: could not drop {}: {error}", database.name);
        }
        drop(redis);
        outcome
    });
    clients.shutdown_background();
    servers.shutdown_background();
    result
}

async fn bench(
    knobs: Knobs,
    clients: Handle,
    redis: &RedisServer,
    database: &BenchDatabase,
) -> anyhow::Result<()> {
    let mut report = Report::new(knobs.server_workers, knobs.client_threads);
    let started = Instant::now();
    let fixture = fixture::set_up(knobs, redis, database).await?;
    let mut rconn = redis.connection().await?;
    let filled = fixture::fill_cache(&mut report, &clients, &mut rconn, &fixture).await?;
    storage::bytes_per_session(&mut report, &mut rconn, &fixture, filled).await?;

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let load_tokens = Arc::clone(&fixture.tokens);
    if only == "propagation" {
        return propagation::run(&clients, redis, database, &fixture.sql, load_tokens, knobs).await;
    }
    if only == "admin" {
        return admin::run(&clients, &fixture).await;
    }
    if only == "cluster" {
        return cluster::against_one_node(&clients, redis, database, &fixture, knobs).await;
    }
    if only == "activity" {
        activity::synchronised(
            &mut report,
            &clients,
            &mut rconn,
            redis,
            database,
            &fixture,
            knobs,
        )
        .await?;
        return report.finish();
    }
    if only.is_empty() {
        // CPU only, while the servers are idle.
        let population = fixture.sessions.len();
        report = tokio::task::spawn_blocking(move || {
            near_cache::hit_cost(&mut report, population);
            report
        })
        .await?;
        tokio::task::spawn_blocking(token_verify::run).await??;
        // Right after the cache fill, seconds after the bulk insert set every
        // `last_activity`: no session's activity falls due inside the window (the bench's
        // `activity_interval` is 600 s), which so sees what a validation itself sends.
        per_request::redis_commands_and_sql_statements(&mut report, &clients, &mut rconn, &fixture)
            .await?;
    }
    validation::against_references(
        &mut report,
        &clients,
        &mut rconn,
        redis,
        &fixture,
        knobs,
        &only,
        only.is_empty(),
    )
    .await?;
    // One load alone (for a profiler), or the loads and their ratios only.
    if validation::runs_one_load(&only) || only == "ratio" {
        return Ok(());
    }
    activity::synchronised(
        &mut report,
        &clients,
        &mut rconn,
        redis,
        database,
        &fixture,
        knobs,
    )
    .await?;
    let refresh_tokens = sign_in_and_refresh::sign_ins(
        &mut report,
        &clients,
        fixture.addr,
        knobs.users,
        &fixture.passwords,
    )
    .await?;
    sign_in_and_refresh::refreshes(&mut report, &clients, fixture.addr, refresh_tokens, knobs)
        .await?;
    cleanup_and_listing::cleanup_and_listing(
        &mut report,
        &clients,
        &fixture,
        knobs.cleanup_sessions,
    )
    .await?;
    cluster::against_one_node(&clients, redis, database, &fixture, knobs).await?;
    propagation::run(&clients, redis, database, &fixture.sql, load_tokens, knobs).await?;
    // Last: it adds 100 000 users and 1 000 000 sessions that the others should not see.
    admin::run(&clients, &fixture).await?;

    report.note(format!(
        "Whole run: {:.0} s.",
        started.elapsed().as_secs_f64()
    ));
    report.finish()?;
    Ok(())
}
