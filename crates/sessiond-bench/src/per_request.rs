//! What one validated request sends to the stores: Redis commands (`INFO commandstats`)
//! and PostgreSQL statements (`pg_stat_statements` when it is loaded, otherwise the
//! database's transaction and the tables' scan counters), over 50 000 validations of the
//! bulk sessions, all cached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis;
use tokio::runtime::Handle;

use crate::env::{self, rows, scalar};
use crate::fixture::Fixture;
use crate::load::{self, GetWithAuth, Plan, Stop};
use crate::report::{Report, Row};

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

pub async fn redis_commands_and_sql_statements(
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
    let outcome = load::run_on(
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
