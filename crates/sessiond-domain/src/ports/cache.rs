use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{SessionId, SessionSummary, UserId};

/// A fast, forgetful copy of live sessions in front of the [`SessionRepository`]
/// (Redis in production), read by request validation.
///
/// It may lose any entry at any time (flush, restart, eviction): the repository decides.
/// Writes are ordered, not merely fast: a write that arrives late (slow, retried, or sent
/// before a revocation and executed after it) never brings back an ended session and never
/// replaces a newer generation of a session with an older one (SPEC §3 invariant 2).
///
/// [`SessionRepository`]: super::SessionRepository
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SessionCache: Send + Sync {
    /// The cached copy of `user_id`'s session `id`; `None` on a miss, and for a session
    /// marked ended by [`Self::tombstone`].
    ///
    /// # Errors
    /// [`StoreError`] when the cache cannot answer (callers fall back to the repository).
    async fn get(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError>;

    /// Caches an active session until its `expires_at`, unless the session is marked ended
    /// or a newer [`SessionSummary::version`] of it is cached: then nothing changes. An
    /// entry that is not live at `now` is not cached.
    ///
    /// # Errors
    /// [`StoreError`] when the cache cannot be written (a later read misses; no harm).
    async fn put(&self, session: &SessionSummary, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Marks these sessions of `user_id` ended until `until`: their cached copies go, and
    /// no [`Self::put`] of them lands before then.
    ///
    /// # Errors
    /// [`StoreError`] when the cache cannot be written. Callers treat this as best effort:
    /// every instance also remembers the revocation, heard from the revocation log.
    async fn tombstone(
        &self,
        user_id: UserId,
        ids: &[SessionId],
        until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Drops from `user_id`'s index the sessions that expired by `now` or whose entry is
    /// gone (the cleanup job, SPEC §5); returns how many it dropped.
    ///
    /// # Errors
    /// [`StoreError`] when the cache cannot be written.
    async fn prune_index(&self, user_id: UserId, now: OffsetDateTime) -> Result<u64, StoreError>;
}
