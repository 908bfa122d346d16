//! [`SessionRepository`] on the `user_sessions` table.
//!
//! Each operation is one statement, except sign-in, which is one transaction serialised per
//! user by a lock on the user's row. Statements that lock several sessions of a user
//! (sign-in's eviction, "sign out everywhere") lock them in id order, so they cannot deadlock
//! with each other; every other statement locks at most one session.
//!
//! The database keeps what must hold whichever path changes a session (migration
//! `2026-12-02-000005_revocation_log`): triggers bump `version` on every change of state,
//! record each rotated-out refresh-token hash in `session_retired_refresh_tokens`, and log
//! every end but expiry in `session_revocations` (read by
//! [`PgRevocationLog`](crate::PgRevocationLog)). The statements here only change sessions.

use std::collections::HashMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    EndedBy, InvalidationReason, LimitAction, RefreshTokenHash, Role, Session, SessionActivity,
    SessionId, SessionSummary, UserId, eviction_victims,
};
use sessiond_domain::ports::{CreateSessionError, SessionLimit, SessionRepository, SignInCheck};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{NewSessionRow, SessionRow, ended_by_columns};
use crate::schema::{session_retired_refresh_tokens, user_sessions, users};
use crate::{PgError, PgPool};

/// A batch of activities in one statement. `last_activity < at` in the WHERE rather than
/// GREATEST in the SET: same result, but a stale or repeated report writes no new row
/// version at all.
const RECORD_ACTIVITIES: &str = "\
UPDATE user_sessions AS s SET last_activity = a.at \
FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS a(id, user_id, at) \
WHERE s.id = a.id AND s.user_id = a.user_id AND s.is_active AND s.last_activity < a.at";

diesel::define_sql_function! {
    /// PostgreSQL's `GREATEST`, for timestamps.
    fn greatest(a: Timestamptz, b: Timestamptz) -> Timestamptz;
}

/// Sessions in PostgreSQL: the source of truth that caches fall back to.
#[derive(Debug, Clone)]
pub struct PgSessionRepository {
    pool: PgPool,
}

impl PgSessionRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The session `id`, of `owner` when given: one primary-key lookup, the owner checked in
    /// the same statement.
    ///
    /// Bounded on this side too, by the statement timeout: validation reads this when the
    /// caches miss, and a link that went silent (no reset) would otherwise hold the request
    /// for as long as TCP takes to notice, however short the server-side timeout.
    async fn fetch(
        &self,
        id: SessionId,
        owner: Option<UserId>,
    ) -> Result<Option<Session>, StoreError> {
        let deadline = self.pool.settings().statement_timeout;
        let read = async {
            let mut conn = self.pool.get().await?;
            let mut query = user_sessions::table
                .find(id.as_uuid())
                .select(SessionRow::as_select())
                .into_boxed();
            if let Some(owner) = owner {
                query = query.filter(user_sessions::user_id.eq(owner.as_uuid()));
            }
            let row = query
                .first(&mut conn)
                .await
                .optional()
                .map_err(PgError::from)?;
            Ok::<_, StoreError>(row.map(Session::try_from).transpose()?)
        };
        tokio::time::timeout(deadline, read).await.map_err(|_| {
            StoreError::Unavailable(format!("PostgreSQL gave no answer within {deadline:?}").into())
        })?
    }
}

/// Why the sign-in transaction rolled back.
#[derive(Debug)]
enum CreateTxError {
    LimitReached,
    UserGone,
    UserDisabled,
    PasswordChanged,
    RoleChanged(Role),
    Pg(PgError),
}

impl From<diesel::result::Error> for CreateTxError {
    fn from(error: diesel::result::Error) -> Self {
        CreateTxError::Pg(error.into())
    }
}

impl From<PgError> for CreateTxError {
    fn from(error: PgError) -> Self {
        CreateTxError::Pg(error)
    }
}

fn to_sessions(rows: Vec<SessionRow>) -> Result<Vec<Session>, PgError> {
    rows.into_iter().map(Session::try_from).collect()
}

