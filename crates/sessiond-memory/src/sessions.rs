use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    InvalidationReason, LimitAction, RefreshTokenHash, Session, SessionId, SessionStatus, UserId,
    eviction_victims,
};
use sessiond_domain::ports::{
    CleanupOutcome, CreateSessionError, SessionCleanup, SessionLimit, SessionRepository,
};
use time::OffsetDateTime;

use crate::lock;

/// Sessions in a map keyed by id. Listing filters by user: fine for the sizes this adapter
/// is for (development and tests).
#[derive(Debug, Default)]
pub struct MemorySessionRepository {
    sessions: Mutex<HashMap<SessionId, Session>>,
}

impl MemorySessionRepository {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Ends `session` if it is active; `true` when it did.
fn end_active(session: &mut Session, reason: InvalidationReason, at: OffsetDateTime) -> bool {
    if session.status != SessionStatus::Active {
        return false;
    }
    session.status = SessionStatus::Ended { at, reason };
    true
}

#[async_trait]
impl SessionRepository for MemorySessionRepository {
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError> {
        let mut sessions = lock(&self.sessions);
        let live: Vec<Session> = sessions
            .values()
            .filter(|s| s.user_id == session.user_id && s.is_live(now))
            .cloned()
            .collect();
        let victims = eviction_victims(&live, limit.max_sessions);
        if !victims.is_empty() && limit.on_limit == LimitAction::Reject {
            return Err(CreateSessionError::LimitReached);
        }
        for id in &victims {
            if let Some(victim) = sessions.get_mut(id) {
                end_active(victim, InvalidationReason::MaxSessionsExceeded, now);
            }
        }
        sessions.insert(session.id, session.clone());
        Ok(victims)
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(lock(&self.sessions).get(&id).cloned())
    }

    async fn rotate_refresh_token(
        &self,
        id: SessionId,
        presented: RefreshTokenHash,
        next: RefreshTokenHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let mut sessions = lock(&self.sessions);
        let Some(session) = sessions.get_mut(&id) else {
            return Ok(None);
        };
        if session.status != SessionStatus::Active || session.refresh.current != presented {
            return Ok(None);
        }
        session.refresh.previous = Some(presented);
        session.refresh.current = next;
        session.refresh.rotated_at = Some(now);
        session.last_activity = session.last_activity.max(now);
        session.expires_at = expires_at;
        Ok(Some(session.clone()))
    }

    async fn record_activity(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if let Some(session) = lock(&self.sessions).get_mut(&id)
            && session.status == SessionStatus::Active
            && session.user_id == user_id
        {
            session.last_activity = session.last_activity.max(at);
        }
        Ok(())
    }

    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let mut sessions = lock(&self.sessions);
        Ok(sessions
            .get_mut(&id)
            .and_then(|session| end_active(session, reason, at).then(|| session.clone())))
    }

    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
        at: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut sessions = lock(&self.sessions);
        Ok(sessions
            .values_mut()
            .filter(|s| s.user_id == user_id && Some(s.id) != keep)
            .filter_map(|s| end_active(s, reason, at).then_some(s.id))
            .collect())
    }

    async fn list_live(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let mut live: Vec<Session> = lock(&self.sessions)
            .values()
            .filter(|s| s.user_id == user_id && s.is_live(now))
            .cloned()
            .collect();
        live.sort_by_key(|s| (Reverse(s.last_activity), Reverse(s.created_at), s.id));
        Ok(live)
    }

    async fn list_ended(
        &self,
        user_id: UserId,
        since: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let mut ended: Vec<(OffsetDateTime, Session)> = lock(&self.sessions)
            .values()
            .filter(|s| s.user_id == user_id)
            .filter_map(|s| s.ended().map(|(at, _)| (at, s.clone())))
            .filter(|(at, _)| *at >= since)
            .collect();
        ended.sort_by_key(|(at, s)| (Reverse(*at), s.id));
        Ok(ended.into_iter().map(|(_, s)| s).collect())
    }
}

#[async_trait]
impl SessionCleanup for MemorySessionRepository {
    /// One lock for the whole pass: passes never overlap, so none is ever skipped.
    async fn run_pass(
        &self,
        now: OffsetDateTime,
        purge_before: OffsetDateTime,
        _batch_size: u32,
    ) -> Result<Option<CleanupOutcome>, StoreError> {
        let mut sessions = lock(&self.sessions);
        let mut outcome = CleanupOutcome::default();
        for session in sessions.values_mut() {
            if session.status == SessionStatus::Active && session.expires_at <= now {
                let at = session.expires_at;
                end_active(session, InvalidationReason::Expired, at);
                outcome.expired.push((session.user_id, session.id));
            }
        }
        let before = sessions.len();
        sessions.retain(|_, s| s.ended().is_none_or(|(at, _)| at >= purge_before));
        outcome.purged = (before - sessions.len()) as u64;
        Ok(Some(outcome))
    }
}
