//! Bytes per session: in Redis (the session key, the user's index, and the growth of
//! `used_memory` over the cache fill) and in PostgreSQL (the row with its indexes).

use deadpool_redis::redis;

use crate::env::{rows, session_key};
use crate::fixture::{Filled, Fixture};
use crate::report::{Report, Row};

pub async fn bytes_per_session(
    report: &mut Report,
    conn: &mut redis::aio::MultiplexedConnection,
    fixture: &Fixture,
    filled: Filled,
) -> anyhow::Result<()> {
    let Filled {
        cached,
        memory_delta,
    } = filled;
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
