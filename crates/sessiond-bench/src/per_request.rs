//! What one validated request sends to the stores in steady state (near cache filled, no
//! activity due): Redis commands (`INFO commandstats`) and PostgreSQL statements
//! (`pg_stat_statements` when it is loaded, otherwise the database's transaction counter and
//! the tables' scan and write counters), over 50 000 validations of the bulk sessions.
//!
//! sessiond also talks to both stores when nobody validates: the revocation feed reads the
//! log (every quarter of the revocation bound without notifications) and probes its
//! listener, and the heartbeat script runs as often in Redis. So an idle window of the same
//! shape comes first, measures that background per second, and the validations' own share
//! is what the load window holds beyond it:
//!
//! 1. 11 s of quiet (PostgreSQL backends publish statistics at most every second, idle
//!    ones after 10 s), snapshot;
//! 2. the idle window ([`IDLE`]), snapshot: the background per second;
//! 3. 50 000 validations at 32 connections, Redis snapshot (Redis counts at once);
//! 4. 11 s, PostgreSQL snapshot.
//!
//! Redis: the heartbeat script's commands (`EVALSHA` and the `TIME`, `HSET`, `HGETALL`,
//! `HDEL`, `PEXPIRE` it runs, counted by Redis one by one) are reported per second; every
//! other command in the load window is the validations' (`GET` and `SET` are what a
//! near-cache miss would send). PostgreSQL: scans of `user_sessions` and `users` and rows
//! written there are the validations' (and activity batches', of which there are none here:
//! the bench's `activity_interval` is 600 s), scans of `session_revocations` are the feed's
//! log reads, and the transactions beyond the idle window's rate are the residual.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use tokio::runtime::Handle;

use crate::env::{self, rows, scalar};
use crate::fixture::Fixture;
use crate::load::{self, GetWithAuth, Plan, Stop};
use crate::modes::Sampler;
use crate::report::{Report, Row};
use crate::validation::STATISTICS_DELAY;

/// The idle window: about as long as the load window (50 000 validations and the 11 s
/// after them).
const IDLE: Duration = Duration::from_secs(13);
const REQUESTS: u64 = 50_000;

/// The commands the heartbeat script sends (and `EVALSHA` itself).
const HEARTBEAT_COMMANDS: [&str; 6] = ["evalsha", "time", "hset", "hgetall", "hdel", "pexpire"];

/// PostgreSQL counters of the bench database.
#[derive(Debug, Clone, Copy)]
struct PgCounters {
    at: Instant,
    /// Committed and rolled back transactions.
    transactions: i64,
    /// Scans of `user_sessions` and `users`: a session or user read.
    session_scans: i64,
    user_scans: i64,
    /// Rows inserted, updated or deleted in `user_sessions` and `users`.
    writes: i64,
    /// Scans of `session_revocations`: the feed's log reads.
    log_reads: i64,
    /// `pg_stat_statements` calls in this database, when it is loaded.
    statements: Option<i64>,
}

