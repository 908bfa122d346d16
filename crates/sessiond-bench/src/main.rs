//! `make bench`: sessiond's hot path measured side by side with what any Redis-backed
//! validation could reach on the same machine, plus sign-in, refresh, storage, cleanup and
//! listing figures. Prints one table and writes it into `docs/BENCHMARKS.md`.
//!
//! What it is: a measurement tool that starts a real sessiond (release build, PostgreSQL +
//! Redis) in-process on stores of its own (a private `redis-server` and a
//! `sessiond_bench_*` database, dropped at the end). What it is not: a test; nothing here
//! asserts a time (targets are reported as met / not met).
//!
//! Knobs (environment): `BENCH_DURATION_SECS` (measured seconds per throughput run, 6),
//! `BENCH_WARMUP_SECS` (2), `BENCH_ROUNDS` (rounds of the validate/floor/ceiling runs,
//! best kept, 2), `BENCH_USERS` (10 000), `BENCH_CLEANUP_SESSIONS` (1 000 000),
//! `BENCH_SERVER_WORKERS` (actix workers of each server, 2), `BENCH_CLIENT_THREADS` (load
//! generator threads, 2), `BENCH_ONLY=validate` (set up and run only the sessiond
//! validate load, for a profiler; likewise `floor`, `floor-per-worker` and `ceiling`),
//! `BENCH_ONLY=ratio` (those loads and their ratios, nothing else),
//! `BENCH_ONLY=propagation` (only the revocation propagation, `propagation.rs`, which
//! writes its own section), `BENCH_OUT` (the
//! Markdown file; `-` to write none), `BENCH_DATABASE_URL` (the PostgreSQL server, default
//! the local `postgres` superuser).

// A measurement tool, not library code: a failed step should stop the run loudly, so
// unwrap/expect are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod env;
mod load;
mod propagation;
mod reference;
mod report;
mod scenarios;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool_redis::redis;
use hyper::header::HeaderValue;
use secrecy::SecretString;
use sessiond_app::Application;
use sessiond_app::config::Argon2Config;
use sessiond_app::storage::Storage;
use sessiond_argon2::{Argon2Cost, Argon2Hasher};
use sessiond_domain::model::{AccessClaims, Password, Role, SessionId, UserId};
use sessiond_domain::ports::{PasswordHasher, SessionCleanup, TokenCodec};
use sessiond_jwt::{JwtCodec, JwtSettings, SigningKey};
use sessiond_postgres::{CleanupBatch, PgPool, PgSessionCleanup, PgSettings, run_migrations};
use sessiond_redis::{RedisSessionCache, RedisSettings};
use time::OffsetDateTime;
use tokio::runtime::Handle;

use crate::env::{BenchDatabase, RedisServer, rows, scalar};
use crate::load::{GetWithAuth, Outcome, Plan, Stop};
use crate::report::{Report, Row};

pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "bench-secret-of-at-least-32-bytes-0123456789";
pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

