//! [`SessionCleanup`] (SPEC §5): ends expired sessions, purges old ended ones, prunes ended
//! sign-in failure windows and old revocation log entries, in short batches, one pass at a
//! time across instances.
//!
//! **One pass at a time.** A pass runs on one connection taken out of the pool (plus a
//! second, when the pool spares one, for a second stream of expire batches), holding the
//! session-level advisory lock `CLEANUP_LOCK_KEY` (`pg_try_advisory_lock`: a pass that
//! does not get it returns `None` at once, it does not queue). The lock is released
//! explicitly at the end; on an error or a cancelled pass the connection is dropped and
//! closed, which releases it too, so a failed pass never leaves a pooled connection holding
//! the lock. The lock is what keeps two passes from working at all; the batches would not
//! process a row twice even without it (`FOR UPDATE SKIP LOCKED`, and the rows a batch
//! changes no longer match the batch's condition).
//!
//! **Batches.** Each batch is one statement, so its own short transaction: a pass that fails
//! half-way keeps what it committed, and no lock is held for longer than a batch. A batch
//! picks at most `batch_size` rows in index order with `FOR UPDATE SKIP LOCKED` (rows a
//! request is changing are left for the next pass instead of being waited for) and changes
//! exactly those. Each batch is served by an index (the partial ones of migration
//! `2026-05-01-000003_index_session_cleanup`, `idx_sign_in_failures_window_end` and
//! `idx_session_revocations_revoked_at`), so its
//! cost is proportional to the rows it changes, however large the history; a test checks
//! the plans, and [`PgSessionCleanup::explain`] shows them (make bench reports two).

use deadpool::managed::Object;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sessiond_domain::StoreError;
use sessiond_domain::model::{SessionId, UserId};
use sessiond_domain::ports::{CleanupOutcome, SessionCleanup};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{PgError, PgPool};

/// Key of the session-level advisory lock held for a whole cleanup pass.
const CLEANUP_LOCK_KEY: i64 = 0x7365_7373_636c_6e75; // "sessclnu"

/// Ends up to `$2` active sessions with `expires_at <= $1`, each at its `expires_at` (the
/// instant it really ended), returning who they belonged to.
///
/// The batch statements share one shape: an InitPlan picks and locks the batch through a
/// partial index (`idx_sessions_expiring` here), then the outer statement fetches exactly
/// those rows by key. `= ANY(ARRAY(…))` rather than `IN (…)`: with `IN` the planner may
/// pick a semi-join that scans every active session to match the batch against.
const EXPIRE_BATCH: &str = "\
UPDATE user_sessions \
SET is_active = false, invalidated_at = expires_at, invalidation_reason = 'expired', \
    ended_by = 'system' \
WHERE is_active AND id = ANY(ARRAY( \
    SELECT id FROM user_sessions \
    WHERE is_active AND expires_at <= $1 \
    ORDER BY expires_at \
    LIMIT $2 \
    FOR UPDATE SKIP LOCKED)) \
RETURNING user_id, id";

/// Deletes up to `$2` sessions that ended before `$1`. Served by `idx_sessions_ended_at`.
const PURGE_BATCH: &str = "\
DELETE FROM user_sessions \
WHERE id = ANY(ARRAY( \
    SELECT id FROM user_sessions \
    WHERE NOT is_active AND invalidated_at < $1 \
    ORDER BY invalidated_at \
    LIMIT $2 \
    FOR UPDATE SKIP LOCKED))";

/// Deletes up to `$2` sign-in failure counts whose window ended before `$1`. Served by
/// `idx_sign_in_failures_window_end`; the rows are fetched back by `ctid` (the table's key
/// has two columns), which cannot change under the lock this very statement holds.
const PRUNE_ATTEMPTS_BATCH: &str = "\
DELETE FROM sign_in_failures \
WHERE ctid = ANY(ARRAY( \
    SELECT ctid FROM sign_in_failures \
    WHERE window_end < $1 \
    ORDER BY window_end \
    LIMIT $2 \
    FOR UPDATE SKIP LOCKED))";

