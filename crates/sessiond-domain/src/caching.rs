//! Read-through caching: a [`SessionRepository`] that answers request validation from the
//! near cache ([`NearSessions`]), then a [`SessionCache`], and everything else from the
//! repository behind them.
//!
//! Writes go to the repository first, then to the cache: the repository is the truth and the
//! cache may only ever know less. Cache writes are best effort and ordered by the cache
//! (a late refill never lands over a tombstone or a newer generation). A session this
//! instance has ended, or heard ended on another through the revocation log, is remembered
//! in a [`RevocationMemory`] and never served from the cache, whatever the cache says:
//! correctness never depends on reaching the cache (SPEC §8). The caches answer only while
//! the [`CacheTrust`] allows it; otherwise the repository does, or nobody (503).

mod near;

pub use near::NearSessions;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{
    EndedBy, InvalidationReason, RefreshTokenHash, Revocation, RevocationMemory, Session,
    SessionActivity, SessionId, SessionStatus, SessionSummary, UserId,
};
use crate::ports::{
    CreateSessionError, SessionCache, SessionLimit, SessionRepository, SignInCheck,
};
use crate::trust::{CacheTrust, ValidationMode};

/// A repository with caches in front of its validation reads.
pub struct CachedSessionRepository {
    cache: Arc<dyn SessionCache>,
    store: Arc<dyn SessionRepository>,
    revocations: Arc<RevocationMemory>,
    near: Option<Arc<NearSessions>>,
    trust: Option<Arc<CacheTrust>>,
}

impl std::fmt::Debug for CachedSessionRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSessionRepository")
            .finish_non_exhaustive()
    }
}

impl CachedSessionRepository {
    /// `revocations` is this instance's memory of ended sessions, shared with the
    /// revocation feed that fills it from the log.
    pub fn new(
        cache: Arc<dyn SessionCache>,
        store: Arc<dyn SessionRepository>,
        revocations: Arc<RevocationMemory>,
    ) -> Self {
        Self {
            cache,
            store,
            revocations,
            near: None,
            trust: None,
        }
    }

    /// Also answers from, and fills, the near cache.
    #[must_use]
    pub fn with_near_cache(mut self, near: Arc<NearSessions>) -> Self {
        self.near = Some(near);
        self
    }

    /// Lets the caches answer only while `trust` allows it (instances sharing their stores).
    #[must_use]
    pub fn with_trust(mut self, trust: Arc<CacheTrust>) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Offers `session` to the caches, which keep live sessions only. Failures are the
    /// cache adapter's to report: the next read simply misses.
    async fn refill(&self, session: &SessionSummary, now: OffsetDateTime) {
        let _ = self.cache.put(session, now).await;
        self.fill_near(session, now);
    }

    fn fill_near(&self, session: &SessionSummary, now: OffsetDateTime) {
        if let Some(near) = &self.near {
            near.fill(Arc::new(session.clone()), now);
        }
    }

    fn mode(&self, now: OffsetDateTime) -> ValidationMode {
        self.trust
            .as_ref()
            .map_or(ValidationMode::Cached, |trust| trust.mode(now))
    }

    /// Validation's read through the caches: near cache (in [`ValidationMode::Cached`]
    /// only), Redis, then the repository, unless `mode` says the repository is unreachable
    /// (vouched): then a miss is unavailable at once rather than a wait on a dead link.
    async fn find_through_caches(
        &self,
        user_id: UserId,
        id: SessionId,
        now: OffsetDateTime,
        mode: ValidationMode,
    ) -> Result<Option<SessionSummary>, StoreError> {
        if let Some(hit) = self
            .near
            .as_ref()
            .and_then(|near| near.live(user_id, id, now))
        {
            return Ok(Some((*hit).clone()));
        }
        match self.cache.get(user_id, id).await {
            Ok(Some(hit)) => {
                let answer = self.unless_revoked(hit);
                if let Some(live) = &answer {
                    self.fill_near(live, now);
                }
                return Ok(answer);
            }
            Ok(None) if mode == ValidationMode::Vouched => return Err(store_unreachable()),
            Ok(None) => {}
            Err(error) if mode == ValidationMode::Vouched => return Err(error),
            // The cache is down: the repository answers alone until it is back.
            Err(_) => return self.store.find_summary(user_id, id, now).await,
        }
        let found = self.store.find_summary(user_id, id, now).await?;
        if let Some(session) = &found {
            // The caches drop this write if the session ended (or changed) since it was read.
            self.refill(session, now).await;
        }
        Ok(found)
    }

