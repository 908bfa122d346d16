use mockall::predicate::eq;
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::model::{
    DeviceInfo, LimitAction, PasswordHash, RefreshState, RefreshToken, Remembered, Role,
};
use crate::ports::{MockSessionCache, MockSessionRepository};

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// How long the tests' memory keeps a revocation.
const WINDOW: Duration = Duration::seconds(965);

fn session() -> Session {
    let id = SessionId::from_random_bytes([3; 16]);
    Session {
        id,
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
        refresh: RefreshState {
            current: RefreshToken::new(id, [1; 32]).hash(),
            previous: None,
            rotated_at: None,
        },
        ended_by: None,
        version: 1,
    }
}

fn check() -> SignInCheck {
    SignInCheck {
        password_hash: PasswordHash::new("$argon2id$fixture".into()),
    }
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("redis down".into())
}

fn memory() -> Arc<RevocationMemory> {
    Arc::new(RevocationMemory::new(WINDOW))
}

fn repository(cache: MockSessionCache, store: MockSessionRepository) -> CachedSessionRepository {
    repository_with(cache, store, memory())
}

fn repository_with(
    cache: MockSessionCache,
    store: MockSessionRepository,
    memory: Arc<RevocationMemory>,
) -> CachedSessionRepository {
    CachedSessionRepository::new(Arc::new(cache), Arc::new(store), memory)
}

/// The session's cached copy is still there (its tombstone never landed, or vanished).
fn cache_still_holding(session: &Session) -> MockSessionCache {
    let mut cache = MockSessionCache::new();
    let hit = SessionSummary::from(session);
    cache
        .expect_get()
        .with(eq(session.user_id), eq(session.id))
        .returning(move |_, _| Ok(Some(hit.clone())));
    cache
}

#[tokio::test]
async fn a_cache_hit_never_reaches_the_repository() {
    let session = session();
    let summary = SessionSummary::from(&session);
    let cache = cache_still_holding(&session);
    let mut store = MockSessionRepository::new();
    store.expect_find_summary().times(0);
    store.expect_find().times(0);
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap();
    assert_eq!(found, Some(summary));
}

#[tokio::test]
async fn a_miss_reads_the_repository_and_refills_the_cache() {
    let session = session();
    let mut summary = SessionSummary::from(&session);
    // Refreshed twice since it was created: the refill carries the store's generation, so
    // that the cache can refuse it if a newer one is there already.
    summary.version = 3;
    // Last active a while ago: the refill is as of the clock's now, not of that activity.
    summary.last_activity = NOW - Duration::minutes(10);
    let mut cache = MockSessionCache::new();
    cache.expect_get().returning(|_, _| Ok(None));
    let expected = summary.clone();
    cache
        .expect_put()
        .withf(move |cached, now| *cached == expected && cached.version == 3 && *now == NOW)
        .times(1)
        .returning(|_, _| Ok(()));
    let mut store = MockSessionRepository::new();
    let stored = summary.clone();
    store
        .expect_find_summary()
        .with(eq(session.user_id), eq(session.id), eq(NOW))
        .times(1)
        .returning(move |_, _, _| Ok(Some(stored.clone())));
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap();
    assert_eq!(found, Some(summary));
}

#[tokio::test]
async fn a_failed_refill_still_answers_from_the_repository() {
    let session = session();
    let summary = SessionSummary::from(&session);
    let mut cache = MockSessionCache::new();
    cache.expect_get().returning(|_, _| Ok(None));
    cache
        .expect_put()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    let mut store = MockSessionRepository::new();
    let stored = summary.clone();
    store
        .expect_find_summary()
        .returning(move |_, _, _| Ok(Some(stored.clone())));
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap();
    assert_eq!(found, Some(summary));
}