/// Deletes up to `$2` revocation log entries made before `$1`. Served by
/// `idx_session_revocations_revoked_at`.
const PRUNE_REVOCATIONS_BATCH: &str = "\
DELETE FROM session_revocations \
WHERE id = ANY(ARRAY( \
    SELECT id FROM session_revocations \
    WHERE revoked_at < $1 \
    ORDER BY revoked_at \
    LIMIT $2 \
    FOR UPDATE SKIP LOCKED))";

/// One of the batch statements a pass runs, named for [`PgSessionCleanup::explain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupBatch {
    /// Ends active sessions whose `expires_at` is at or before `at`
    /// (`idx_sessions_expiring`).
    Expire,
    /// Deletes sessions that ended before `at` (`idx_sessions_ended_at`).
    Purge,
    /// Deletes sign-in failure counts whose window ended before `at`
    /// (`idx_sign_in_failures_window_end`).
    PruneAttempts,
    /// Deletes revocation log entries made before `at`
    /// (`idx_session_revocations_revoked_at`).
    PruneRevocations,
}

impl CleanupBatch {
    /// The statement itself, `$1 = at`, `$2 = batch_size`.
    fn statement(self) -> &'static str {
        match self {
            CleanupBatch::Expire => EXPIRE_BATCH,
            CleanupBatch::Purge => PURGE_BATCH,
            CleanupBatch::PruneAttempts => PRUNE_ATTEMPTS_BATCH,
            CleanupBatch::PruneRevocations => PRUNE_REVOCATIONS_BATCH,
        }
    }
}

/// The maintenance pass over sessions and sign-in failure counts in PostgreSQL; cheap to
/// clone, built from the same [`PgPool`] as the repositories.
#[derive(Debug, Clone)]
pub struct PgSessionCleanup {
    pool: PgPool,
}