    /// Remembers that these sessions of `user_id` ended and marks them ended in the cache.
    /// The memory makes this instance refuse them at once; the tombstone makes the others
    /// refuse them before they hear of it from the revocation log. A tombstone that cannot
    /// be written is not an error: the log reaches every instance anyway.
    async fn ended(
        &self,
        user_id: UserId,
        ids: &[SessionId],
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) {
        if ids.is_empty() {
            return;
        }
        for &session_id in ids {
            self.revocations.remember(&Revocation {
                session_id,
                user_id,
                reason: Some(reason),
                revoked_at: at,
            });
        }
        if let Some(near) = &self.near {
            for &session_id in ids {
                near.forget(session_id);
            }
        }
        let until = at + self.revocations.window();
        let _ = self.cache.tombstone(user_id, ids, until).await;
    }

    /// A cached copy, unless this instance remembers the session as revoked: then the
    /// session as ended (or `None` when it was deleted).
    fn unless_revoked(&self, mut cached: SessionSummary) -> Option<SessionSummary> {
        match self.revocations.recall(cached.id) {
            None => Some(cached),
            Some(remembered) => {
                let reason = remembered.reason?;
                cached.status = SessionStatus::Ended {
                    at: remembered.revoked_at,
                    reason,
                };
                Some(cached)
            }
        }
    }
}

/// Why validation cannot answer: the feed is behind and PostgreSQL is out of reach.
fn store_unreachable() -> StoreError {
    StoreError::Unavailable(
        "the revocation feed is behind the bound and PostgreSQL is unreachable".into(),
    )
}

#[async_trait]
impl SessionRepository for CachedSessionRepository {
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        check: &SignInCheck,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError> {
        let evicted = self
            .store
            .create_within_limit(session, limit, check, now)
            .await?;
        self.ended(
            session.user_id,
            &evicted,
            InvalidationReason::MaxSessionsExceeded,
            now,
        )
        .await;
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
        now: OffsetDateTime,
    ) -> Result<Option<SessionSummary>, StoreError> {
        match self.mode(now) {
            mode @ (ValidationMode::Cached | ValidationMode::Vouched) => {
                self.find_through_caches(user_id, id, now, mode).await
            }
            ValidationMode::StoreOnly => match self.store.find_summary(user_id, id, now).await {
                Ok(found) => Ok(found),
                // The store failed while the feed still looked alive: the heartbeats may
                // vouch for the caches meanwhile.
                Err(StoreError::Unavailable(source)) => match self.mode(now) {
                    ValidationMode::Vouched => {
                        self.find_through_caches(user_id, id, now, ValidationMode::Vouched)
                            .await
                    }
                    _ => Err(StoreError::Unavailable(source)),
                },
                Err(error) => Err(error),
            },
            ValidationMode::Closed => Err(store_unreachable()),
        }
    }

    async fn find_retired_refresh_token(
        &self,
        id: SessionId,
        hash: RefreshTokenHash,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        self.store.find_retired_refresh_token(id, hash).await
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

    async fn record_activities(&self, activities: &[SessionActivity]) -> Result<(), StoreError> {
        // Only the repository: the cached copies' `last_activity` is this instance's own
        // business (the near cache), and nothing reads it from Redis but the activity
        // check, which costs a buffered write at most once per interval per instance.
        self.store.record_activities(activities).await
    }

    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let ended = self.store.end(id, reason, by, at).await?;
        if let Some(session) = &ended {
            self.ended(session.user_id, &[id], reason, at).await;
        }
        Ok(ended)
    }

    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ended = self
            .store
            .end_all_for_user(user_id, keep, reason, by, at)
            .await?;
        self.ended(user_id, &ended, reason, at).await;
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
