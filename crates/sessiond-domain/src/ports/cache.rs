use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{SessionId, SessionSummary, UserId};

/// A fast, forgetful copy of live sessions in front of the [`SessionRepository`]
/// (Redis in production), read by request validation.
///
/// It may lose any entry at any time (flush, restart, eviction): the repository decides.
/// It must never return a session that the repository ended once [`Self::remove`] for it
/// returned `Ok`, on any instance (SPEC §3 invariant 2).
///
/// [`SessionRepository`]: super::SessionRepository
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SessionCache: Send + Sync {
    /// The cached copy of `user_id`'s session `id`; `None` on a miss.
    ///
    /// # Errors
    /// [`StoreError`] when the cache cannot answer (callers fall back to the repository).
    async fn get(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError>;

    /// Caches an active session until its `expires_at`, replacing any cached copy.
    ///
    /// # Errors
    /// [`StoreError`] when the cache cannot be written (a later read misses; no harm).
    async fn put(&self, session: &SessionSummary, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Moves a cached session's `last_activity` forward to `at`; a miss is not an error.
    ///
    /// # Errors
    /// [`StoreError`] when the cache cannot be written.
    async fn touch(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Forgets these sessions of `user_id`. Returns `Ok` only when no later [`Self::get`] on
    /// any instance can return them; an adapter that cannot reach its store must guarantee
    /// that another way (for example, by serving no reads until its pending removals are
    /// done) or fail.
    ///
    /// # Errors
    /// [`StoreError`] when that guarantee cannot be given.
    async fn remove(&self, user_id: UserId, ids: &[SessionId]) -> Result<(), StoreError>;
}
