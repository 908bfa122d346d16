use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{
    EndedBy, InvalidationReason, LimitAction, PasswordHash, RefreshTokenHash, Role, Session,
    SessionActivity, SessionId, SessionSummary, UserId,
};

/// The max-sessions rule for one sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    pub max_sessions: u32,
    pub on_limit: LimitAction,
}

/// What a sign-in verified of its user, checked again under the user's lock when the
/// session is committed (SPEC §3 invariant 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInCheck {
    /// The password hash the presented password was verified against.
    pub password_hash: PasswordHash,
}

/// Creating a session failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateSessionError {
    /// The user is at the maximum and the role's action is [`LimitAction::Reject`].
    #[error("maximum number of sessions reached")]
    LimitReached,
    /// The user no longer exists.
    #[error("user deleted")]
    UserGone,
    /// The user was deactivated after the sign-in read it.
    #[error("account disabled")]
    UserDisabled,
    /// The user's password changed after the sign-in verified it.
    #[error("password changed")]
    PasswordChanged,
    /// The user's role is no longer the session's: this is the role now.
    #[error("role changed")]
    RoleChanged(Role),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Durable storage of sessions: the source of truth (SPEC §3).
///
/// "Live" below means active and `expires_at > now`, with `now` passed in by the caller so
/// that the domain's clock decides.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Stores `session` (active) while applying `limit` to its user, atomically: however many
    /// sign-ins of one user run in parallel, on however many instances, the user never has
    /// more than `limit.max_sessions` live sessions afterwards.
    ///
    /// Serialised with the user's security events: under the same lock that deactivation,
    /// role and password changes take, the user is read again, and the session is stored
    /// only if the user is still active, still has `check.password_hash` and still has
    /// `session.role`. With
    /// [`LimitAction::EvictOldest`], the live sessions with the oldest `last_activity` are
    /// ended with reason `max_sessions_exceeded` to make room; their ids are returned.
    ///
    /// # Errors
    /// [`CreateSessionError::LimitReached`] at the maximum with [`LimitAction::Reject`];
    /// `UserGone`, `UserDisabled`, `PasswordChanged` or `RoleChanged` when a security event
    /// won the race (nothing is written in any of these cases); `Store` otherwise.
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        check: &SignInCheck,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError>;

    /// The session with this id in any state, `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// What request validation needs of `user_id`'s session `id`, in any state; `None` if
    /// there is no such session of that user. Caching adapters answer this from the cache
    /// and refill it as of `now`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find_summary(
        &self,
        user_id: UserId,
        id: SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<SessionSummary>, StoreError> {
        let _ = now;
        Ok(self
            .find(id)
            .await?
            .filter(|session| session.user_id == user_id)
            .map(|session| SessionSummary::from(&session)))
    }

    /// Single-use refresh: if the session is active and its current refresh-token hash is
    /// `presented`, atomically makes `next` the current hash, `presented` the previous one,
    /// sets `rotated_at` and `last_activity` to `now` and `expires_at` to `expires_at`,
    /// bumps the version, remembers `presented` as retired at `now` (see
    /// [`Self::find_retired_refresh_token`]) and returns the updated session. Otherwise changes nothing and returns `None`: of any
    /// number of parallel calls with one `presented` hash, exactly one succeeds.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn rotate_refresh_token(
        &self,
        id: SessionId,
        presented: RefreshTokenHash,
        next: RefreshTokenHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError>;

    /// When the refresh token with hash `hash` stopped being session `id`'s current one, if
    /// it ever was one of its tokens: every rotated-out token of a session is recognised,
    /// however many rotations ago (SPEC §2), as long as the session is kept.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find_retired_refresh_token(
        &self,
        id: SessionId,
        hash: RefreshTokenHash,
    ) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Moves each active session's `last_activity` forward to its activity's `at` (never
    /// backward), all at once. A missing or ended session, or one of another user, is left
    /// alone; several activities of one session count as the latest.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; then none or all of them may have been written.
    async fn record_activities(&self, activities: &[SessionActivity]) -> Result<(), StoreError>;

    /// Ends the session if it is active (bumping its version) and returns it as ended;
    /// `None` if it does not exist or had already ended (the first reason and author stay).
    /// Every end but expiry is also committed to the revocation log, where the store has
    /// one. Evictions at sign-in and expiry by cleanup are ended by [`EndedBy::System`].
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError>;

    /// Ends every active session of `user_id` except `keep`, as `end` does each, and returns
    /// the ids it ended.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// The user's live sessions at `now`, most recently active first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn list_live(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError>;

    /// The user's sessions that ended at or after `since`, most recently ended first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn list_ended(
        &self,
        user_id: UserId,
        since: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError>;
}
