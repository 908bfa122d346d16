use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    EndedBy, HourlyCounts, InvalidationReason, LimitAction, RefreshTokenHash, Session,
    SessionActivity, SessionId, SessionStatus, StoredStatistics, UserId, eviction_victims,
    hour_start,
};
use sessiond_domain::ports::{
    CleanupOutcome, CreateSessionError, SessionCleanup, SessionLimit, SessionRepository,
    SessionStatistics, SignInCheck,
};
use time::OffsetDateTime;

use crate::{MemoryUserRepository, lock};

/// One stored session and the refresh tokens it rotated out.
#[derive(Debug)]
struct Entry {
    session: Session,
    /// Every retired refresh-token hash, with when it was retired.
    retired: Vec<(RefreshTokenHash, OffsetDateTime)>,
}

/// Sessions in a map keyed by id. Listing filters by user: fine for the sizes this adapter
/// is for (development and tests).
///
/// Sign-in reads the user from `users` under the users' lock and keeps it while storing
/// the session, so that it is serialised with the user's security events as in PostgreSQL
/// (SPEC §3 invariant 7). Locks are always taken users first, then sessions.
#[derive(Debug)]
pub struct MemorySessionRepository {
    users: Arc<MemoryUserRepository>,
    sessions: Mutex<HashMap<SessionId, Entry>>,
    /// Failed sign-ins per hour start (the one statistic the sessions cannot tell), and
    /// the hour before which statistics are forgotten.
    statistics: Mutex<Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    failed_sign_ins: BTreeMap<OffsetDateTime, u64>,
    forgotten_before: Option<OffsetDateTime>,
}

impl MemorySessionRepository {
    /// Sessions of the users in `users`.
    pub fn new(users: Arc<MemoryUserRepository>) -> Self {
        Self {
            users,
            sessions: Mutex::default(),
            statistics: Mutex::default(),
        }
    }
}

/// Ends `session` if it is active, bumping its version; `true` when it did.
fn end_active(
    session: &mut Session,
    reason: InvalidationReason,
    by: EndedBy,
    at: OffsetDateTime,
) -> bool {
    if session.status != SessionStatus::Active {
        return false;
    }
    session.status = SessionStatus::Ended { at, reason };
    session.ended_by = Some(by);
    session.version += 1;
    true
}

#[async_trait]
impl SessionRepository for MemorySessionRepository {
    async fn create_within_limit(
        &self,
        session: &Session,
        limit: SessionLimit,
        check: &SignInCheck,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, CreateSessionError> {
        // Held until the session is stored: a security event of this user waits for it.
        let users = self.users.locked();
        let user = users
            .get(&session.user_id)
            .ok_or(CreateSessionError::UserGone)?;
        if !user.is_active {
            return Err(CreateSessionError::UserDisabled);
        }
        if user.password_hash != check.password_hash {
            return Err(CreateSessionError::PasswordChanged);
        }
        if user.role != session.role {
            return Err(CreateSessionError::RoleChanged(user.role));
        }

        let mut sessions = lock(&self.sessions);
        let live: Vec<Session> = sessions
            .values()
            .map(|entry| &entry.session)
            .filter(|s| s.user_id == session.user_id && s.is_live(now))
            .cloned()
            .collect();
        let victims = eviction_victims(&live, limit.max_sessions);
        if !victims.is_empty() && limit.on_limit == LimitAction::Reject {
            return Err(CreateSessionError::LimitReached);
        }
        for id in &victims {
            if let Some(victim) = sessions.get_mut(id) {
                end_active(
                    &mut victim.session,
                    InvalidationReason::MaxSessionsExceeded,
                    EndedBy::System,
                    now,
                );
            }
        }
        // The store decides the generation, as PostgreSQL does.
        let mut stored = session.clone();
        stored.version = 1;
        sessions.insert(
            session.id,
            Entry {
                session: stored,
                retired: Vec::new(),
            },
        );
        Ok(victims)
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(lock(&self.sessions)
            .get(&id)
            .map(|entry| entry.session.clone()))
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
        let Some(entry) = sessions.get_mut(&id) else {
            return Ok(None);
        };
        let session = &mut entry.session;
        if session.status != SessionStatus::Active || session.refresh.current != presented {
            return Ok(None);
        }
        session.refresh.previous = Some(presented);
        session.refresh.current = next;
        session.refresh.rotated_at = Some(now);
        session.last_activity = session.last_activity.max(now);
        session.expires_at = expires_at;
        session.version += 1;
        if !entry.retired.iter().any(|(hash, _)| *hash == presented) {
            entry.retired.push((presented, now));
        }
        Ok(Some(entry.session.clone()))
    }

    async fn find_retired_refresh_token(
        &self,
        id: SessionId,
        hash: RefreshTokenHash,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(lock(&self.sessions).get(&id).and_then(|entry| {
            entry
                .retired
                .iter()
                .find(|(retired, _)| *retired == hash)
                .map(|(_, at)| *at)
        }))
    }

    async fn record_activities(&self, activities: &[SessionActivity]) -> Result<(), StoreError> {
        let mut sessions = lock(&self.sessions);
        for activity in activities {
            if let Some(entry) = sessions.get_mut(&activity.session_id)
                && entry.session.status == SessionStatus::Active
                && entry.session.user_id == activity.user_id
            {
                entry.session.last_activity = entry.session.last_activity.max(activity.at);
            }
        }
        Ok(())
    }

    async fn end(
        &self,
        id: SessionId,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let mut sessions = lock(&self.sessions);
        Ok(sessions.get_mut(&id).and_then(|entry| {
            end_active(&mut entry.session, reason, by, at).then(|| entry.session.clone())
        }))
    }

    async fn end_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: InvalidationReason,
        by: EndedBy,
        at: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut sessions = lock(&self.sessions);
        Ok(sessions
            .values_mut()
            .map(|entry| &mut entry.session)
            .filter(|s| s.user_id == user_id && Some(s.id) != keep)
            .filter_map(|s| end_active(s, reason, by, at).then_some(s.id))
            .collect())
    }