/// The sign-in transaction: see [`SessionRepository::create_within_limit`].
async fn create_within_limit_tx(
    conn: &mut AsyncPgConnection,
    new_row: &NewSessionRow<'_>,
    session: &Session,
    limit: SessionLimit,
    check: &SignInCheck,
    now: OffsetDateTime,
) -> Result<Vec<SessionId>, CreateTxError> {
    let user_id = session.user_id.as_uuid();
    // Serialise the sign-ins of one user, on every instance: whoever holds the user's row
    // counts, evicts and inserts before the next one counts. The same lock serialises the
    // sign-in with the user's security events (SPEC §3 invariant 7): deactivation, role and
    // password changes UPDATE this row, which waits for our FOR NO KEY UPDATE and vice versa,
    // so what is read here stays true until we commit.
    let (is_active, role, password_hash) = users::table
        .find(user_id)
        .select((users::is_active, users::role, users::password_hash))
        .for_no_key_update()
        .first::<(bool, String, String)>(conn)
        .await
        .optional()?
        .ok_or(CreateTxError::UserGone)?;
    if !is_active {
        return Err(CreateTxError::UserDisabled);
    }
    if password_hash != check.password_hash.as_str() {
        return Err(CreateTxError::PasswordChanged);
    }
    let role = role
        .parse::<Role>()
        .map_err(|e| PgError::corrupt("users", format!("user {user_id}: {e}")))?;
    if role != session.role {
        return Err(CreateTxError::RoleChanged(role));
    }

    // The live sessions, locked so that a concurrent refresh or sign-out cannot change them
    // between counting and evicting; FOR UPDATE returns their latest committed version.
    let rows = user_sessions::table
        .filter(user_sessions::user_id.eq(user_id))
        .filter(user_sessions::is_active)
        .filter(user_sessions::expires_at.gt(now))
        .order(user_sessions::id)
        .for_update()
        .select(SessionRow::as_select())
        .load(conn)
        .await?;
    let live: Vec<Session> = to_sessions(rows)?
        .into_iter()
        .filter(|session| session.is_live(now))
        .collect();

    // The domain decides which sessions make room (least recently active first).
    let victims = eviction_victims(&live, limit.max_sessions);
    if !victims.is_empty() {
        if limit.on_limit == LimitAction::Reject {
            return Err(CreateTxError::LimitReached);
        }
        let ids: Vec<Uuid> = victims.iter().map(SessionId::as_uuid).collect();
        diesel::update(
            user_sessions::table
                .filter(user_sessions::id.eq_any(ids))
                .filter(user_sessions::is_active),
        )
        .set(ended(
            InvalidationReason::MaxSessionsExceeded,
            EndedBy::System,
            now,
        ))
        .execute(conn)
        .await?;
    }

    diesel::insert_into(user_sessions::table)
        .values(new_row)
        .execute(conn)
        .await?;
    Ok(victims)
}

/// The assignments that end a session.
#[expect(
    clippy::type_complexity,
    reason = "diesel's tuple of assignments is the type; naming it adds nothing"
)]
fn ended(
    reason: InvalidationReason,
    by: EndedBy,
    at: OffsetDateTime,
) -> (
    diesel::dsl::Eq<user_sessions::is_active, bool>,
    diesel::dsl::Eq<user_sessions::invalidated_at, Option<OffsetDateTime>>,
    diesel::dsl::Eq<user_sessions::invalidation_reason, Option<&'static str>>,
    diesel::dsl::Eq<user_sessions::ended_by, Option<&'static str>>,
    diesel::dsl::Eq<user_sessions::ended_by_admin, Option<Uuid>>,
) {
    let (kind, admin) = ended_by_columns(by);
    (
        user_sessions::is_active.eq(false),
        user_sessions::invalidated_at.eq(Some(at)),
        user_sessions::invalidation_reason.eq(Some(reason.as_str())),
        user_sessions::ended_by.eq(Some(kind)),
        user_sessions::ended_by_admin.eq(admin),
    )
}

#[async_trait]
impl SessionRepository for PgSessionRepository {
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        check: &SignInCheck,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError> {
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let new_row = NewSessionRow::from(session);
        let result = conn
            .transaction(async |conn| {
                create_within_limit_tx(conn, &new_row, session, limit, check, now).await
            })
            .await;
        match result {
            Ok(victims) => Ok(victims),
            Err(CreateTxError::LimitReached) => Err(CreateSessionError::LimitReached),
            Err(CreateTxError::UserGone) => Err(CreateSessionError::UserGone),
            Err(CreateTxError::UserDisabled) => Err(CreateSessionError::UserDisabled),
            Err(CreateTxError::PasswordChanged) => Err(CreateSessionError::PasswordChanged),
            Err(CreateTxError::RoleChanged(role)) => Err(CreateSessionError::RoleChanged(role)),
            Err(CreateTxError::Pg(error)) => Err(error.into()),
        }
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.fetch(id, None).await
    }

    async fn find_summary(
        &self,
        user_id: UserId,
        id: SessionId,
        _now: OffsetDateTime,
    ) -> Result<Option<SessionSummary>, StoreError> {
        let session = self.fetch(id, Some(user_id)).await?;
        Ok(session.as_ref().map(SessionSummary::from))
    }

