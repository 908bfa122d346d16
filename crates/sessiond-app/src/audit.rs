//! The audit trail of session lifecycle events: a decorator over the session repository
//! that logs every session opened and ended (with its reason) once, and counts them.
//! No token, hash or password is ever part of what it logs.

use std::sync::Arc;

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    InvalidationReason, RefreshTokenHash, Session, SessionId, SessionSummary, UserId,
};
use sessiond_domain::ports::{CreateSessionError, SessionLimit, SessionRepository};
use time::OffsetDateTime;

use crate::metrics::{SESSIONS_CREATED, SESSIONS_ENDED};

/// A session repository whose lifecycle events are logged and counted.
pub struct AuditedSessionRepository {
    inner: Arc<dyn SessionRepository>,
}

impl std::fmt::Debug for AuditedSessionRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditedSessionRepository")
            .finish_non_exhaustive()
    }
}

impl AuditedSessionRepository {
    pub fn new(inner: Arc<dyn SessionRepository>) -> Self {
        Self { inner }
    }
}

fn ended(user_id: UserId, ids: &[SessionId], reason: InvalidationReason) {
    for id in ids {
        tracing::info!(session.id = %id, user.id = %user_id, reason = reason.as_str(), "session ended");
    }
    metrics::counter!(SESSIONS_ENDED, "reason" => reason.as_str()).increment(ids.len() as u64);
}

#[async_trait]
impl SessionRepository for AuditedSessionRepository {
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError> {
        let evicted = self.inner.create_within_limit(session, limit, now).await?;
        tracing::info!(
            session.id = %session.id,
            user.id = %session.user_id,
            role = session.role.as_str(),
            device = session.device.class.as_str(),
            "session opened"
        );
        metrics::counter!(SESSIONS_CREATED, "role" => session.role.as_str()).increment(1);
        ended(
            session.user_id,
            &evicted,
            InvalidationReason::MaxSessionsExceeded,
        );
        Ok(evicted)
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.inner.find(id).await
    }

    async fn find_summary(
        &self,
        user_id: UserId,
        id: SessionId,
    ) -> Result<Option<SessionSummary>, StoreError> {
        self.inner.find_summary(user_id, id).await
    }

    async fn rotate_refresh_token(
        &self,
        id: SessionId,
        presented: RefreshTokenHash,
        next: RefreshTokenHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        self.inner
            .rotate_refresh_token(id, presented, next, expires_at, now)
            .await
    }

    async fn record_activity(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.inner.record_activity(user_id, id, at).await
    }

    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let session = self.inner.end(id, reason, at).await?;
        if let Some(session) = &session {
            ended(session.user_id, &[id], reason);
        }
        Ok(session)
    }

    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ids = self
            .inner
            .end_all_for_user(user_id, keep, reason, at)
            .await?;
        ended(user_id, &ids, reason);
        Ok(ids)
    }

    async fn list_live(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.list_live(user_id, now).await
    }

    async fn list_ended(
        &self,
        user_id: UserId,
        since: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.list_ended(user_id, since).await
    }
}
