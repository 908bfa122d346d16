//! The near cache's rules (SPEC §8): what goes in, when it may answer, and how a fill that
//! races with a revocation never outlives it.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::model::{Liveness, RevocationMemory, SessionId, SessionSummary, UserId};
use crate::ports::NearCache;
use crate::trust::CacheTrust;

/// Live sessions kept in this process, answering validation with no round trip while the
/// [`CacheTrust`] allows it.
///
/// It never holds a session this instance remembers as ended: ends made here and ends heard
/// from the revocation log remove the entry after remembering the end, and a fill checks
/// the memory after inserting. Whatever the order of the two, one of them removes it.
pub struct NearSessions {
    cache: Arc<dyn NearCache>,
    memory: Arc<RevocationMemory>,
    trust: Option<Arc<CacheTrust>>,
}

impl std::fmt::Debug for NearSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearSessions")
            .field("len", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl NearSessions {
    /// `memory` is the instance's memory of ended sessions; `trust`, when the instance
    /// shares its stores with others, decides when entries may answer (always without).
    pub fn new(
        cache: Arc<dyn NearCache>,
        memory: Arc<RevocationMemory>,
        trust: Option<Arc<CacheTrust>>,
    ) -> Self {
        Self {
            cache,
            memory,
            trust,
        }
    }

    /// The port, for the revocation feed's removals.
    pub fn cache(&self) -> Arc<dyn NearCache> {
        Arc::clone(&self.cache)
    }

    /// `user_id`'s session `id`, if an entry may answer for it at `now`: the feed is within
    /// the bound ([`ValidationMode::Cached`](crate::trust::ValidationMode::Cached)) and the
    /// entry is live. An entry that looks expired does not refuse: it
    /// misses, and the stores decide (another instance may have refreshed the session).
    pub fn live(
        &self,
        user_id: UserId,
        id: SessionId,
        now: OffsetDateTime,
    ) -> Option<Arc<SessionSummary>> {
        if let Some(trust) = &self.trust
            && !trust.mode(now).trusts_near_cache()
        {
            return None;
        }
        self.cache
            .get(id)
            .filter(|entry| entry.user_id == user_id && entry.liveness(now) == Liveness::Live)
    }

    /// Keeps `session` if it is live at `now` and not remembered as ended.
    pub fn fill(&self, session: Arc<SessionSummary>, now: OffsetDateTime) {
        if session.liveness(now) != Liveness::Live {
            return;
        }
        let id = session.id;
        self.cache.insert(session);
        // After inserting: an end remembered meanwhile is seen here, or its removal comes
        // after this insert.
        if self.memory.recall(id).is_some() {
            self.cache.remove(id);
        }
    }

    /// Drops `id` (ended here; the memory already knows).
    pub fn forget(&self, id: SessionId) {
        self.cache.remove(id);
    }

    /// How many sessions it holds.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests;