    async fn rotate_refresh_token(
        &self,
        id: SessionId,
        presented: RefreshTokenHash,
        next: RefreshTokenHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let mut conn = self.pool.get().await?;
        // Compare-and-swap in one statement: of parallel calls presenting one hash, the
        // first to lock the row swaps it; the others re-check the WHERE against the new
        // row version, no longer match, and update nothing. The triggers bump the version
        // and retire `presented` (at `now`, from `refresh_rotated_at`) in the same statement.
        let row = diesel::update(
            user_sessions::table
                .filter(user_sessions::id.eq(id.as_uuid()))
                .filter(user_sessions::is_active)
                .filter(user_sessions::refresh_token_hash.eq(presented.as_bytes().as_slice())),
        )
        .set((
            user_sessions::previous_refresh_token_hash.eq(Some(presented.as_bytes().as_slice())),
            user_sessions::refresh_token_hash.eq(next.as_bytes().as_slice()),
            user_sessions::refresh_rotated_at.eq(Some(now)),
            user_sessions::last_activity.eq(greatest(user_sessions::last_activity, now)),
            user_sessions::expires_at.eq(expires_at),
        ))
        .returning(SessionRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(PgError::from)?;
        Ok(row.map(Session::try_from).transpose()?)
    }

    async fn find_retired_refresh_token(
        &self,
        id: SessionId,
        hash: RefreshTokenHash,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let mut conn = self.pool.get().await?;
        // One primary-key lookup: the trigger recorded every rotated-out hash, the one in
        // `previous_refresh_token_hash` included.
        let retired_at = session_retired_refresh_tokens::table
            .find((id.as_uuid(), hash.as_bytes().as_slice()))
            .select(session_retired_refresh_tokens::retired_at)
            .first::<OffsetDateTime>(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?;
        Ok(retired_at)
    }

    async fn record_activities(&self, activities: &[SessionActivity]) -> Result<(), StoreError> {
        // One row per session, the latest activity: `UPDATE … FROM` applies one arbitrary
        // match per row, so duplicates must not reach it.
        let mut latest: HashMap<SessionId, SessionActivity> = HashMap::new();
        for activity in activities {
            latest
                .entry(activity.session_id)
                .and_modify(|kept| kept.at = kept.at.max(activity.at))
                .or_insert(*activity);
        }
        if latest.is_empty() {
            return Ok(());
        }
        let (mut ids, mut users, mut ats) = (Vec::new(), Vec::new(), Vec::new());
        for activity in latest.values() {
            ids.push(activity.session_id.as_uuid());
            users.push(activity.user_id.as_uuid());
            ats.push(activity.at);
        }
        let mut conn = self.pool.get().await?;
        diesel::sql_query(RECORD_ACTIVITIES)
            .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
            .bind::<Array<diesel::sql_types::Uuid>, _>(users)
            .bind::<Array<Timestamptz>, _>(ats)
            .execute(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }

    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let mut conn = self.pool.get().await?;
        let row = diesel::update(
            user_sessions::table
                .filter(user_sessions::id.eq(id.as_uuid()))
                .filter(user_sessions::is_active),
        )
        .set(ended(reason, by, at))
        .returning(SessionRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(PgError::from)?;
        Ok(row.map(Session::try_from).transpose()?)
    }

    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut conn = self.pool.get().await?;
        let keep: Vec<Uuid> = keep.iter().map(SessionId::as_uuid).collect();
        // Lock in id order (as sign-in does) before updating.
        let locked = diesel::alias!(user_sessions as locked);
        let targets = locked
            .select(locked.field(user_sessions::id))
            .filter(locked.field(user_sessions::user_id).eq(user_id.as_uuid()))
            .filter(locked.field(user_sessions::is_active))
            .filter(locked.field(user_sessions::id).ne_all(keep))
            .order(locked.field(user_sessions::id))
            .for_update();
        let ids: Vec<Uuid> = diesel::update(
            user_sessions::table
                .filter(user_sessions::id.eq_any(targets))
                .filter(user_sessions::is_active),
        )
        .set(ended(reason, by, at))
        .returning(user_sessions::id)
        .get_results(&mut conn)
        .await
        .map_err(PgError::from)?;
        Ok(ids.into_iter().map(SessionId::from_uuid).collect())
    }

    async fn list_live(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.pool.get().await?;
        let rows = user_sessions::table
            .filter(user_sessions::user_id.eq(user_id.as_uuid()))
            .filter(user_sessions::is_active)
            .filter(user_sessions::expires_at.gt(now))
            .order((
                user_sessions::last_activity.desc(),
                user_sessions::created_at.desc(),
                user_sessions::id.asc(),
            ))
            .select(SessionRow::as_select())
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(to_sessions(rows)?)
    }

    async fn list_ended(
        &self,
        user_id: UserId,
        since: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.pool.get().await?;
        let rows = user_sessions::table
            .filter(user_sessions::user_id.eq(user_id.as_uuid()))
            .filter(user_sessions::is_active.eq(false))
            .filter(user_sessions::invalidated_at.ge(since))
            .order((
                user_sessions::invalidated_at.desc(),
                user_sessions::id.asc(),
            ))
            .select(SessionRow::as_select())
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(to_sessions(rows)?)
    }
}