    async fn list_live(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let mut live: Vec<Session> = lock(&self.sessions)
            .values()
            .map(|entry| &entry.session)
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
            .map(|entry| &entry.session)
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
    /// One lock for the whole pass: passes never overlap, so none is ever skipped. There is
    /// no revocation log here (one process hears its own ends), so nothing to forget.
    async fn run_pass(
        &self,
        now: OffsetDateTime,
        purge_before: OffsetDateTime,
        _forget_revocations_before: OffsetDateTime,
        _batch_size: u32,
    ) -> Result<Option<CleanupOutcome>, StoreError> {
        let mut sessions = lock(&self.sessions);
        let mut outcome = CleanupOutcome::default();
        for entry in sessions.values_mut() {
            let session = &mut entry.session;
            if session.status == SessionStatus::Active && session.expires_at <= now {
                let at = session.expires_at;
                end_active(session, InvalidationReason::Expired, EndedBy::System, at);
                outcome.expired.push((session.user_id, session.id));
            }
        }
        let before = sessions.len();
        sessions.retain(|_, entry| {
            entry
                .session
                .ended()
                .is_none_or(|(at, _)| at >= purge_before)
        });
        outcome.purged = (before - sessions.len()) as u64;
        Ok(Some(outcome))
    }
}

#[async_trait]
impl SessionStatistics for MemorySessionRepository {
    async fn record_failed_sign_in(&self, at: OffsetDateTime) -> Result<(), StoreError> {
        *lock(&self.statistics)
            .failed_sign_ins
            .entry(hour_start(at))
            .or_default() += 1;
        Ok(())
    }

    /// Counted from the sessions themselves: a scan, fine for the sizes this adapter is
    /// for. Sign-ins are the sessions created in an hour, ends those ended in it; both are
    /// kept for the whole retention period, longer than the hours asked for.
    async fn read(&self, since: OffsetDateTime) -> Result<StoredStatistics, StoreError> {
        let tally = lock(&self.statistics);
        let since = tally
            .forgotten_before
            .map_or(since, |forgotten| forgotten.max(since));
        let mut statistics = StoredStatistics::default();
        let mut hours: BTreeMap<OffsetDateTime, HourlyCounts> = BTreeMap::new();
        for entry in lock(&self.sessions).values() {
            let session = &entry.session;
            match session.status {
                SessionStatus::Active => statistics.open_by_role.add(session.role, 1),
                SessionStatus::Ended { at, reason } => {
                    if let Some(counts) = hour_of(&mut hours, at, since) {
                        counts.ended.add(reason, 1);
                    }
                }
            }
            if let Some(counts) = hour_of(&mut hours, session.created_at, since) {
                counts.sign_ins += 1;
            }
        }
        for (&start, &failed) in tally.failed_sign_ins.range(since..) {
            if let Some(counts) = hour_of(&mut hours, start, since) {
                counts.failed_sign_ins += failed;
            }
        }
        statistics.hours = hours.into_values().collect();
        Ok(statistics)
    }

    /// The sessions stay (cleanup purges them): their hours are hidden from then on.
    async fn forget_before(&self, before: OffsetDateTime) -> Result<(), StoreError> {
        let mut tally = lock(&self.statistics);
        tally.failed_sign_ins.retain(|&start, _| start >= before);
        tally.forgotten_before = Some(tally.forgotten_before.map_or(before, |f| f.max(before)));
        Ok(())
    }
}

/// The counts of the hour `at` falls in, if that hour starts at or after `since`.
fn hour_of(
    hours: &mut BTreeMap<OffsetDateTime, HourlyCounts>,
    at: OffsetDateTime,
    since: OffsetDateTime,
) -> Option<&mut HourlyCounts> {
    let start = hour_start(at);
    (start >= since).then(|| {
        hours
            .entry(start)
            .or_insert_with(|| HourlyCounts::empty(start))
    })
}