#[tokio::test]
async fn an_ended_session_is_answered_from_the_repository_and_offered_to_the_cache() {
    let mut session = session();
    session.status = SessionStatus::Ended {
        at: NOW,
        reason: InvalidationReason::AdminRevoked,
    };
    let mut cache = MockSessionCache::new();
    cache.expect_get().returning(|_, _| Ok(None));
    // Which states are worth caching is the cache's contract (only live ones).
    cache
        .expect_put()
        .withf(|offered, _| matches!(offered.status, SessionStatus::Ended { .. }))
        .times(1)
        .returning(|_, _| Ok(()));
    let mut store = MockSessionRepository::new();
    let stored = SessionSummary::from(&session);
    store
        .expect_find_summary()
        .returning(move |_, _, _| Ok(Some(stored.clone())));
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap();
    assert!(matches!(found.unwrap().status, SessionStatus::Ended { .. }));
}

#[tokio::test]
async fn a_broken_cache_falls_back_to_the_repository() {
    let session = session();
    let mut cache = MockSessionCache::new();
    cache.expect_get().returning(|_, _| Err(unavailable()));
    cache.expect_put().times(0);
    let mut store = MockSessionRepository::new();
    let stored = SessionSummary::from(&session);
    store
        .expect_find_summary()
        .times(1)
        .returning(move |_, _, _| Ok(Some(stored.clone())));
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap();
    assert!(found.is_some());
}

#[tokio::test]
async fn a_cache_hit_for_a_remembered_revocation_is_answered_as_ended() {
    let session = session();
    let revoked_at = NOW - Duration::seconds(30);
    let memory = memory();
    memory.remember(&Revocation {
        session_id: session.id,
        user_id: session.user_id,
        reason: Some(InvalidationReason::AdminRevoked),
        revoked_at,
    });
    // Redis lost the tombstone (a restart, a failover) and a late write brought the live
    // copy back: the memory still refuses it, without asking the repository.
    let cache = cache_still_holding(&session);
    let mut store = MockSessionRepository::new();
    store.expect_find_summary().times(0);
    let found = repository_with(cache, store, memory)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap()
        .expect("answered as ended, not as missing");
    assert_eq!(
        found.status,
        SessionStatus::Ended {
            at: revoked_at,
            reason: InvalidationReason::AdminRevoked
        }
    );
    assert_eq!(found.id, session.id);
    assert_eq!(found.user_id, session.user_id);
}

#[tokio::test]
async fn a_cache_hit_for_a_session_remembered_as_deleted_is_not_found() {
    let session = session();
    let memory = memory();
    memory.remember(&Revocation {
        session_id: session.id,
        user_id: session.user_id,
        reason: None,
        revoked_at: NOW - Duration::seconds(30),
    });
    let cache = cache_still_holding(&session);
    let mut store = MockSessionRepository::new();
    store.expect_find_summary().times(0);
    let found = repository_with(cache, store, memory)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn a_revocation_of_another_session_does_not_touch_a_cache_hit() {
    let session = session();
    let memory = memory();
    memory.remember(&Revocation {
        session_id: SessionId::from_random_bytes([8; 16]),
        user_id: session.user_id,
        reason: Some(InvalidationReason::UserLogout),
        revoked_at: NOW,
    });
    let cache = cache_still_holding(&session);
    let found = repository_with(cache, MockSessionRepository::new(), memory)
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap();
    assert_eq!(found, Some(SessionSummary::from(&session)));
}

#[tokio::test]
async fn ending_remembers_the_session_then_tombstones_it_for_the_window() {
    let session = session();
    let at = NOW + Duration::minutes(2);
    let ended = Session {
        status: SessionStatus::Ended {
            at,
            reason: InvalidationReason::UserLogout,
        },
        version: 2,
        ..session.clone()
    };
    let mut store = MockSessionRepository::new();
    let returned = ended.clone();
    store
        .expect_end()
        .with(
            eq(session.id),
            eq(InvalidationReason::UserLogout),
            eq(EndedBy::Owner),
            eq(at),
        )
        .times(1)
        .returning(move |_, _, _, _| Ok(Some(returned.clone())));
    let memory = memory();
    let mut cache = MockSessionCache::new();
    let (user_id, id) = (session.user_id, session.id);
    let seen = Arc::clone(&memory);
    cache
        .expect_tombstone()
        .withf(move |user, ids, until| *user == user_id && ids == [id] && *until == at + WINDOW)
        .times(1)
        .returning(move |_, _, _| {
            // Remembered first: this instance refuses the session even while the
            // tombstone's write is on its way.
            assert!(seen.recall(id).is_some(), "remembered before the tombstone");
            Ok(())
        });
    let result = repository_with(cache, store, Arc::clone(&memory))
        .end(id, InvalidationReason::UserLogout, EndedBy::Owner, at)
        .await
        .unwrap();
    assert_eq!(result, Some(ended));
    assert_eq!(
        memory.recall(id),
        Some(Remembered {
            reason: Some(InvalidationReason::UserLogout),
            revoked_at: at
        })
    );
}

#[tokio::test]
async fn an_ended_session_stays_refused_when_its_tombstone_cannot_be_written() {
    let session = session();
    let ended = Session {
        status: SessionStatus::Ended {
            at: NOW,
            reason: InvalidationReason::UserLogout,
        },
        ..session.clone()
    };
    let mut store = MockSessionRepository::new();
    store
        .expect_end()
        .returning(move |_, _, _, _| Ok(Some(ended.clone())));
    store.expect_find_summary().times(0);
    // The tombstone fails, and the cache keeps serving the live copy.
    let mut cache = cache_still_holding(&session);
    cache
        .expect_tombstone()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));
    let repository = repository(cache, store);
    let result = repository
        .end(
            session.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            NOW,
        )
        .await;
    assert!(
        matches!(result, Ok(Some(_))),
        "the revocation is committed; the cache is best effort"
    );
    let found = repository
        .find_summary(session.user_id, session.id, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.status,
        SessionStatus::Ended {
            at: NOW,
            reason: InvalidationReason::UserLogout
        }
    );
}

