//! Revocations: sessions ended before their time, and what an instance remembers of them
//! (SPEC §8).

use std::collections::{HashMap, VecDeque};
use std::sync::{PoisonError, RwLock};

use time::{Duration, OffsetDateTime};

use super::{InvalidationReason, SessionId, UserId};

/// One session ended before its `expires_at`, as the revocation log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub session_id: SessionId,
    pub user_id: UserId,
    /// Why it ended; `None` when the session row was deleted while live (its user was).
    pub reason: Option<InvalidationReason>,
    pub revoked_at: OffsetDateTime,
}

/// What an instance remembers of a revoked session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    pub reason: Option<InvalidationReason>,
    pub revoked_at: OffsetDateTime,
}

/// The revocations this instance has heard of, each kept for `window` after it: the
/// longest a token issued before the revocation can still be presented (the access-token
/// lifetime plus the verifier's leeway). Request validation never serves a session found
/// here, whatever a cache says: cache tombstones can vanish in a restart or a failover.
#[derive(Debug)]
pub struct RevocationMemory {
    window: Duration,
    entries: RwLock<Entries>,
}

/// The remembered revocations, and the order they were heard in: forgetting pops the
/// oldest from the front instead of scanning them all under the lock that every
/// validation reads. Revocations arrive about in time order; one heard out of order is
/// kept until those before it go, a little longer than its window, which is always safe.
#[derive(Debug, Default)]
struct Entries {
    by_session: HashMap<SessionId, Remembered>,
    heard: VecDeque<(OffsetDateTime, SessionId)>,
}

impl RevocationMemory {
    /// A memory that keeps each revocation for `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            entries: RwLock::default(),
        }
    }

    /// How long a revocation is remembered.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Remembers a revocation; a session remembered already keeps its first record.
    pub fn remember(&self, revocation: &Revocation) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let Entries { by_session, heard } = &mut *entries;
        if let std::collections::hash_map::Entry::Vacant(entry) =
            by_session.entry(revocation.session_id)
        {
            entry.insert(Remembered {
                reason: revocation.reason,
                revoked_at: revocation.revoked_at,
            });
            heard.push_back((revocation.revoked_at, revocation.session_id));
        }
    }

    /// The revocation of session `id`, if this instance has heard of one.
    pub fn recall(&self, id: SessionId) -> Option<Remembered> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.by_session.get(&id).copied()
    }

    /// Forgets revocations older than the window at `now`: no token of theirs is accepted
    /// any more anyway. Costs a shared read when nothing is due, and then the forgotten
    /// entries only.
    pub fn forget_before(&self, now: OffsetDateTime) {
        let horizon = now - self.window;
        let is_due = |entries: &Entries| entries.heard.front().is_some_and(|(at, _)| *at < horizon);
        if !is_due(&self.entries.read().unwrap_or_else(PoisonError::into_inner)) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        while is_due(&entries) {
            if let Some((_, id)) = entries.heard.pop_front() {
                entries.by_session.remove(&id);
            }
        }
    }

    /// How many revocations are remembered now.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_session
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;

    fn revocation(n: u128, at: OffsetDateTime) -> Revocation {
        Revocation {
            session_id: SessionId::from_uuid(Uuid::from_u128(n)),
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            reason: Some(InvalidationReason::AdminRevoked),
            revoked_at: at,
        }
    }

    #[test]
    fn a_revocation_is_recalled_until_its_window_has_passed() {
        let at = datetime!(2026-01-01 00:00 UTC);
        let memory = RevocationMemory::new(Duration::seconds(60));
        let early = revocation(1, at);
        let late = revocation(2, at + Duration::seconds(30));
        memory.remember(&early);
        memory.remember(&late);
        assert_eq!(
            memory.recall(early.session_id).map(|r| r.revoked_at),
            Some(at)
        );

        memory.forget_before(at + Duration::seconds(60));
        assert!(
            memory.recall(early.session_id).is_some(),
            "kept through its window"
        );
        memory.forget_before(at + Duration::seconds(61));
        assert_eq!(memory.recall(early.session_id), None);
        assert!(memory.recall(late.session_id).is_some());
        assert_eq!(memory.len(), 1);
    }

    #[test]
    fn the_first_record_of_a_session_stays() {
        let at = datetime!(2026-01-01 00:00 UTC);
        let memory = RevocationMemory::new(Duration::seconds(60));
        let first = revocation(1, at);
        memory.remember(&first);
        memory.remember(&Revocation {
            reason: None,
            revoked_at: at + Duration::seconds(5),
            ..first
        });
        assert_eq!(
            memory.recall(first.session_id),
            Some(Remembered {
                reason: Some(InvalidationReason::AdminRevoked),
                revoked_at: at
            })
        );
    }

    #[test]
    fn one_heard_out_of_order_is_kept_longer_never_shorter() {
        let at = datetime!(2026-01-01 00:00 UTC);
        let memory = RevocationMemory::new(Duration::seconds(60));
        let newer = revocation(1, at + Duration::seconds(30));
        let older = revocation(2, at);
        memory.remember(&newer);
        memory.remember(&older);

        memory.forget_before(at + Duration::seconds(61));
        assert!(
            memory.recall(older.session_id).is_some(),
            "kept behind the newer one"
        );
        memory.forget_before(at + Duration::seconds(91));
        assert!(memory.is_empty());
    }
}
