//! [`SessionStatistics`] on the counters of migration `2026-12-22-000013_session_statistics`.
//!
//! Triggers on `user_sessions` keep the counts of open sessions and of sign-ins and ends per
//! hour, in the transaction of each change; this adapter adds failed sign-ins, reads the
//! counters (a sum over a few rows per backend, per hour: no scan of the sessions), and
//! folds and forgets them. Every writer adds to rows of its own backend (`slot` =
//! `pg_backend_pid()`), so no two transactions ever wait on one counter.

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    HourlyCounts, InvalidationReason, Role, StoredStatistics, hour_start,
};
use sessiond_domain::ports::SessionStatistics;
use time::OffsetDateTime;

use crate::{PgError, PgPool};

/// Key of the transaction-scoped advisory lock of [`SessionStatistics::forget_before`]: one
/// fold at a time, so that two never upsert the folded rows in different orders.
const FOLD_LOCK_KEY: i64 = 0x7365_7373_7374_6174; // "sessstat"

const RECORD_FAILED_SIGN_IN: &str = "\
INSERT INTO session_stats_hourly AS h (hour, event, slot, events) \
VALUES ($1, 'failed_sign_in', pg_backend_pid(), 1) \
ON CONFLICT (hour, event, slot) DO UPDATE SET events = h.events + 1";

/// The open sessions by role: a few rows per backend that wrote since the last fold.
pub const READ_OPEN: &str = "\
SELECT role, sum(sessions)::bigint AS total FROM session_stats_open GROUP BY role";

/// The hours from `$1` on: a range of the primary key.
pub const READ_HOURS: &str = "\
SELECT hour, event, sum(events)::bigint AS total FROM session_stats_hourly \
WHERE hour >= $1 GROUP BY hour, event";

/// Moves every backend's open-session counts into slot 0, skipping rows a transaction
/// holds (they are folded next time).
const FOLD_OPEN: &str = "\
WITH moved AS ( \
    DELETE FROM session_stats_open WHERE ctid = ANY(ARRAY( \
        SELECT ctid FROM session_stats_open WHERE slot <> 0 FOR UPDATE SKIP LOCKED)) \
    RETURNING role, sessions) \
INSERT INTO session_stats_open AS s (role, slot, sessions) \
SELECT role, 0, sum(sessions) FROM moved GROUP BY role ORDER BY role \
ON CONFLICT (role, slot) DO UPDATE SET sessions = s.sessions + EXCLUDED.sessions";

/// The same for the hourly counts.
const FOLD_HOURS: &str = "\
WITH moved AS ( \
    DELETE FROM session_stats_hourly WHERE ctid = ANY(ARRAY( \
        SELECT ctid FROM session_stats_hourly WHERE slot <> 0 FOR UPDATE SKIP LOCKED)) \
    RETURNING hour, event, events) \
INSERT INTO session_stats_hourly AS h (hour, event, slot, events) \
SELECT hour, event, 0, sum(events) FROM moved GROUP BY hour, event ORDER BY hour, event \
ON CONFLICT (hour, event, slot) DO UPDATE SET events = h.events + EXCLUDED.events";

/// Forgets the hours before `$1`.
const FORGET_HOURS: &str = "\
DELETE FROM session_stats_hourly WHERE ctid = ANY(ARRAY( \
    SELECT ctid FROM session_stats_hourly WHERE hour < $1 FOR UPDATE SKIP LOCKED))";

/// The statistics' counters in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgSessionStatistics {
    pool: PgPool,
}

impl PgSessionStatistics {
    /// Statistics on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct OpenRow {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

#[derive(QueryableByName)]
struct HourRow {
    #[diesel(sql_type = Timestamptz)]
    hour: OffsetDateTime,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// A summed count, which the triggers keep at zero or more.
fn to_count(table: &'static str, key: &str, total: i64) -> Result<u64, PgError> {
    u64::try_from(total).map_err(|_| PgError::corrupt(table, format!("{key}: count {total}")))
}

/// Adds one stored row of hourly counts to `counts`.
fn add_event(counts: &mut HourlyCounts, event: &str, total: u64) -> Result<(), PgError> {
    match event {
        "sign_in" => counts.sign_ins += total,
        "failed_sign_in" => counts.failed_sign_ins += total,
        _ => {
            let reason = event
                .strip_prefix("ended:")
                .and_then(|reason| reason.parse::<InvalidationReason>().ok())
                .ok_or_else(|| {
                    PgError::corrupt("session_stats_hourly", format!("unknown event {event:?}"))
                })?;
            counts.ended.add(reason, total);
        }
    }
    Ok(())
}

async fn fold_and_forget(
    conn: &mut AsyncPgConnection,
    before: OffsetDateTime,
) -> Result<(), PgError> {
    let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(FOLD_LOCK_KEY)
        .get_result(conn)
        .await?;
    if !lock.locked {
        return Ok(());
    }
    diesel::sql_query(FOLD_OPEN).execute(conn).await?;
    diesel::sql_query(FORGET_HOURS)
        .bind::<Timestamptz, _>(before)
        .execute(conn)
        .await?;
    diesel::sql_query(FOLD_HOURS).execute(conn).await?;
    Ok(())
}

#[async_trait]
impl SessionStatistics for PgSessionStatistics {
    async fn record_failed_sign_in(&self, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        diesel::sql_query(RECORD_FAILED_SIGN_IN)
            .bind::<Timestamptz, _>(hour_start(at))
            .execute(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }

    async fn read(&self, since: OffsetDateTime) -> Result<StoredStatistics, StoreError> {
        let mut conn = self.pool.get().await?;
        let open: Vec<OpenRow> = diesel::sql_query(READ_OPEN)
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        let hours: Vec<HourRow> = diesel::sql_query(READ_HOURS)
            .bind::<Timestamptz, _>(since)
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        let mut statistics = StoredStatistics::default();
        for row in open {
            let role = row
                .role
                .parse::<Role>()
                .map_err(|e| PgError::corrupt("session_stats_open", e.to_string()))?;
            statistics
                .open_by_role
                .add(role, to_count("session_stats_open", &row.role, row.total)?);
        }
        for row in hours {
            let mut counts = HourlyCounts::empty(row.hour);
            let total = to_count("session_stats_hourly", &row.event, row.total)?;
            add_event(&mut counts, &row.event, total)?;
            statistics.hours.push(counts);
        }
        Ok(statistics)
    }

    /// One transaction, under a try-lock (a second caller returns at once): folds every
    /// backend's rows into slot 0 and deletes the hours before `before`.
    async fn forget_before(&self, before: OffsetDateTime) -> Result<(), StoreError> {
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction(async |conn| fold_and_forget(conn, before).await)
            .await?;
        Ok(())
    }
}
