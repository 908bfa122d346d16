//! Revocations: sessions ended before their time, and what an instance remembers of them
//! (SPEC §8).

use std::collections::HashMap;
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
    entries: RwLock<HashMap<SessionId, Remembered>>,
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
        entries.entry(revocation.session_id).or_insert(Remembered {
            reason: revocation.reason,
            revoked_at: revocation.revoked_at,
        });
    }

    /// The revocation of session `id`, if this instance has heard of one.
    pub fn recall(&self, id: SessionId) -> Option<Remembered> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(&id).copied()
    }

    /// Forgets revocations older than the window at `now`: no token of theirs is accepted
    /// any more anyway.
    pub fn forget_before(&self, now: OffsetDateTime) {
        let horizon = now - self.window;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, remembered| remembered.revoked_at >= horizon);
    }

    /// How many revocations are remembered now.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
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
}
