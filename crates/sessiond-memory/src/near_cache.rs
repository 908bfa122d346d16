//! [`NearCache`] on quick_cache: a sharded, bounded map whose hit takes a read lock on one
//! shard and clones an `Arc` (no allocation), evicting the coldest entries at capacity.

use std::sync::Arc;

use quick_cache::sync::Cache;
use sessiond_domain::model::{SessionId, SessionSummary};
use sessiond_domain::ports::NearCache;

/// The in-process near cache, holding at most about `capacity` sessions.
pub struct QuickNearCache {
    entries: Cache<SessionId, Arc<SessionSummary>>,
}

impl std::fmt::Debug for QuickNearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickNearCache")
            .field("len", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .finish()
    }
}

impl QuickNearCache {
    /// A near cache of about `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Cache::new(capacity.max(1)),
        }
    }
}

impl NearCache for QuickNearCache {
    fn get(&self, id: SessionId) -> Option<Arc<SessionSummary>> {
        self.entries.get(&id)
    }

    fn insert(&self, session: Arc<SessionSummary>) {
        self.entries.insert(session.id, session);
    }

    fn remove(&self, id: SessionId) {
        self.entries.remove(&id);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use sessiond_domain::model::{DeviceInfo, Role, SessionStatus, UserId};
    use time::macros::datetime;

    use super::*;

    fn summary(n: u128) -> Arc<SessionSummary> {
        let at = datetime!(2026-01-01 00:00 UTC);
        Arc::new(SessionSummary {
            id: SessionId::from_uuid(uuid::Uuid::from_u128(n)),
            user_id: UserId::from_uuid(uuid::Uuid::from_u128(1)),
            role: Role::Guest,
            hotel_id: None,
            device: DeviceInfo::unknown(),
            device_name: None,
            ip_address: None,
            user_agent: None,
            created_at: at,
            last_activity: at,
            expires_at: at + time::Duration::hours(1),
            status: SessionStatus::Active,
            version: 1,
        })
    }

    #[test]
    fn entries_are_shared_replaced_and_removed() {
        let cache = QuickNearCache::new(10);
        let first = summary(1);
        cache.insert(Arc::clone(&first));
        let hit = cache.get(first.id).unwrap();
        assert!(
            Arc::ptr_eq(&hit, &first),
            "a hit shares the entry, it does not copy it"
        );

        let mut newer = (*first).clone();
        newer.version = 2;
        cache.insert(Arc::new(newer));
        assert_eq!(cache.get(first.id).unwrap().version, 2);

        cache.remove(first.id);
        assert!(cache.get(first.id).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn it_holds_about_its_capacity_and_no_more() {
        let cache = QuickNearCache::new(100);
        for n in 0..1_000 {
            cache.insert(summary(n));
        }
        assert!(cache.len() <= 110, "{} entries", cache.len());
        assert!(cache.len() >= 50, "{} entries", cache.len());
    }
}
