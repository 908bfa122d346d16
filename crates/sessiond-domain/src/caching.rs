//! Read-through caching: a [`SessionRepository`] that answers request validation from a
//! [`SessionCache`] and everything else from the repository behind it.
//!
//! Writes go to the repository first, then to the cache: the repository is the truth and the
//! cache may only ever know less. A failed cache write is harmless (the next read misses and
//! refills), except a failed removal, which fails the operation: an ended session must not
//! stay readable in the cache.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{
    InvalidationReason, RefreshTokenHash, Session, SessionId, SessionStatus, SessionSummary, UserId,
};
use crate::ports::{CreateSessionError, SessionCache, SessionLimit, SessionRepository};

/// A repository with a cache in front of its validation reads.
pub struct CachedSessionRepository {
    cache: Arc<dyn SessionCache>,
    store: Arc<dyn SessionRepository>,
}

impl std::fmt::Debug for CachedSessionRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSessionRepository")
            .finish_non_exhaustive()
    }
}

impl CachedSessionRepository {
    pub fn new(cache: Arc<dyn SessionCache>, store: Arc<dyn SessionRepository>) -> Self {
        Self { cache, store }
    }

    /// Caches `session` if it is active. Failures are the cache adapter's to report: the
    /// next read simply misses.
    async fn refill(&self, session: &SessionSummary, now: OffsetDateTime) {
        if session.status == SessionStatus::Active {
            let _ = self.cache.put(session, now).await;
        }
    }
}

#[async_trait]
impl SessionRepository for CachedSessionRepository {
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError> {
        let evicted = self.store.create_within_limit(session, limit, now).await?;
        if !evicted.is_empty() {
            self.cache.remove(session.user_id, &evicted).await?;
        }
        self.refill(&SessionSummary::from(session), now).await;
        Ok(evicted)
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.store.find(id).await
    }

    async fn find_summary(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        match self.cache.get(user_id, id).await {
            Ok(Some(hit)) => return Ok(Some(hit)),
            Ok(None) => {}
            // The cache is down: the repository answers alone until it is back.
            Err(_) => return self.store.find_summary(user_id, id).await,
        }
        let found = self.store.find_summary(user_id, id).await?;
        if let Some(session) = &found {
            // Cache entries live until `expires_at`; the TTL needs a "now", and the entry's
            // own last activity is the latest instant this path knows.
            self.refill(session, session.last_activity).await;
        }
        Ok(found)
    }

    async fn rotate_refresh_token(
        &self,
        id: SessionId,
        presented: RefreshTokenHash,
        next: RefreshTokenHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let rotated = self
            .store
            .rotate_refresh_token(id, presented, next, expires_at, now)
            .await?;
        if let Some(session) = &rotated {
            // The expiry slid: the cache entry's TTL must slide with it.
            self.refill(&SessionSummary::from(session), now).await;
        }
        Ok(rotated)
    }

    async fn record_activity(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let stored = self.store.record_activity(user_id, id, at).await;
        // Touched even when the repository failed: with the database down, the cached copy
        // then stops asking for an activity write on every request.
        let _ = self.cache.touch(user_id, id, at).await;
        stored
    }

    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        match self.store.end(id, reason, at).await? {
            Some(ended) => {
                self.cache.remove(ended.user_id, &[id]).await?;
                Ok(Some(ended))
            }
            None => {
                // Already ended, perhaps by a call whose cache removal failed: remove again,
                // so that retrying a failed revocation completes it.
                if let Some(session) = self.store.find(id).await? {
                    self.cache.remove(session.user_id, &[id]).await?;
                }
                Ok(None)
            }
        }
    }

    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ended = self
            .store
            .end_all_for_user(user_id, keep, reason, at)
            .await?;
        if !ended.is_empty() {
            self.cache.remove(user_id, &ended).await?;
        }
        Ok(ended)
    }

    async fn list_live(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.store.list_live(user_id, now).await
    }

    async fn list_ended(
        &self,
        user_id: UserId,
        since: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.store.list_ended(user_id, since).await
    }
}

#[cfg(test)]
mod tests;