impl PgSessionCleanup {
    /// A cleanup on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The plan PostgreSQL picks for one batch of `batch` with these parameters, as
    /// `EXPLAIN` prints it (nothing is executed): the very statement a pass runs, for
    /// checking that it is served by its index on a real history (make bench). A
    /// `batch_size` of 0 is taken as 1, as in a pass.
    ///
    /// # Errors
    /// [`PgError`] when no connection is available or the statement fails.
    pub async fn explain(
        &self,
        batch: CleanupBatch,
        at: OffsetDateTime,
        batch_size: u32,
    ) -> Result<String, PgError> {
        let mut conn = self.pool.get().await?;
        explain(&mut conn, batch, at, i64::from(batch_size.max(1))).await
    }
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// `EXPLAIN` of `batch` on `conn`, with `$1 = at`, `$2 = batch_size`.
async fn explain(
    conn: &mut AsyncPgConnection,
    batch: CleanupBatch,
    at: OffsetDateTime,
    batch_size: i64,
) -> Result<String, PgError> {
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {}", batch.statement()))
        .bind::<Timestamptz, _>(at)
        .bind::<BigInt, _>(batch_size)
        .load(conn)
        .await?;
    Ok(lines
        .into_iter()
        .map(|line| line.line)
        .collect::<Vec<_>>()
        .join("\n"))
}

#[derive(QueryableByName)]
struct ExpiredRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    user_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// Tries the pass lock on `conn` without waiting.
async fn try_lock(conn: &mut AsyncPgConnection) -> Result<bool, PgError> {
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<BigInt, _>(CLEANUP_LOCK_KEY)
        .get_result(conn)
        .await?;
    Ok(row.locked)
}

async fn unlock(conn: &mut AsyncPgConnection) -> Result<(), PgError> {
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(CLEANUP_LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

/// Runs `batch` (one of the batch statements, with `$1 = at`, `$2 = batch_size`) until a
/// batch changes fewer than `batch_size` rows; returns how many it changed in all.
async fn delete_in_batches(
    conn: &mut AsyncPgConnection,
    batch: &'static str,
    at: OffsetDateTime,
    batch_size: i64,
) -> Result<u64, PgError> {
    let mut total = 0u64;
    loop {
        let deleted = diesel::sql_query(batch)
            .bind::<Timestamptz, _>(at)
            .bind::<BigInt, _>(batch_size)
            .execute(conn)
            .await?;
        total += deleted as u64;
        if (deleted as i64) < batch_size {
            return Ok(total);
        }
    }
}

/// Ends expired sessions in batches on `conn` until a batch comes back short; returns whose
/// they were.
async fn expire_in_batches(
    conn: &mut AsyncPgConnection,
    now: OffsetDateTime,
    batch_size: i64,
) -> Result<Vec<(UserId, SessionId)>, PgError> {
    let mut expired = Vec::new();
    loop {
        let rows: Vec<ExpiredRow> = diesel::sql_query(EXPIRE_BATCH)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(batch_size)
            .load(conn)
            .await?;
        let count = rows.len();
        expired.extend(
            rows.into_iter()
                .map(|row| (UserId::from_uuid(row.user_id), SessionId::from_uuid(row.id))),
        );
        if (count as i64) < batch_size {
            return Ok(expired);
        }
    }
}

/// The pass itself, on a connection holding the pass lock, and on `helper`, when the pool
/// spared one, a second stream of expire batches beside it.
///
/// Two streams: ending a session rewrites an entry in each of the table's indexes, and one
/// stream leaves a core idle (make bench: 1.5× faster on 2 cores). `SKIP LOCKED` keeps
/// their batches apart, and a stream stops only on a short batch, which means the rows it
/// could not take were locked by the other stream (or by a request, for the next pass).
async fn pass(
    conn: &mut AsyncPgConnection,
    helper: Option<&mut AsyncPgConnection>,
    now: OffsetDateTime,
    purge_before: OffsetDateTime,
    forget_revocations_before: OffsetDateTime,
    batch_size: i64,
) -> Result<CleanupOutcome, PgError> {
    let expired = match helper {
        Some(helper) => {
            let (mut first, second) = futures::try_join!(
                expire_in_batches(conn, now, batch_size),
                expire_in_batches(helper, now, batch_size)
            )?;
            first.extend(second);
            first
        }
        None => expire_in_batches(conn, now, batch_size).await?,
    };
    let mut outcome = CleanupOutcome {
        expired,
        ..CleanupOutcome::default()
    };
    outcome.purged = delete_in_batches(conn, PURGE_BATCH, purge_before, batch_size).await?;
    let pruned = delete_in_batches(conn, PRUNE_ATTEMPTS_BATCH, now, batch_size).await?;
    let forgotten = delete_in_batches(
        conn,
        PRUNE_REVOCATIONS_BATCH,
        forget_revocations_before,
        batch_size,
    )
    .await?;
    tracing::info!(
        cleanup.expired = outcome.expired.len(),
        cleanup.purged = outcome.purged,
        cleanup.attempt_windows_pruned = pruned,
        cleanup.revocations_pruned = forgotten,
        "session cleanup pass done"
    );
    Ok(outcome)
}

#[async_trait::async_trait]
impl SessionCleanup for PgSessionCleanup {
    /// See the [module documentation](self). Also deletes the sign-in failure counts of
    /// windows that ended before `now` ([`PgAttemptCounter`](crate::PgAttemptCounter)),
    /// batched like the rest. A `batch_size` of 0 is taken as 1.
    async fn run_pass(
        &self,
        now: OffsetDateTime,
        purge_before: OffsetDateTime,
        forget_revocations_before: OffsetDateTime,
        batch_size: u32,
    ) -> Result<Option<CleanupOutcome>, StoreError> {
        let mut pooled = self.pool.get().await?;
        if !try_lock(&mut pooled).await? {
            tracing::debug!("another session cleanup pass is running; skipping this one");
            return Ok(None);
        }
        // Out of the pool from here on: whatever happens (an error, the caller dropping this
        // future), the connection is closed rather than recycled with the lock still held.
        let mut conn = Object::take(pooled);
        // Without a spare connection the pass runs on one stream: slower, not wrong.
        let mut helper = self.pool.get().await.ok();
        let batch_size = i64::from(batch_size.max(1));
        let outcome = pass(
            &mut conn,
            helper.as_deref_mut(),
            now,
            purge_before,
            forget_revocations_before,
            batch_size,
        )
        .await?;
        // Released explicitly so that the next pass can start at once; closing the
        // connection (below) would release it too, but asynchronously.
        unlock(&mut conn).await?;
        Ok(Some(outcome))
    }
}

#[cfg(test)]
mod tests {
    //! What the shared contract suite cannot see: passes on two instances, a large backlog,
    //! and the plans of the batch statements.

    use std::collections::HashSet;
    use std::time::Instant;

    use diesel::sql_types::{Integer, Nullable, Text};
    use diesel_async::AsyncConnection;
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::testing::{fresh_database_url, settings};

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    const LONG_AGO: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

    async fn connect(url: &str) -> AsyncPgConnection {
        AsyncPgConnection::establish(url).await.unwrap()
    }

    async fn insert_user(conn: &mut AsyncPgConnection) -> Uuid {
        let id = Uuid::new_v4();
        diesel::sql_query(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
             VALUES ($1, $2, 'x', 'guest', $3, $3)",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<Text, _>(format!("{id}@example.com"))
        .bind::<Timestamptz, _>(LONG_AGO)
        .execute(conn)
        .await
        .unwrap();
        id
    }

    /// `count` sessions of `user` expiring at `expires_at`, active or (with `ended_at`)
    /// ended, in one statement.
    async fn insert_sessions(
        conn: &mut AsyncPgConnection,
        user: Uuid,
        count: i32,
        expires_at: OffsetDateTime,
        ended_at: Option<OffsetDateTime>,
    ) {
        diesel::sql_query(
            "INSERT INTO user_sessions (id, user_id, device_info, created_at, last_activity, \
                 expires_at, is_active, invalidated_at, invalidation_reason, role, \
                 refresh_token_hash) \
             SELECT gen_random_uuid(), $1, 'Unknown', \
                 least($2, coalesce($3, $2)) - interval '1 hour', \
                 least($2, coalesce($3, $2)) - interval '1 hour', \
                 $2, $3 IS NULL, $3, CASE WHEN $3 IS NULL THEN NULL ELSE 'user_logout' END, \
                 'guest', sha256(convert_to(i::text, 'UTF8')) \
             FROM generate_series(1, $4) AS i",
        )
        .bind::<diesel::sql_types::Uuid, _>(user)
        .bind::<Timestamptz, _>(expires_at)
        .bind::<Nullable<Timestamptz>, _>(ended_at)
        .bind::<Integer, _>(count)
        .execute(conn)
        .await
        .unwrap();
    }

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }

    async fn active_expired_ids(conn: &mut AsyncPgConnection) -> HashSet<Uuid> {
        let rows: Vec<Id> =
            diesel::sql_query("SELECT id FROM user_sessions WHERE is_active AND expires_at <= $1")
                .bind::<Timestamptz, _>(NOW)
                .load(conn)
                .await
                .unwrap();
        rows.into_iter().map(|row| row.id).collect()
    }

    fn session_ids(outcome: &CleanupOutcome) -> Vec<Uuid> {
        outcome.expired.iter().map(|(_, id)| id.as_uuid()).collect()
    }

    /// Two instances (pools) start a pass at the same moment: one skips, or, if the first
    /// finished before the second tried the lock, the second finds nothing left. Either
    /// way every expired session is expired exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn passes_started_together_on_two_instances_expire_each_session_once() {
        let url = fresh_database_url().await.unwrap();
        let mut conn = connect(&url).await;
        for _ in 0..4 {
            let user = insert_user(&mut conn).await;
            insert_sessions(&mut conn, user, 1_000, NOW - Duration::hours(1), None).await;
        }
        let expected = active_expired_ids(&mut conn).await;
        assert_eq!(expected.len(), 4_000);

        let mut cleanups = Vec::new();
        for _ in 0..2 {
            let pool = PgPool::connect(&settings(url.clone())).await.unwrap();
            pool.ping().await.unwrap();
            cleanups.push(PgSessionCleanup::new(pool));
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let passes = cleanups.into_iter().map(|cleanup| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                cleanup.run_pass(NOW, LONG_AGO, LONG_AGO, 50).await
            })
        });
        let outcomes: Vec<Option<CleanupOutcome>> = futures::future::join_all(passes)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().unwrap())
            .collect();
        eprintln!(
            "concurrent passes: {:?}",
            outcomes
                .iter()
                .map(|o| o.as_ref().map(|o| o.expired.len()))
                .collect::<Vec<_>>()
        );
        assert!(outcomes.iter().any(Option::is_some), "no pass ran");
        let all: Vec<Uuid> = outcomes.iter().flatten().flat_map(session_ids).collect();
        let union: HashSet<Uuid> = all.iter().copied().collect();
        assert_eq!(union.len(), all.len(), "a session was expired twice");
        assert_eq!(union, expected);
        assert!(active_expired_ids(&mut conn).await.is_empty());
    }

    /// A backlog of 100 000 expired sessions is worked off in batches; the time is printed,
    /// not asserted (it says more about the machine than about the code).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_works_off_100_000_expired_sessions() {
        let url = fresh_database_url().await.unwrap();
        let mut conn = connect(&url).await;
        let user = insert_user(&mut conn).await;
        let started = Instant::now();
        insert_sessions(&mut conn, user, 100_000, NOW - Duration::hours(1), None).await;
        eprintln!("inserting 100 000 sessions took {:?}", started.elapsed());
        let cleanup = PgSessionCleanup::new(PgPool::connect(&settings(url)).await.unwrap());

        let started = Instant::now();
        let outcome = cleanup
            .run_pass(NOW, LONG_AGO, LONG_AGO, 1_000)
            .await
            .unwrap()
            .unwrap();
        eprintln!(
            "expiring 100 000 sessions (batches of 1 000) took {:?}",
            started.elapsed()
        );
        let ids: HashSet<Uuid> = session_ids(&outcome).into_iter().collect();
        assert_eq!((outcome.expired.len(), ids.len()), (100_000, 100_000));
        assert_eq!(outcome.purged, 0);
        assert!(active_expired_ids(&mut conn).await.is_empty());

        // Idempotent; and once past the retention period they are all purged.
        let again = cleanup
            .run_pass(NOW, LONG_AGO, LONG_AGO, 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, CleanupOutcome::default());
        let started = Instant::now();
        let later = NOW + Duration::days(31);
        let purge = cleanup
            .run_pass(later, later - Duration::days(30), LONG_AGO, 1_000)
            .await
            .unwrap()
            .unwrap();
        eprintln!(
            "purging 100 000 sessions (batches of 1 000) took {:?}",
            started.elapsed()
        );
        assert_eq!((purge.expired.len(), purge.purged), (0, 100_000));
    }

    /// The plan of `batch` (the very statement the pass runs) with these parameters, as
    /// [`PgSessionCleanup::explain`] gives it.
    async fn plan(
        conn: &mut AsyncPgConnection,
        batch: CleanupBatch,
        at: OffsetDateTime,
        batch_size: i64,
    ) -> String {
        let plan = explain(conn, batch, at, batch_size).await.unwrap();
        eprintln!("EXPLAIN {}\n{plan}\n", batch.statement());
        plan
    }

    /// With a realistic spread (many live sessions, a long ended history, few expired), each
    /// batch reads its partial index rather than scanning the table or the seed's indexes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_batch_is_served_by_its_partial_index() {
        let url = fresh_database_url().await.unwrap();
        let mut conn = connect(&url).await;
        for _ in 0..10 {
            let user = insert_user(&mut conn).await;
            // Live for another day, ended within the retention period, due now, and old
            // enough to purge.
            insert_sessions(&mut conn, user, 3_000, NOW + Duration::days(1), None).await;
            let recent = Some(NOW - Duration::days(3));
            insert_sessions(&mut conn, user, 3_000, NOW - Duration::days(2), recent).await;
            insert_sessions(&mut conn, user, 10, NOW - Duration::minutes(5), None).await;
            let old = Some(NOW - Duration::days(40));
            insert_sessions(&mut conn, user, 10, NOW - Duration::days(40), old).await;
        }
        diesel::sql_query(
            "INSERT INTO sign_in_failures (key, window_start, window_end, failures) \
             SELECT 'ip:' || i, $1, $1 + interval '15 minutes', 1 \
             FROM generate_series(1, 20000) AS i",
        )
        .bind::<Timestamptz, _>(NOW - Duration::minutes(5))
        .execute(&mut conn)
        .await
        .unwrap();
        diesel::sql_query(
            "INSERT INTO sign_in_failures (key, window_start, window_end, failures) \
             SELECT 'ip:' || i, $1, $1 + interval '15 minutes', 1 \
             FROM generate_series(1, 20) AS i",
        )
        .bind::<Timestamptz, _>(NOW - Duration::hours(2))
        .execute(&mut conn)
        .await
        .unwrap();
        // Revocations of the last hour, and a few old enough to forget.
        diesel::sql_query(
            "INSERT INTO session_revocations (session_id, user_id, reason, revoked_at) \
             SELECT gen_random_uuid(), gen_random_uuid(), 'admin_revoked', \
                 $1 - i * interval '100 milliseconds' \
             FROM generate_series(1, 20000) AS i",
        )
        .bind::<Timestamptz, _>(NOW)
        .execute(&mut conn)
        .await
        .unwrap();
        diesel::sql_query(
            "INSERT INTO session_revocations (session_id, user_id, reason, revoked_at) \
             SELECT gen_random_uuid(), gen_random_uuid(), NULL, $1 \
             FROM generate_series(1, 20) AS i",
        )
        .bind::<Timestamptz, _>(NOW - Duration::hours(2))
        .execute(&mut conn)
        .await
        .unwrap();
        diesel::sql_query("ANALYZE")
            .execute(&mut conn)
            .await
            .unwrap();

        // The batch is picked through the partial index, its rows fetched back by key.
        let expire = plan(&mut conn, CleanupBatch::Expire, NOW, 1_000).await;
        assert!(
            expire.contains("Index Scan using idx_sessions_expiring"),
            "{expire}"
        );
        assert!(expire.contains("user_sessions_pkey"), "{expire}");
        let purge = plan(
            &mut conn,
            CleanupBatch::Purge,
            NOW - Duration::days(30),
            1_000,
        )
        .await;
        assert!(
            purge.contains("Index Scan using idx_sessions_ended_at"),
            "{purge}"
        );
        assert!(purge.contains("user_sessions_pkey"), "{purge}");
        let prune = plan(&mut conn, CleanupBatch::PruneAttempts, NOW, 1_000).await;
        assert!(
            prune.contains("Index Scan using idx_sign_in_failures_window_end"),
            "{prune}"
        );
        assert!(prune.contains("Tid Scan"), "{prune}");
        let forget = plan(
            &mut conn,
            CleanupBatch::PruneRevocations,
            NOW - Duration::hours(1),
            1_000,
        )
        .await;
        assert!(
            forget.contains("Index Scan using idx_session_revocations_revoked_at"),
            "{forget}"
        );
        assert!(forget.contains("session_revocations_pkey"), "{forget}");
        for plan in [&expire, &purge, &prune, &forget] {
            assert!(
                !plan.contains("Seq Scan"),
                "a batch scans a whole table:\n{plan}"
            );
        }

        let cleanup = PgSessionCleanup::new(PgPool::connect(&settings(url)).await.unwrap());
        let outcome = cleanup
            .run_pass(NOW, NOW - Duration::days(30), NOW - Duration::hours(1), 7)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((outcome.expired.len(), outcome.purged), (100, 100));
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        let left: Count = diesel::sql_query("SELECT count(*) AS count FROM sign_in_failures")
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(left.count, 20_000, "only the ended windows are pruned");
        let left: Count = diesel::sql_query("SELECT count(*) AS count FROM session_revocations")
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(left.count, 20_000, "only the old revocations are forgotten");
    }
}