impl PgCounters {
    async fn read(sql: &tokio_postgres::Client, statements: bool) -> anyhow::Result<Self> {
        let table = |name: &str| {
            format!("coalesce((SELECT {{}} FROM pg_stat_user_tables WHERE relname = '{name}'), 0)")
        };
        let scans = "coalesce(seq_scan, 0) + coalesce(idx_scan, 0)";
        let writes = "n_tup_ins + n_tup_upd + n_tup_del";
        let r = rows(
            sql,
            &format!(
                "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database \
                         WHERE datname = current_database()), {}, {}, {} + {}, {}",
                table("user_sessions").replace("{}", scans),
                table("users").replace("{}", scans),
                table("user_sessions").replace("{}", writes),
                table("users").replace("{}", writes),
                table("session_revocations").replace("{}", scans),
            ),
        )
        .await?;
        let statements = if statements {
            Some(
                scalar(
                    sql,
                    "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Self {
            at: Instant::now(),
            transactions: r[0][0].parse()?,
            session_scans: r[0][1].parse()?,
            user_scans: r[0][2].parse()?,
            writes: r[0][3].parse()?,
            log_reads: r[0][4].parse()?,
            statements,
        })
    }

    /// `self` − `earlier`, and the seconds between them.
    fn since(&self, earlier: &Self) -> (Self, f64) {
        (
            Self {
                at: self.at,
                transactions: self.transactions - earlier.transactions,
                session_scans: self.session_scans - earlier.session_scans,
                user_scans: self.user_scans - earlier.user_scans,
                writes: self.writes - earlier.writes,
                log_reads: self.log_reads - earlier.log_reads,
                statements: self.statements.zip(earlier.statements).map(|(a, b)| a - b),
            },
            (self.at - earlier.at).as_secs_f64(),
        )
    }
}

/// Redis commands as (name → calls), the bench's own `INFO` left out, and when.
struct RedisCounters {
    at: Instant,
    calls: HashMap<String, u64>,
}

impl RedisCounters {
    async fn read(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<Self> {
        let calls = env::command_calls(conn)
            .await?
            .into_iter()
            .filter(|(name, _)| name != "info")
            .collect();
        Ok(Self {
            at: Instant::now(),
            calls,
        })
    }

    /// Commands called since `earlier` (name, calls), most called first, and the seconds
    /// between them.
    fn since(&self, earlier: &Self) -> (Vec<(String, u64)>, f64) {
        let mut delta: Vec<(String, u64)> = self
            .calls
            .iter()
            .map(|(name, calls)| {
                let before = earlier.calls.get(name).copied().unwrap_or(0);
                (name.clone(), calls - before)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        delta.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (delta, (self.at - earlier.at).as_secs_f64())
    }
}

fn per_second(commands: &[(String, u64)], seconds: f64) -> String {
    commands
        .iter()
        .map(|(name, n)| format!("{name} {:.1}", *n as f64 / seconds))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn redis_commands_and_sql_statements(
    report: &mut Report,
    clients: &Handle,
    rconn: &mut redis::aio::MultiplexedConnection,
    fixture: &Fixture,
) -> anyhow::Result<()> {
    // pg_stat_statements counts statements exactly, but only when preloaded.
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
    tokio::time::sleep(STATISTICS_DELAY).await;
    let pg_idle_from = PgCounters::read(&fixture.sql, statements).await?;
    let redis_idle_from = RedisCounters::read(rconn).await?;
    tokio::time::sleep(IDLE).await;
    let redis_load_from = RedisCounters::read(rconn).await?;
    let pg_load_from = PgCounters::read(&fixture.sql, statements).await?;

    let tokens = Arc::clone(&fixture.tokens);
    let addr = fixture.addr;
    let sampler = Sampler::start(clients, fixture.metrics);
    let outcome = load::run_on(
        clients,
        addr,
        Plan {
            connections: 32,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(REQUESTS),
        },
        move |w| GetWithAuth::new(addr, "/api/v1/sessions/current", tokens.clone(), w, 32),
    )
    .await?;
    let modes = sampler.stop().await;
    let redis_load_to = RedisCounters::read(rconn).await?;
    tokio::time::sleep(STATISTICS_DELAY).await;
    let pg_load_to = PgCounters::read(&fixture.sql, statements).await?;

    let n = outcome.requests as f64;
    let (idle_commands, idle_secs) = redis_load_from.since(&redis_idle_from);
    let (load_commands, load_secs) = redis_load_to.since(&redis_load_from);
    let heartbeat = |(name, _): &&(String, u64)| HEARTBEAT_COMMANDS.contains(&name.as_str());
    let validation: Vec<(String, u64)> = load_commands
        .iter()
        .filter(|c| !heartbeat(c))
        .cloned()
        .collect();
    let background: Vec<(String, u64)> = load_commands.iter().filter(heartbeat).cloned().collect();
    let idle_background: Vec<(String, u64)> =
        idle_commands.iter().filter(heartbeat).cloned().collect();
    let validation_total: u64 = validation.iter().map(|(_, n)| n).sum();
    let calls = |name: &str| {
        load_commands
            .iter()
            .find(|(c, _)| c == name)
            .map_or(0, |(_, n)| *n)
    };
    let (gets, sets) = (calls("get"), calls("set"));
    report.row(Row::target(
        format!(
            "Redis commands per validated request, steady state ({} requests, near cache filled)",
            outcome.requests
        ),
        format!(
            "{:.4} (GET {gets}, SET {sets}; other than the heartbeat script: {}; {} errors)",
            validation_total as f64 / n,
            if validation.is_empty() {
                "none".to_owned()
            } else {
                validation
                    .iter()
                    .map(|(name, calls)| format!("{name} {calls}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            outcome.errors
        ),
        "0 (0 GET/SET)",
        validation_total == 0 && outcome.errors == 0,
    ));
    report.row(Row::info(
        "Redis, the heartbeat script (not per request): commands per second".into(),
        format!(
            "during the validations: {} ({load_secs:.1} s); idle: {} ({idle_secs:.1} s)",
            per_second(&background, load_secs),
            per_second(&idle_background, idle_secs)
        ),
    ));

    let (idle, idle_secs) = pg_load_from.since(&pg_idle_from);
    let (load, load_secs) = pg_load_to.since(&pg_load_from);
    // One of the bench's own statistics reads falls in each window (two with
    // pg_stat_statements): the idle rate carries them as it carries the feed.
    let idle_rate = idle.transactions as f64 / idle_secs;
    let residual = load.transactions as f64 - idle_rate * load_secs;
    // A busy backend publishes its counts at most a second late: each window's two ends
    // may each be off by a second of the feed's rate.
    let noise = 2.0 * idle_rate + 2.0;
    let exact = load.session_scans == 0 && load.user_scans == 0 && load.writes == 0;
    let statements_note = match load.statements.zip(idle.statements) {
        Some((load_calls, idle_calls)) => format!(
            "; pg_stat_statements: {:.1} statements/s beyond the idle {:.1}/s",
            load_calls as f64 / load_secs - idle_calls as f64 / idle_secs,
            idle_calls as f64 / idle_secs
        ),
        None => "; pg_stat_statements not loaded".to_owned(),
    };
    report.row(Row::target(
        "PostgreSQL statements per validated request, outside activity batches".into(),
        format!(
            "{:.4} (reads of user_sessions {}, of users {}, rows written {}; transactions beyond the feed's background: {residual:+.0} of {} in {load_secs:.1} s, within ±{noise:.0} of noise{statements_note}; during the validations: {})",
            residual.max(0.0) / n,
            load.session_scans,
            load.user_scans,
            load.writes,
            load.transactions,
            modes.describe()
        ),
        "0",
        exact && residual.abs() <= noise,
    ));
    report.row(Row::info(
        "PostgreSQL, the revocation feed (not per request): statements per second".into(),
        format!(
            "idle: {:.1} transactions/s, of which {:.1} log reads/s (scans of session_revocations) and {:.1}/s listener probes and the bench's own reads; during the validations: {:.1} log reads/s",
            idle_rate,
            idle.log_reads as f64 / idle_secs,
            (idle.transactions - idle.log_reads) as f64 / idle_secs,
            load.log_reads as f64 / load_secs,
        ),
    ));
    Ok(())
}