#[tokio::test]
async fn a_failed_end_touches_neither_the_memory_nor_the_cache() {
    let session = session();
    let mut store = MockSessionRepository::new();
    store
        .expect_end()
        .returning(|_, _, _, _| Err(StoreError::Unavailable("database down".into())));
    let mut cache = MockSessionCache::new();
    cache.expect_tombstone().times(0);
    let memory = memory();
    let result = repository_with(cache, store, Arc::clone(&memory))
        .end(
            session.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            NOW,
        )
        .await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))));
    assert!(memory.is_empty(), "the repository decides: nothing ended");
}

#[tokio::test]
async fn ending_a_session_that_already_ended_leaves_it_to_the_revocation_log() {
    // Perhaps ended by a call whose answer was lost: retrying succeeds, and the end that
    // was committed the first time reaches every instance through the log.
    let session = session();
    let mut store = MockSessionRepository::new();
    store.expect_end().times(1).returning(|_, _, _, _| Ok(None));
    let mut cache = MockSessionCache::new();
    cache.expect_tombstone().times(0);
    let result = repository(cache, store)
        .end(
            session.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(result, None);
}

#[tokio::test]
async fn sign_in_tombstones_the_evicted_and_caches_the_new_session() {
    let session = session();
    let evicted = vec![SessionId::from_random_bytes([9; 16])];
    let limit = SessionLimit {
        max_sessions: 1,
        on_limit: LimitAction::EvictOldest,
    };
    let mut store = MockSessionRepository::new();
    let victims = evicted.clone();
    let (created, expected_check) = (session.clone(), check());
    store
        .expect_create_within_limit()
        .withf(move |s, l, c, now| {
            *s == created && *l == limit && *c == expected_check && *now == NOW
        })
        .times(1)
        .returning(move |_, _, _, _| Ok(victims.clone()));
    let mut cache = MockSessionCache::new();
    let expected = evicted.clone();
    let user_id = session.user_id;
    cache
        .expect_tombstone()
        .withf(move |user, ids, until| {
            *user == user_id && ids == expected.as_slice() && *until == NOW + WINDOW
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let summary = SessionSummary::from(&session);
    cache
        .expect_put()
        .withf(move |cached, now| *cached == summary && *now == NOW)
        .times(1)
        .returning(|_, _| Ok(()));
    let memory = memory();
    let result = repository_with(cache, store, Arc::clone(&memory))
        .create_within_limit(&session, limit, &check(), NOW)
        .await
        .unwrap();
    assert_eq!(result, evicted);
    assert_eq!(
        memory.recall(evicted[0]),
        Some(Remembered {
            reason: Some(InvalidationReason::MaxSessionsExceeded),
            revoked_at: NOW
        })
    );
    assert_eq!(memory.recall(session.id), None);
}

#[tokio::test]
async fn a_sign_in_whose_evictions_cannot_be_tombstoned_still_succeeds() {
    let session = session();
    let evicted = vec![SessionId::from_random_bytes([9; 16])];
    let mut store = MockSessionRepository::new();
    let victims = evicted.clone();
    store
        .expect_create_within_limit()
        .returning(move |_, _, _, _| Ok(victims.clone()));
    let mut cache = MockSessionCache::new();
    cache
        .expect_tombstone()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));
    cache
        .expect_put()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    let memory = memory();
    let limit = SessionLimit {
        max_sessions: 1,
        on_limit: LimitAction::EvictOldest,
    };
    let result = repository_with(cache, store, Arc::clone(&memory))
        .create_within_limit(&session, limit, &check(), NOW)
        .await
        .unwrap();
    assert_eq!(result, evicted);
    assert!(memory.recall(evicted[0]).is_some());
}

#[tokio::test]
async fn a_sign_in_without_evictions_tombstones_nothing() {
    let session = session();
    let mut store = MockSessionRepository::new();
    store
        .expect_create_within_limit()
        .returning(|_, _, _, _| Ok(vec![]));
    let mut cache = MockSessionCache::new();
    cache.expect_tombstone().times(0);
    cache.expect_put().times(1).returning(|_, _| Ok(()));
    let memory = memory();
    let limit = SessionLimit {
        max_sessions: 5,
        on_limit: LimitAction::EvictOldest,
    };
    repository_with(cache, store, Arc::clone(&memory))
        .create_within_limit(&session, limit, &check(), NOW)
        .await
        .unwrap();
    assert!(memory.is_empty());
}

#[tokio::test]
async fn a_refused_sign_in_writes_nothing_to_the_cache() {
    let session = session();
    let mut store = MockSessionRepository::new();
    store
        .expect_create_within_limit()
        .returning(|_, _, _, _| Err(CreateSessionError::PasswordChanged));
    let mut cache = MockSessionCache::new();
    cache.expect_tombstone().times(0);
    cache.expect_put().times(0);
    let limit = SessionLimit {
        max_sessions: 5,
        on_limit: LimitAction::EvictOldest,
    };
    let result = repository(cache, store)
        .create_within_limit(&session, limit, &check(), NOW)
        .await;
    assert!(matches!(result, Err(CreateSessionError::PasswordChanged)));
}

#[tokio::test]
async fn ending_all_remembers_and_tombstones_every_ended_session() {
    let user_id = UserId::from_random_bytes([4; 16]);
    let ended = vec![
        SessionId::from_random_bytes([5; 16]),
        SessionId::from_random_bytes([6; 16]),
    ];
    let mut store = MockSessionRepository::new();
    let returned = ended.clone();
    store
        .expect_end_all_for_user()
        .with(
            eq(user_id),
            eq(None),
            eq(InvalidationReason::PasswordChanged),
            eq(EndedBy::Owner),
            eq(NOW),
        )
        .times(1)
        .returning(move |_, _, _, _, _| Ok(returned.clone()));
    let mut cache = MockSessionCache::new();
    let expected = ended.clone();
    cache
        .expect_tombstone()
        .withf(move |user, ids, until| {
            *user == user_id && ids == expected.as_slice() && *until == NOW + WINDOW
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let memory = memory();
    let result = repository_with(cache, store, Arc::clone(&memory))
        .end_all_for_user(
            user_id,
            None,
            InvalidationReason::PasswordChanged,
            EndedBy::Owner,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(result, ended);
    for id in ended {
        assert_eq!(
            memory.recall(id),
            Some(Remembered {
                reason: Some(InvalidationReason::PasswordChanged),
                revoked_at: NOW
            })
        );
    }
}

#[tokio::test]
async fn ending_all_succeeds_when_the_tombstones_cannot_be_written() {
    let user_id = UserId::from_random_bytes([4; 16]);
    let ended = vec![SessionId::from_random_bytes([5; 16])];
    let mut store = MockSessionRepository::new();
    let returned = ended.clone();
    store
        .expect_end_all_for_user()
        .returning(move |_, _, _, _, _| Ok(returned.clone()));
    let mut cache = MockSessionCache::new();
    cache
        .expect_tombstone()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));
    let memory = memory();
    let result = repository_with(cache, store, Arc::clone(&memory))
        .end_all_for_user(
            user_id,
            None,
            InvalidationReason::AccountDisabled,
            EndedBy::Owner,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(result, ended);
    assert!(memory.recall(ended[0]).is_some());
}

#[tokio::test]
async fn ending_all_of_a_user_with_no_live_session_tombstones_nothing() {
    let user_id = UserId::from_random_bytes([4; 16]);
    let mut store = MockSessionRepository::new();
    store
        .expect_end_all_for_user()
        .returning(|_, _, _, _, _| Ok(vec![]));
    let mut cache = MockSessionCache::new();
    cache.expect_tombstone().times(0);
    let result = repository(cache, store)
        .end_all_for_user(
            user_id,
            None,
            InvalidationReason::UserLogoutAll,
            EndedBy::Owner,
            NOW,
        )
        .await
        .unwrap();
    assert!(result.is_empty());
}

#[tokio::test]
async fn retired_refresh_tokens_are_looked_up_in_the_repository() {
    let session = session();
    let hash = RefreshToken::new(session.id, [7; 32]).hash();
    let mut store = MockSessionRepository::new();
    let retired_at = NOW - Duration::hours(2);
    store
        .expect_find_retired_refresh_token()
        .withf(move |id, presented| *id == session.id && *presented == hash)
        .times(1)
        .returning(move |_, _| Ok(Some(retired_at)));
    let found = repository(MockSessionCache::new(), store)
        .find_retired_refresh_token(session.id, hash)
        .await
        .unwrap();
    assert_eq!(found, Some(retired_at));
}

mod near_cache_and_trust {
    use super::*;
    use crate::ports::NearCache;
    use crate::trust::CacheTrust;

    /// A plain map as the near cache (the adapter's own behaviour is tested with it).
    #[derive(Default)]
    struct MapNearCache(
        std::sync::Mutex<std::collections::HashMap<SessionId, Arc<SessionSummary>>>,
    );

    impl NearCache for MapNearCache {
        fn get(&self, id: SessionId) -> Option<Arc<SessionSummary>> {
            self.0.lock().unwrap().get(&id).cloned()
        }
        fn insert(&self, session: Arc<SessionSummary>) {
            self.0.lock().unwrap().insert(session.id, session);
        }
        fn remove(&self, id: SessionId) {
            self.0.lock().unwrap().remove(&id);
        }
        fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    const BOUND: Duration = Duration::milliseconds(200);

    struct Fixture {
        near: Arc<NearSessions>,
        trust: Arc<CacheTrust>,
        memory: Arc<RevocationMemory>,
    }

    /// A feed that read the log at NOW.
    fn fixture() -> Fixture {
        let memory = memory();
        let trust = Arc::new(CacheTrust::new(BOUND));
        trust.read_succeeded(NOW);
        let near = Arc::new(NearSessions::new(
            Arc::new(MapNearCache::default()),
            Arc::clone(&memory),
            Some(Arc::clone(&trust)),
        ));
        Fixture {
            near,
            trust,
            memory,
        }
    }

    fn repository(
        f: &Fixture,
        cache: MockSessionCache,
        store: MockSessionRepository,
    ) -> CachedSessionRepository {
        CachedSessionRepository::new(Arc::new(cache), Arc::new(store), Arc::clone(&f.memory))
            .with_near_cache(Arc::clone(&f.near))
            .with_trust(Arc::clone(&f.trust))
    }

    #[tokio::test]
    async fn a_redis_hit_fills_the_near_cache_and_the_next_read_costs_no_call() {
        let f = fixture();
        let session = session();
        let mut cache = MockSessionCache::new();
        let hit = SessionSummary::from(&session);
        cache
            .expect_get()
            .times(1)
            .returning(move |_, _| Ok(Some(hit.clone())));
        let mut store = MockSessionRepository::new();
        store.expect_find_summary().times(0);
        let repository = repository(&f, cache, store);
        for _ in 0..3 {
            let found = repository
                .find_summary(session.user_id, session.id, NOW)
                .await
                .unwrap();
            assert_eq!(found, Some(SessionSummary::from(&session)));
        }
    }

    #[tokio::test]
    async fn a_repository_read_fills_both_caches() {
        let f = fixture();
        let session = session();
        let mut cache = MockSessionCache::new();
        cache.expect_get().times(1).returning(|_, _| Ok(None));
        cache.expect_put().times(1).returning(|_, _| Ok(()));
        let mut store = MockSessionRepository::new();
        let stored = SessionSummary::from(&session);
        store
            .expect_find_summary()
            .times(1)
            .returning(move |_, _, _| Ok(Some(stored.clone())));
        let repository = repository(&f, cache, store);
        repository
            .find_summary(session.user_id, session.id, NOW)
            .await
            .unwrap();
        assert!(f.near.live(session.user_id, session.id, NOW).is_some());
    }

    #[tokio::test]
    async fn ending_here_drops_the_near_entry_at_once() {
        let f = fixture();
        let session = session();
        f.near.fill(Arc::new(SessionSummary::from(&session)), NOW);
        let mut cache = MockSessionCache::new();
        cache.expect_tombstone().returning(|_, _, _| Ok(()));
        let mut store = MockSessionRepository::new();
        let mut ended = session.clone();
        ended.status = SessionStatus::Ended {
            at: NOW,
            reason: InvalidationReason::UserLogout,
        };
        store
            .expect_end()
            .returning(move |_, _, _, _| Ok(Some(ended.clone())));
        let repository = repository(&f, cache, store);
        repository
            .end(
                session.id,
                InvalidationReason::UserLogout,
                EndedBy::Owner,
                NOW,
            )
            .await
            .unwrap();
        assert!(f.near.is_empty());
    }

    #[tokio::test]
    async fn an_expired_looking_near_entry_is_read_again_from_the_stores() {
        let f = fixture();
        let mut session = session();
        f.near.fill(Arc::new(SessionSummary::from(&session)), NOW);
        // Refreshed on another instance: Redis has the slid expiry.
        session.expires_at = NOW + Duration::hours(3);
        session.version = 2;
        let refreshed = SessionSummary::from(&session);
        let mut cache = MockSessionCache::new();
        let hit = refreshed.clone();
        cache
            .expect_get()
            .times(1)
            .returning(move |_, _| Ok(Some(hit.clone())));
        let repository = repository(&f, cache, MockSessionRepository::new());
        // The trust is checked at the read's own time: keep the feed current.
        let later = NOW + Duration::hours(1);
        f.trust.read_succeeded(later);
        let found = repository
            .find_summary(session.user_id, session.id, later)
            .await
            .unwrap();
        assert_eq!(found, Some(refreshed));
    }

    #[tokio::test]
    async fn a_feed_behind_the_bound_reads_the_repository_alone() {
        let f = fixture();
        let session = session();
        f.near.fill(Arc::new(SessionSummary::from(&session)), NOW);
        let mut cache = MockSessionCache::new();
        cache.expect_get().times(0);
        cache.expect_put().times(0);
        let mut store = MockSessionRepository::new();
        let mut ended = session.clone();
        ended.status = SessionStatus::Ended {
            at: NOW,
            reason: InvalidationReason::AdminRevoked,
        };
        let stored = SessionSummary::from(&ended);
        store
            .expect_find_summary()
            .times(1)
            .returning(move |_, _, _| Ok(Some(stored.clone())));
        let repository = repository(&f, cache, store);
        let late = NOW + BOUND + Duration::milliseconds(1);
        let found = repository
            .find_summary(session.user_id, session.id, late)
            .await
            .unwrap();
        assert!(matches!(found.unwrap().status, SessionStatus::Ended { .. }));
    }

    #[tokio::test]
    async fn a_feed_behind_with_an_unreachable_repository_fails_closed() {
        let f = fixture();
        let session = session();
        f.near.fill(Arc::new(SessionSummary::from(&session)), NOW);
        f.trust.read_failed();
        let mut cache = MockSessionCache::new();
        cache.expect_get().times(0);
        let mut store = MockSessionRepository::new();
        store.expect_find_summary().times(0);
        let repository = repository(&f, cache, store);
        let late = NOW + BOUND + Duration::milliseconds(1);
        let error = repository
            .find_summary(session.user_id, session.id, late)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)));
    }

    #[tokio::test]
    async fn vouched_caches_keep_answering_while_the_repository_is_unreachable() {
        let f = fixture();
        let session = session();
        f.near.fill(Arc::new(SessionSummary::from(&session)), NOW);
        f.trust.read_failed();
        let late = NOW + BOUND + Duration::milliseconds(1);
        f.trust.vouch_until(late + BOUND / 2);
        let mut store = MockSessionRepository::new();
        store.expect_find_summary().times(0);
        let repository = repository(&f, cache_still_holding(&session), store);
        let found = repository
            .find_summary(session.user_id, session.id, late)
            .await
            .unwrap();
        assert_eq!(found, Some(SessionSummary::from(&session)));
    }

    /// The heartbeats vouch for what the instances have read; when every feed is slow,
    /// a revocation can be committed that none has read. Its instance wrote a tombstone
    /// before answering: a vouched instance asks Redis, never its near cache alone.
    #[tokio::test]
    async fn a_vouched_instance_asks_redis_so_a_tombstone_refuses_what_its_near_cache_holds() {
        let f = fixture();
        let session = session();
        f.near.fill(Arc::new(SessionSummary::from(&session)), NOW);
        f.trust.read_started(NOW + Duration::milliseconds(1));
        let late = NOW + BOUND + Duration::milliseconds(1);
        f.trust.vouch_until(late + BOUND / 2);
        let mut cache = MockSessionCache::new();
        // The revoking instance's tombstone: the entry reads as a miss.
        cache.expect_get().times(1).returning(|_, _| Ok(None));
        let mut store = MockSessionRepository::new();
        store.expect_find_summary().times(0);
        let repository = repository(&f, cache, store);
        let refused = repository
            .find_summary(session.user_id, session.id, late)
            .await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
        assert_eq!(f.trust.mode(late), ValidationMode::Vouched);
    }

    #[tokio::test]
    async fn a_vouched_miss_is_unavailable_at_once_instead_of_waiting_on_the_repository() {
        let f = fixture();
        let session = session();
        f.trust.read_failed();
        let late = NOW + BOUND + Duration::milliseconds(1);
        f.trust.vouch_until(late + BOUND / 2);
        let mut cache = MockSessionCache::new();
        cache.expect_get().times(1).returning(|_, _| Ok(None));
        let mut store = MockSessionRepository::new();
        store.expect_find_summary().times(0);
        let repository = repository(&f, cache, store);
        let error = repository
            .find_summary(session.user_id, session.id, late)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)));
    }

    #[tokio::test]
    async fn a_redis_hit_for_a_remembered_revocation_never_reaches_the_near_cache() {
        let f = fixture();
        let session = session();
        f.memory.remember(&Revocation {
            session_id: session.id,
            user_id: session.user_id,
            reason: Some(InvalidationReason::AdminRevoked),
            revoked_at: NOW,
        });
        let repository = repository(
            &f,
            cache_still_holding(&session),
            MockSessionRepository::new(),
        );
        let found = repository
            .find_summary(session.user_id, session.id, NOW)
            .await
            .unwrap();
        assert!(matches!(found.unwrap().status, SessionStatus::Ended { .. }));
        assert!(f.near.is_empty());
    }
}
