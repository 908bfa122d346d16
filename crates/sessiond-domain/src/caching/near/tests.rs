use std::collections::HashMap;
use std::sync::Mutex;

use time::Duration;
use time::macros::datetime;

use super::*;
use crate::model::{DeviceInfo, InvalidationReason, Revocation, Role, SessionStatus};
use crate::trust::{CacheTrust, ValidationMode};

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

type Hook = Box<dyn Fn(SessionId) + Send + Sync>;

/// A near cache that runs `before_insert` / `after_insert` around each insert: where a
/// revocation lands relative to a fill.
#[derive(Default)]
struct TestNearCache {
    entries: Mutex<HashMap<SessionId, Arc<SessionSummary>>>,
    before_insert: Mutex<Option<Hook>>,
    after_insert: Mutex<Option<Hook>>,
}

impl NearCache for TestNearCache {
    fn get(&self, id: SessionId) -> Option<Arc<SessionSummary>> {
        self.entries.lock().unwrap().get(&id).cloned()
    }

    fn insert(&self, session: Arc<SessionSummary>) {
        let id = session.id;
        if let Some(hook) = &*self.before_insert.lock().unwrap() {
            hook(id);
        }
        self.entries.lock().unwrap().insert(id, session);
        if let Some(hook) = &*self.after_insert.lock().unwrap() {
            hook(id);
        }
    }

    fn remove(&self, id: SessionId) {
        self.entries.lock().unwrap().remove(&id);
    }

    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

fn summary() -> Arc<SessionSummary> {
    Arc::new(SessionSummary {
        id: SessionId::from_random_bytes([3; 16]),
        user_id: UserId::from_random_bytes([4; 16]),
        role: Role::Guest,
        hotel_id: None,
        device: DeviceInfo::unknown(),
        device_name: None,
        ip_address: None,
        user_agent: None,
        created_at: NOW,
        last_activity: NOW,
        expires_at: NOW + Duration::hours(1),
        status: SessionStatus::Active,
        version: 1,
    })
}

fn memory() -> Arc<RevocationMemory> {
    Arc::new(RevocationMemory::new(Duration::minutes(16)))
}

fn revocation_of(session: &SessionSummary) -> Revocation {
    Revocation {
        session_id: session.id,
        user_id: session.user_id,
        reason: Some(InvalidationReason::AdminRevoked),
        revoked_at: NOW,
    }
}

/// What the revocation feed does when it hears of `revocation`: remember, then remove.
fn feed_hears(memory: &RevocationMemory, cache: &TestNearCache, revocation: &Revocation) {
    memory.remember(revocation);
    cache.remove(revocation.session_id);
}

#[test]
fn a_live_entry_answers_for_its_owner_only() {
    let near = NearSessions::new(Arc::new(TestNearCache::default()), memory(), None);
    let session = summary();
    near.fill(Arc::clone(&session), NOW);
    let hit = near.live(session.user_id, session.id, NOW).unwrap();
    assert!(Arc::ptr_eq(&hit, &session));
    let stranger = UserId::from_random_bytes([9; 16]);
    assert!(near.live(stranger, session.id, NOW).is_none());
}

#[test]
fn an_entry_that_looks_expired_misses_instead_of_refusing() {
    let near = NearSessions::new(Arc::new(TestNearCache::default()), memory(), None);
    let session = summary();
    near.fill(Arc::clone(&session), NOW);
    assert!(
        near.live(session.user_id, session.id, session.expires_at)
            .is_none()
    );
    // Still there: a refresh elsewhere may have moved the expiry, the stores will tell.
    assert_eq!(near.len(), 1);
}

#[test]
fn ended_or_expired_sessions_are_never_kept() {
    let near = NearSessions::new(Arc::new(TestNearCache::default()), memory(), None);
    let mut ended = (*summary()).clone();
    ended.status = SessionStatus::Ended {
        at: NOW,
        reason: InvalidationReason::UserLogout,
    };
    near.fill(Arc::new(ended), NOW);
    near.fill(summary(), NOW + Duration::hours(2));
    assert!(near.is_empty());
}

#[test]
fn a_fill_read_before_a_revocation_that_lands_before_the_insert_is_dropped() {
    let cache = Arc::new(TestNearCache::default());
    let memory = memory();
    let near = NearSessions::new(
        Arc::clone(&cache) as Arc<dyn NearCache>,
        Arc::clone(&memory),
        None,
    );
    let session = summary();
    let revocation = revocation_of(&session);
    let (hook_memory, hook_cache) = (Arc::clone(&memory), Arc::clone(&cache));
    *cache.before_insert.lock().unwrap() = Some(Box::new(move |_| {
        feed_hears(&hook_memory, &hook_cache, &revocation);
    }));
    near.fill(Arc::clone(&session), NOW);
    assert!(near.live(session.user_id, session.id, NOW).is_none());
    assert!(near.is_empty());
}

#[test]
fn a_revocation_that_lands_right_after_the_insert_removes_it() {
    let cache = Arc::new(TestNearCache::default());
    let memory = memory();
    let near = NearSessions::new(
        Arc::clone(&cache) as Arc<dyn NearCache>,
        Arc::clone(&memory),
        None,
    );
    let session = summary();
    let revocation = revocation_of(&session);
    let (hook_memory, hook_cache) = (Arc::clone(&memory), Arc::clone(&cache));
    *cache.after_insert.lock().unwrap() = Some(Box::new(move |_| {
        feed_hears(&hook_memory, &hook_cache, &revocation);
    }));
    near.fill(Arc::clone(&session), NOW);
    assert!(near.is_empty());
}

#[test]
fn entries_answer_only_while_the_caches_are_trusted() {
    let trust = Arc::new(CacheTrust::new(Duration::milliseconds(200)));
    trust.read_succeeded(NOW);
    let near = NearSessions::new(
        Arc::new(TestNearCache::default()),
        memory(),
        Some(Arc::clone(&trust)),
    );
    let session = summary();
    near.fill(Arc::clone(&session), NOW);
    assert!(near.live(session.user_id, session.id, NOW).is_some());
    let late = NOW + Duration::milliseconds(201);
    assert!(near.live(session.user_id, session.id, late).is_none());
    // Vouched for by the heartbeats is not enough: only the feed removes an entry that
    // another instance revoked.
    trust.read_failed();
    trust.vouch_until(late + Duration::milliseconds(100));
    assert_eq!(trust.mode(late), ValidationMode::Vouched);
    assert!(near.live(session.user_id, session.id, late).is_none());
}
