use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{
    InvalidationReason, LimitAction, RefreshTokenHash, Session, SessionId, SessionSummary, UserId,
};

/// The max-sessions rule for one sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    pub max_sessions: u32,
    pub on_limit: LimitAction,
}

/// Creating a session failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateSessionError {
    /// The user is at the maximum and the role's action is [`LimitAction::Reject`].
    #[error("maximum number of sessions reached")]
    LimitReached,
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
    /// more than `limit.max_sessions` live sessions afterwards. With
    /// [`LimitAction::EvictOldest`], the live sessions with the oldest `last_activity` are
    /// ended with reason `max_sessions_exceeded` to make room; their ids are returned.
    ///
    /// # Errors
    /// [`CreateSessionError::LimitReached`] at the maximum with [`LimitAction::Reject`]
    /// (nothing is written); [`CreateSessionError::Store`] otherwise.
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError>;

    /// The session with this id in any state, `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// What request validation needs of `user_id`'s session `id`, in any state; `None` if
    /// there is no such session of that user. Caching adapters answer this from the cache.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find_summary(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        Ok(self
            .find(id)
            .await?
            .filter(|session| session.user_id == user_id)
            .map(|session| SessionSummary::from(&session)))
    }

    /// Single-use refresh: if the session is active and its current refresh-token hash is
    /// `presented`, atomically makes `next` the current hash, `presented` the previous one,
    /// sets `rotated_at` and `last_activity` to `now` and `expires_at` to `expires_at`, and
    /// returns the updated session. Otherwise changes nothing and returns `None`: of any
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

    /// Moves the active session `id` of `user_id` forward to `at` (never backward). A
    /// missing or ended session, or one of another user, is left alone.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn record_activity(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Ends the session if it is active and returns it as ended; `None` if it does not exist
    /// or had already ended (the first reason stays).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError>;

    /// Ends every active session of `user_id` except `keep`, and returns the ids it ended.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
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
