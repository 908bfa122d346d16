use std::sync::Arc;

use crate::model::{SessionId, SessionSummary};

/// A bounded copy of live sessions inside this process (SPEC §8), in front of the
/// [`SessionCache`]: a hit costs no network round trip.
///
/// Synchronous on purpose: a hit must cost well under a microsecond and allocate nothing,
/// so entries are shared (`Arc`) rather than copied. It may drop any entry at any time
/// (capacity); what goes in and when it must come out is decided by the domain
/// ([`crate::caching`]), never by the adapter.
///
/// [`SessionCache`]: super::SessionCache
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait NearCache: Send + Sync {
    /// The entry for `id`, if there is one.
    fn get(&self, id: SessionId) -> Option<Arc<SessionSummary>>;

    /// Stores `session` under its id, replacing any entry.
    fn insert(&self, session: Arc<SessionSummary>);

    /// Drops the entry for `id`, if there is one.
    fn remove(&self, id: SessionId);

    /// How many entries it holds now.
    fn len(&self) -> usize;

    /// Whether it holds no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