/// The cleanup's own batch size, for EXPLAIN and the timed passes.
use sessiond_domain::service::CLEANUP_BATCH_SIZE as CLEANUP_BATCH;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[allow(
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
    let knobs = Knobs {
        duration: Duration::from_secs(knob("BENCH_DURATION_SECS", 6)),
        warm_up: Duration::from_secs(knob("BENCH_WARMUP_SECS", 2)),
        rounds: knob("BENCH_ROUNDS", 2).max(1),
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

/// Runs a load on the load generator's runtime.
async fn drive<S: load::Scenario>(
    clients: &Handle,
    addr: SocketAddr,
    plan: Plan,
    scenario: impl Fn(usize) -> S + Send + 'static,
) -> anyhow::Result<Outcome> {
    clients
        .spawn(async move { load::run(addr, plan, scenario).await })
        .await?
}

struct Fixture {
    addr: SocketAddr,
    pool: PgPool,
    sql: tokio_postgres::Client,
    /// (user, session) of the 10 000 bulk sessions, in order.
    sessions: Vec<(UserId, SessionId)>,
    tokens: Arc<Vec<HeaderValue>>,
}

async fn bench(
    knobs: Knobs,
    clients: Handle,
    redis: &RedisServer,
    database: &BenchDatabase,
) -> anyhow::Result<()> {
    let mut report = Report::new(knobs.server_workers, knobs.client_threads);
    let started = Instant::now();

    // --- sessiond on the bench's stores ---------------------------------------------------
    let pg_defaults = sessiond_app::Settings::default().database;
    let pool = PgPool::connect(&PgSettings {
        url: database.url.clone(),
        max_connections: pg_defaults.max_connections,
        acquire_timeout: Duration::from_millis(pg_defaults.acquire_timeout_ms),
        statement_timeout: Duration::from_secs(120),
    })
    .await?;
    run_migrations(&pool).await?;
    let cache = RedisSessionCache::connect(RedisSettings {
        url: redis.url.clone(),
        key_prefix: String::new(),
        command_timeout: Duration::from_millis(500),
    })
    .await?;
    let mut settings = sessiond_app::Settings {
        env: "bench".into(),
        bind_addr: "127.0.0.1:0".parse()?,
        ..sessiond_app::Settings::default()
    };
    settings.jwt.secret = Some(SecretString::from(JWT_SECRET));
    // Cheap hashing for the bulk sign-ins; the real default cost is measured on its own.
    let cheap = Argon2Cost {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    settings.argon2 = Argon2Config {
        memory_kib: cheap.memory_kib,
        iterations: cheap.iterations,
        parallelism: cheap.parallelism,
    };
    settings.http.workers = knobs.server_workers;
    settings.cleanup.interval = 0; // the bench runs cleanup passes itself
    // The 10 000 bulk sessions share one `last_activity`, so at the default 60 s they would
    // all fall due together, once a minute, in the middle of some measurement: a burst of
    // 10 000 activity writes that no real population (activity spread over the interval)
    // has. Past the bench's length instead: the throughput figures are validation alone.
    settings.sessions.activity_interval = 600;
    let app = Application::build_with_storage(
        settings.clone(),
        Storage::postgres(pool.clone(), Some(cache)),
    )
    .await?;
    let addr: SocketAddr = ([127, 0, 0, 1], app.port()).into();
    tokio::spawn(app.run_until_stopped());

    // --- 10 000 users with one session each, in bulk ----------------------------------------
    let sql = env::connect(&database.url).await?;
    let cheap_hasher = Argon2Hasher::new(cheap)?;
    let default_hasher = Argon2Hasher::new(Argon2Cost::default())?;
    let password = Password::presented(PASSWORD.into())?;
    let cheap_hash = cheap_hasher.hash(&password).await?;
    let default_hash = default_hasher.hash(&password).await?;
    let t = Instant::now();
    let users = knobs.users;
    sql.batch_execute(&format!(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT gen_random_uuid(), 'bench-' || i || '@example.com', '{cheap}', 'guest', now(), now() \
         FROM generate_series(0, {last}) AS i; \
         INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT gen_random_uuid(), 'bench-slow-' || i || '@example.com', '{slow}', 'guest', now(), now() \
         FROM generate_series(0, 63) AS i; \
         INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'bench-list@example.com', '{cheap}', 'guest', now(), now()); \
         INSERT INTO user_sessions (id, user_id, device_info, ip_address, user_agent, created_at, \
             last_activity, expires_at, is_active, role, browser, refresh_token_hash) \
         SELECT gen_random_uuid(), id, 'iPhone', '203.0.113.' || (random() * 250)::int, '{IPHONE}', \
             now(), now(), now() + interval '24 hours', true, 'guest', 'Safari', \
             sha256(convert_to(gen_random_uuid()::text, 'UTF8')) \
         FROM users WHERE email LIKE 'bench-%' AND email NOT LIKE 'bench-slow-%' \
             AND email <> 'bench-list@example.com'; \
         ANALYZE",
        cheap = cheap_hash.as_str(),
        slow = default_hash.as_str(),
        last = users - 1,
    ))
    .await?;
    let sessions: Vec<(UserId, SessionId)> = rows(
        &sql,
        "SELECT s.user_id, s.id FROM user_sessions s JOIN users u ON u.id = s.user_id \
         ORDER BY u.email",
    )
    .await?
    .into_iter()
    .map(|row| {
        (
            UserId::from_uuid(row[0].parse().unwrap()),
            SessionId::from_uuid(row[1].parse().unwrap()),
        )
    })
    .collect();
    let jwt = JwtCodec::new(JwtSettings {
        current: SigningKey {
            kid: settings.jwt.kid.clone(),
            secret: settings.jwt_secret(),
        },
        previous: Vec::new(),
        issuer: settings.jwt.issuer.clone(),
        audience: settings.jwt.audience.clone(),
        leeway_seconds: u64::from(settings.jwt.leeway),
    })
    .unwrap();
    let policy = settings.session_policy();
    let issued = now();
    let tokens: Vec<HeaderValue> = sessions
        .iter()
        .map(|&(user_id, session_id)| {
            let claims = AccessClaims {
                user_id,
                session_id,
                role: Role::Guest,
                issued_at: issued,
                expires_at: policy.access_token_expiry(issued, issued + time::Duration::days(1)),
                token_id: uuid::Uuid::new_v4(),
            };
            let token = jwt.encode(&claims).unwrap();
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
        })
        .collect();
    eprintln!(
        "bench: {} users and sessions in {:.1?} (bulk SQL; tokens minted with the app's JWT settings)",
        sessions.len(),
        t.elapsed()
    );
    let tokens = Arc::new(tokens);
    let mut fixture = Fixture {
        addr,
        pool,
        sql,
        sessions,
        tokens,
    };

    // --- fill the cache through the API (every token must be accepted) ---------------------
    let mut rconn = redis.connection().await?;
    let memory_before = env::used_memory(&mut rconn).await?;
    {
        let tokens = Arc::clone(&fixture.tokens);
        let sweep = drive(
            &clients,
            addr,
            Plan {
                connections: 32,
                warm_up: Duration::ZERO,
                stop: Stop::Each((tokens.len() as u64).div_ceil(32)),
            },
            move |w| GetWithAuth::new(addr, "/api/v1/sessions/current", tokens.clone(), w, 32),
        )
        .await?;
        anyhow::ensure!(
            sweep.errors == 0,
            "{} of {} validations failed: the minted tokens are not accepted",
            sweep.errors,
            sweep.requests
        );
    }
    let cached = count_keys(&mut rconn, "session:*").await?;
    let memory_after = env::used_memory(&mut rconn).await?;
    report.note(format!(
        "Validation: all {} bulk sessions validated through the API (cold: PostgreSQL read + Redis refill), {} now cached.",
        fixture.sessions.len(),
        cached
    ));

    // --- storage -----------------------------------------------------------------------------
    storage_figures(
        &mut report,
        &mut rconn,
        &fixture,
        cached,
        memory_after.saturating_sub(memory_before),
    )
    .await?;

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let load_tokens = Arc::clone(&fixture.tokens);
    if only == "propagation" {
        return propagation::run(&clients, redis, database, &fixture.sql, load_tokens, knobs).await;
    }

    // --- commands and statements per validated request --------------------------------------
    // Right after the sweep, seconds after the bulk insert set every `last_activity`: no
    // session's activity write (SPEC §1: one per session per `activity_interval`) falls due
    // inside the window, which so sees what a validation itself sends.
    if only.is_empty() {
        per_request_counts(&mut report, &clients, &mut rconn, &fixture).await?;
    }

    // --- validate vs floor vs ceiling -------------------------------------------------------
    let (floor_tokens, values) = reference_inputs(&mut rconn, &fixture.sessions).await?;
    let floor_addr = reference::spawn_floor(&redis.url, knobs.server_workers).await?;
    let worker_floor_addr = reference::spawn_floor_per_worker(&redis.url, knobs.server_workers)?;
    let ceiling_addr = reference::spawn_ceiling(values, knobs.server_workers)?;
    let floor_tokens = Arc::new(floor_tokens);
    // One load alone (for a profiler), or the loads and their ratios only.
    let only_one = ["validate", "floor", "floor-per-worker", "ceiling"].contains(&only.as_str());
    let mut best: HashMap<(&str, usize), Outcome> = HashMap::new();
    let targets: [(&str, SocketAddr, &str, &Arc<Vec<HeaderValue>>); 4] = [
        (
            "validate",
            addr,
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
                let outcome = drive(
                    &clients,
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
    if only == "ratio" {
        return Ok(());
    }

    // --- sign-in and refresh -----------------------------------------------------------------
    let refresh_tokens = sign_ins(
        &mut report,
        &clients,
        addr,
        users,
        &cheap_hasher,
        &default_hasher,
        &password,
        &cheap_hash,
        &default_hash,
    )
    .await?;
    refreshes(&mut report, &clients, addr, refresh_tokens, knobs).await?;

    // --- listing and cleanup over 1 000 000 sessions ---------------------------------------
    cleanup_and_listing(&mut report, &clients, &mut fixture, knobs.cleanup_sessions).await?;
    propagation::run(&clients, redis, database, &fixture.sql, load_tokens, knobs).await?;

    report.note(format!(
        "Whole run: {:.0} s.",
        started.elapsed().as_secs_f64()
    ));
    report.finish()?;
    Ok(())
}

async fn count_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> anyhow::Result<u64> {
    let mut cursor = 0u64;
    let mut count = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        count += keys.len() as u64;
        if next == 0 {
            return Ok(count);
        }
        cursor = next;
    }
}

fn session_key(user_id: UserId, session_id: SessionId) -> String {
    format!("session:{{{user_id}}}:{session_id}")
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

async fn storage_figures(
    report: &mut Report,
    conn: &mut redis::aio::MultiplexedConnection,
    fixture: &Fixture,
    cached: u64,
    memory_delta: u64,
) -> anyhow::Result<()> {
    let sample = fixture.sessions.iter().step_by(10).take(1000);
    let (mut key_bytes, mut index_bytes, mut value_len, mut n) = (0u64, 0u64, 0u64, 0u64);
    for &(user_id, session_id) in sample {
        let key = session_key(user_id, session_id);
        let usage: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(conn)
            .await?;
        let index: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(format!("sessions:{{{user_id}}}"))
            .arg("SAMPLES")
            .arg(0)
            .query_async(conn)
            .await?;
        let len: u64 = redis::cmd("STRLEN").arg(&key).query_async(conn).await?;
        key_bytes += usage.unwrap_or(0);
        index_bytes += index.unwrap_or(0);
        value_len += len;
        n += 1;
    }
    let n = n.max(1);
    let per_key = key_bytes / n;
    let per_index = index_bytes / n;
    let per_used = memory_delta / cached.max(1);
    report.row(Row::target(
        "Redis bytes per session: MEMORY USAGE of the session key (avg of 1 000)".into(),
        format!(
            "{per_key} B (value {} B, key {} B)",
            value_len / n,
            session_key(fixture.sessions[0].0, fixture.sessions[0].1).len()
        ),
        "≤ 256 B",
        per_key <= 256,
    ));
    report.row(Row::info(
        "Redis bytes per session: + the user's index (1 member)".into(),
        format!("{} B (index key {per_index} B)", per_key + per_index),
    ));
    report.row(Row::info(
        "Redis bytes per session: used_memory delta / cached sessions".into(),
        format!("{per_used} B ({cached} sessions, {memory_delta} B)"),
    ));
    let pg = rows(
        &fixture.sql,
        "SELECT pg_total_relation_size('user_sessions'), pg_relation_size('user_sessions'), \
             (SELECT count(*) FROM user_sessions), \
             (SELECT avg(pg_column_size(s.*))::int FROM user_sessions s)",
    )
    .await?;
    let (total, heap, count, column): (u64, u64, u64, u64) = (
        pg[0][0].parse()?,
        pg[0][1].parse()?,
        pg[0][2].parse()?,
        pg[0][3].parse()?,
    );
    report.row(Row::info(
        "PostgreSQL bytes per session row".into(),
        format!(
            "{} B with indexes ({} B heap, {column} B pg_column_size avg; {count} rows)",
            total / count.max(1),
            heap / count.max(1)
        ),
    ));
    Ok(())
}

/// PostgreSQL counters of the bench database: (transactions, scans, rows written).
async fn pg_counters(sql: &tokio_postgres::Client) -> anyhow::Result<(i64, i64, i64)> {
    let r = rows(
        sql,
        "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database \
                 WHERE datname = current_database()), \
                coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0), \
                coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) \
         FROM pg_stat_user_tables",
    )
    .await?;
    Ok((r[0][0].parse()?, r[0][1].parse()?, r[0][2].parse()?))
}

async fn per_request_counts(
    report: &mut Report,
    clients: &Handle,
    rconn: &mut redis::aio::MultiplexedConnection,
    fixture: &Fixture,
) -> anyhow::Result<()> {
    // pg_stat_statements counts statements exactly, but only when preloaded; otherwise the
    // database's transaction counter (every statement sessiond sends outside a transaction
    // block is one) and the tables' scan counters are used.
    let statements = fixture
        .sql
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .is_ok()
        && fixture
            .sql
            .batch_execute("SELECT pg_stat_statements_reset()")
            .await
            .is_ok();
    // Backends publish their statistics at most once a second, and idle ones after 10 s.
    let flush = Duration::from_secs(11);
    tokio::time::sleep(flush).await;
    let stmt_before: i64 = if statements {
        scalar(
            &fixture.sql,
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await?
    } else {
        0
    };
    let pg_before = pg_counters(&fixture.sql).await?;
    let redis_before = env::command_calls(rconn).await?;
    let requests = 50_000u64;
    let tokens = Arc::clone(&fixture.tokens);
    let addr = fixture.addr;
    let outcome = drive(
        clients,
        addr,
        Plan {
            connections: 32,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(requests),
        },
        move |w| GetWithAuth::new(addr, "/api/v1/sessions/current", tokens.clone(), w, 32),
    )
    .await?;
    let redis_after = env::command_calls(rconn).await?;
    tokio::time::sleep(flush).await;
    let pg_after = pg_counters(&fixture.sql).await?;
    let stmt_after: i64 = if statements {
        scalar(
            &fixture.sql,
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await?
    } else {
        0
    };
    let before: HashMap<String, u64> = redis_before.into_iter().collect();
    let mut redis_total = 0u64;
    let mut by_command = Vec::new();
    for (name, calls) in redis_after {
        // The bench's own INFO calls are not sessiond's.
        if name == "info" {
            continue;
        }
        let delta = calls - before.get(&name).copied().unwrap_or(0);
        if delta > 0 {
            redis_total += delta;
            by_command.push(format!("{name} {delta}"));
        }
    }
    let n = outcome.requests as f64;
    let per_redis = redis_total as f64 / n;
    report.row(Row::target(
        format!(
            "Redis commands per validated request ({} requests)",
            outcome.requests
        ),
        format!("{per_redis:.3} ({})", by_command.join(", ")),
        "exactly 1",
        redis_total == outcome.requests && outcome.errors == 0,
    ));
    // The bench's own statistics reads are transactions too: one per pg_counters call, and
    // two per pg_stat_statements read, between the two snapshots.
    let own = 1 + if statements { 1 } else { 0 };
    let xacts = pg_after.0 - pg_before.0 - own;
    let scans = pg_after.1 - pg_before.1;
    let writes = pg_after.2 - pg_before.2;
    let (figure, measured) = if statements {
        let calls = stmt_after - stmt_before - 2;
        (
            format!(
                "{:.4} (pg_stat_statements: {calls} statements; {xacts} transactions, {scans} table scans, {writes} rows written)",
                calls as f64 / n
            ),
            calls,
        )
    } else {
        (
            format!(
                "{:.4} (pg_stat_database: {xacts} transactions; pg_stat_user_tables: {scans} scans, {writes} rows written; pg_stat_statements not loaded)",
                xacts as f64 / n
            ),
            xacts,
        )
    };
    report.row(Row::target(
        "PostgreSQL statements per validated request".into(),
        figure,
        "0",
        measured <= 0,
    ));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn sign_ins(
    report: &mut Report,
    clients: &Handle,
    addr: SocketAddr,
    users: u64,
    cheap_hasher: &Argon2Hasher,
    default_hasher: &Argon2Hasher,
    password: &Password,
    cheap_hash: &sessiond_domain::model::PasswordHash,
    default_hash: &sessiond_domain::model::PasswordHash,
) -> anyhow::Result<Vec<String>> {
    // argon2 alone, one at a time (as one sign-in pays it) and on both cores at once.
    let time_verify = |hasher: &Argon2Hasher, hash: &sessiond_domain::model::PasswordHash, n| {
        let (hasher, hash, password) = (hasher.clone(), hash.clone(), password.clone());
        async move {
            let t = Instant::now();
            for _ in 0..n {
                assert!(hasher.verify(&password, &hash).await.unwrap());
            }
            t.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
        }
    };
    let cheap_ms = time_verify(cheap_hasher, cheap_hash, 200).await;
    let default_ms = time_verify(default_hasher, default_hash, 20).await;
    let t = Instant::now();
    let (a, b) = tokio::join!(
        time_verify(default_hasher, default_hash, 10),
        time_verify(default_hasher, default_hash, 10)
    );
    let _ = (a, b);
    let default_rate = 20.0 / t.elapsed().as_secs_f64();

    let sign_ins = 2_000u64.min(users);
    let collected = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&collected);
    let outcome = drive(
        clients,
        addr,
        Plan {
            connections: 32,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(sign_ins),
        },
        move |w| scenarios::SignIn::new(addr, "bench-", w, 32, users, Arc::clone(&sink)),
    )
    .await?;
    let slow = drive(
        clients,
        addr,
        Plan {
            connections: 2,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(64),
        },
        move |w| {
            scenarios::SignIn::new(
                addr,
                "bench-slow-",
                w,
                2,
                64,
                Arc::new(Mutex::new(Vec::new())),
            )
        },
    )
    .await?;
    let rate = outcome.rate();
    // Core-milliseconds per sign-in on this 2-core machine, minus the hash itself.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let core_ms = cores * 1000.0 / rate;
    report.row(Row::info(
        format!("sign-in/s, cheap argon2 (m=1024 KiB, t=1), 32 connections, {sign_ins} sign-ins"),
        format!(
            "{rate:.0}/s (p50 {:.1} ms, p99 {:.1} ms; errors {})",
            outcome.ms(0.5),
            outcome.ms(0.99),
            outcome.errors
        ),
    ));
    report.row(Row::info(
        "argon2 verify alone: cheap / default (m=19456 KiB, t=2, p=1)".into(),
        format!(
            "{cheap_ms:.2} ms / {default_ms:.1} ms each; default on {cores:.0} cores: {default_rate:.0}/s"
        ),
    ));
    report.row(Row::info(
        "sign-in minus hashing (what sessiond adds)".into(),
        format!(
            "{:.2} core-ms per sign-in ({core_ms:.2} core-ms per sign-in at {rate:.0}/s on {cores:.0} cores, minus {cheap_ms:.2} ms of cheap hash)",
            core_ms - cheap_ms
        ),
    ));
    report.row(Row::info(
        "sign-in/s at the default argon2 cost, 2 connections, 64 sign-ins".into(),
        format!(
            "{:.0}/s (p50 {:.0} ms; errors {}) — the hash is {:.0}% of it",
            slow.rate(),
            slow.ms(0.5),
            slow.errors,
            100.0 * (default_ms / 1000.0 * slow.rate() / cores).min(1.0)
        ),
    ));
    let tokens = collected.lock().unwrap().clone();
    Ok(tokens)
}

async fn refreshes(
    report: &mut Report,
    clients: &Handle,
    addr: SocketAddr,
    tokens: Vec<String>,
    knobs: Knobs,
) -> anyhow::Result<()> {
    let connections = 32usize;
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); connections];
    for (i, token) in tokens.into_iter().enumerate() {
        shares[i % connections].push(token);
    }
    let shares = Arc::new(Mutex::new(shares));
    let outcome = drive(
        clients,
        addr,
        Plan {
            connections,
            warm_up: Duration::from_secs(1),
            stop: Stop::After(knobs.duration),
        },
        move |w| {
            let mine = std::mem::take(&mut shares.lock().unwrap()[w]);
            scenarios::Refresh::new(addr, mine)
        },
    )
    .await?;
    report.row(Row::info(
        "refresh rotations/s, 32 connections".into(),
        format!(
            "{:.0}/s (p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms; errors {})",
            outcome.rate(),
            outcome.ms(0.5),
            outcome.ms(0.99),
            outcome.ms(0.999),
            outcome.errors
        ),
    ));
    Ok(())
}

async fn listing(
    clients: &Handle,
    addr: SocketAddr,
    token: &HeaderValue,
) -> anyhow::Result<Outcome> {
    let headers = Arc::new(vec![token.clone()]);
    drive(
        clients,
        addr,
        Plan {
            connections: 1,
            warm_up: Duration::from_millis(500),
            stop: Stop::Requests(1_000),
        },
        move |w| GetWithAuth::new(addr, "/api/v1/sessions", headers.clone(), w, 1),
    )
    .await
}

async fn explain(sql: &tokio_postgres::Client, statement: &str) -> anyhow::Result<String> {
    let lines = rows(sql, &format!("EXPLAIN {statement}")).await?;
    Ok(lines
        .into_iter()
        .map(|mut row| row.swap_remove(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

async fn cleanup_and_listing(
    report: &mut Report,
    clients: &Handle,
    fixture: &mut Fixture,
    expired: u64,
) -> anyhow::Result<()> {
    let addr = fixture.addr;
    // The listing user: 5 sessions signed in through the API.
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&tokens);
    let signed = drive(
        clients,
        addr,
        Plan {
            connections: 1,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(5),
        },
        move |_| scenarios::SignIn::single(addr, "bench-list@example.com", Arc::clone(&sink)),
    )
    .await?;
    anyhow::ensure!(signed.errors == 0, "the listing user could not sign in");
    let access = tokens.lock().unwrap()[0].clone();
    let access = HeaderValue::from_str(&format!("Bearer {access}"))?;
    let small = listing(clients, addr, &access).await?;
    let small_rows: u64 = scalar(&fixture.sql, "SELECT count(*) FROM user_sessions").await?;

    // 1 000 000 sessions, expired an hour ago but not yet ended, over 100 000 users.
    let sql = &fixture.sql;
    let per_user = 10u64;
    let owners = expired.div_ceil(per_user);
    let t = Instant::now();
    sql.batch_execute(&format!(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT gen_random_uuid(), 'bench-old-' || i || '@example.com', 'x', 'guest', \
             now() - interval '3 days', now() - interval '3 days' \
         FROM generate_series(1, {owners}) AS i; \
         INSERT INTO user_sessions (id, user_id, device_info, ip_address, user_agent, created_at, \
             last_activity, expires_at, is_active, role, browser, refresh_token_hash) \
         SELECT gen_random_uuid(), u.id, 'iPhone', '198.51.100.7', '{IPHONE}', \
             now() - interval '25 hours', now() - interval '25 hours', \
             now() - interval '1 hour', true, 'guest', 'Safari', \
             sha256(convert_to(u.id::text || s::text, 'UTF8')) \
         FROM (SELECT id FROM users WHERE email LIKE 'bench-old-%') AS u, \
             generate_series(1, {per_user}) AS s \
         LIMIT {expired}; \
         ANALYZE"
    ))
    .await?;
    let inserted: u64 = scalar(sql, "SELECT count(*) FROM user_sessions").await?;
    let insert_secs = t.elapsed().as_secs_f64();
    let big = listing(clients, addr, &access).await?;
    let list_user: String = scalar(
        sql,
        "SELECT id FROM users WHERE email = 'bench-list@example.com'",
    )
    .await?;
    let list_plan = explain(
        sql,
        &format!(
            "SELECT * FROM user_sessions WHERE user_id = '{list_user}' AND is_active \
             AND expires_at > now() ORDER BY last_activity DESC, created_at DESC, id"
        ),
    )
    .await?;

    let at = now();
    let cleanup = PgSessionCleanup::new(fixture.pool.clone());
    let expire_plan = cleanup
        .explain(CleanupBatch::Expire, at, CLEANUP_BATCH)
        .await?;
    let t = Instant::now();
    let pass = cleanup
        .run_pass(at, at - time::Duration::days(30), at, CLEANUP_BATCH)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the cleanup pass was skipped (lock held)"))?;
    let expire_secs = t.elapsed().as_secs_f64();
    let ended = pass.expired.len() as u64;
    sql.batch_execute("ANALYZE user_sessions").await?;
    let after_expire = listing(clients, addr, &access).await?;
    // "After retention": purge everything that ended before now.
    let purge_at = now();
    let purge_plan = cleanup
        .explain(CleanupBatch::Purge, purge_at, CLEANUP_BATCH)
        .await?;
    let t = Instant::now();
    let purge = cleanup
        .run_pass(purge_at, purge_at, purge_at, CLEANUP_BATCH)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the purge pass was skipped (lock held)"))?;
    let purge_secs = t.elapsed().as_secs_f64();

    let uses = |plan: &str, index: &str| plan.contains(index) && !plan.contains("Seq Scan");
    report.row(Row::target(
        format!("cleanup: end {ended} expired sessions (PgSessionCleanup::run_pass, batches of {CLEANUP_BATCH})"),
        format!("{expire_secs:.1} s ({:.0} rows/s; bulk insert took {insert_secs:.0} s)", ended as f64 / expire_secs),
        "< 30 s for 1 000 000",
        ended >= 1_000_000 && expire_secs < 30.0 && uses(&expire_plan, "idx_sessions_expiring"),
    ));
    report.row(Row::info(
        format!(
            "cleanup: purge {} ended sessions after retention",
            purge.purged
        ),
        format!(
            "{purge_secs:.1} s ({:.0} rows/s)",
            purge.purged as f64 / purge_secs
        ),
    ));
    let flat = small.ms(0.5) * 3.0 + 1.0;
    report.row(Row::target(
        "listing: GET /api/v1/sessions, user with 5 sessions, p50 / p99".into(),
        format!(
            "{:.2} / {:.2} ms among {small_rows} rows; {:.2} / {:.2} ms among {inserted} rows ({} expired-not-ended); {:.2} / {:.2} ms after the expire pass",
            small.ms(0.5),
            small.ms(0.99),
            big.ms(0.5),
            big.ms(0.99),
            expired,
            after_expire.ms(0.5),
            after_expire.ms(0.99),
        ),
        "O(sessions of the user)",
        big.ms(0.5) <= flat && after_expire.ms(0.5) <= flat && uses(&list_plan, "idx_sessions_user"),
    ));
    report.plan("expire batch (EXPIRE_BATCH), 1 000 000 due", &expire_plan);
    report.plan("purge batch (PURGE_BATCH), 1 000 000 ended", &purge_plan);
    report.plan(
        "listing (the diesel query of PgSessionRepository::list_live, as SQL)",
        &list_plan,
    );
    Ok(())
}
