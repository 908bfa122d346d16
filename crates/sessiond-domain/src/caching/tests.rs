use mockall::predicate::eq;
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::model::{DeviceInfo, LimitAction, RefreshState, RefreshToken, Role};
use crate::ports::{MockSessionCache, MockSessionRepository};

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn session() -> Session {
    let id = SessionId::from_random_bytes([3; 16]);
    Session {
        id,
        user_id: UserId::from_random_bytes([4; 16]),
        role: Role::Guest,
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
    }
}

fn repository(cache: MockSessionCache, store: MockSessionRepository) -> CachedSessionRepository {
    CachedSessionRepository::new(Arc::new(cache), Arc::new(store))
}

#[tokio::test]
async fn a_cache_hit_never_reaches_the_repository() {
    let session = session();
    let summary = SessionSummary::from(&session);
    let mut cache = MockSessionCache::new();
    let hit = summary.clone();
    cache
        .expect_get()
        .with(eq(session.user_id), eq(session.id))
        .returning(move |_, _| Ok(Some(hit.clone())));
    let mut store = MockSessionRepository::new();
    store.expect_find_summary().times(0);
    store.expect_find().times(0);
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id)
        .await
        .unwrap();
    assert_eq!(found, Some(summary));
}

#[tokio::test]
async fn a_miss_reads_the_repository_and_refills_the_cache() {
    let session = session();
    let summary = SessionSummary::from(&session);
    let mut cache = MockSessionCache::new();
    cache.expect_get().returning(|_, _| Ok(None));
    let expected = summary.clone();
    cache
        .expect_put()
        .withf(move |cached, _| *cached == expected)
        .times(1)
        .returning(|_, _| Ok(()));
    let mut store = MockSessionRepository::new();
    let stored = summary.clone();
    store
        .expect_find_summary()
        .times(1)
        .returning(move |_, _| Ok(Some(stored.clone())));
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id)
        .await
        .unwrap();
    assert_eq!(found, Some(summary));
}

#[tokio::test]
async fn ended_sessions_are_never_cached() {
    let mut session = session();
    session.status = SessionStatus::Ended {
        at: NOW,
        reason: InvalidationReason::AdminRevoked,
    };
    let mut cache = MockSessionCache::new();
    cache.expect_get().returning(|_, _| Ok(None));
    cache.expect_put().times(0);
    let mut store = MockSessionRepository::new();
    let stored = SessionSummary::from(&session);
    store
        .expect_find_summary()
        .returning(move |_, _| Ok(Some(stored.clone())));
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id)
        .await
        .unwrap();
    assert!(matches!(found.unwrap().status, SessionStatus::Ended { .. }));
}

#[tokio::test]
async fn a_broken_cache_falls_back_to_the_repository() {
    let session = session();
    let mut cache = MockSessionCache::new();
    cache
        .expect_get()
        .returning(|_, _| Err(StoreError::Unavailable("redis down".into())));
    cache.expect_put().times(0);
    let mut store = MockSessionRepository::new();
    let stored = SessionSummary::from(&session);
    store
        .expect_find_summary()
        .times(1)
        .returning(move |_, _| Ok(Some(stored.clone())));
    let found = repository(cache, store)
        .find_summary(session.user_id, session.id)
        .await
        .unwrap();
    assert!(found.is_some());
}

#[tokio::test]
async fn ending_removes_from_the_cache_after_the_repository_and_fails_if_it_cannot() {
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
        .returning(move |_, _, _| Ok(Some(ended.clone())));
    let mut cache = MockSessionCache::new();
    let (user_id, id) = (session.user_id, session.id);
    cache
        .expect_remove()
        .withf(move |user, ids| *user == user_id && ids == [id])
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("redis down".into())));
    let result = repository(cache, store)
        .end(id, InvalidationReason::UserLogout, NOW)
        .await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn retrying_an_end_whose_removal_failed_removes_again() {
    let session = session();
    let mut store = MockSessionRepository::new();
    store.expect_end().returning(|_, _, _| Ok(None));
    let stored = session.clone();
    store
        .expect_find()
        .returning(move |_| Ok(Some(stored.clone())));
    let mut cache = MockSessionCache::new();
    cache.expect_remove().times(1).returning(|_, _| Ok(()));
    let result = repository(cache, store)
        .end(session.id, InvalidationReason::UserLogout, NOW)
        .await
        .unwrap();
    assert_eq!(result, None);
}

#[tokio::test]
async fn sign_in_removes_the_evicted_and_caches_the_new_session() {
    let session = session();
    let evicted = vec![SessionId::from_random_bytes([9; 16])];
    let mut store = MockSessionRepository::new();
    let victims = evicted.clone();
    store
        .expect_create_within_limit()
        .returning(move |_, _, _| Ok(victims.clone()));
    let mut cache = MockSessionCache::new();
    let expected = evicted.clone();
    cache
        .expect_remove()
        .withf(move |_, ids| ids == expected.as_slice())
        .times(1)
        .returning(|_, _| Ok(()));
    cache.expect_put().times(1).returning(|_, _| Ok(()));
    let limit = SessionLimit {
        max_sessions: 1,
        on_limit: LimitAction::EvictOldest,
    };
    let result = repository(cache, store)
        .create_within_limit(&session, limit, NOW)
        .await
        .unwrap();
    assert_eq!(result, evicted);
}

#[tokio::test]
async fn ending_all_removes_every_ended_session_from_the_cache() {
    let user_id = UserId::from_random_bytes([4; 16]);
    let ended = vec![
        SessionId::from_random_bytes([5; 16]),
        SessionId::from_random_bytes([6; 16]),
    ];
    let mut store = MockSessionRepository::new();
    let returned = ended.clone();
    store
        .expect_end_all_for_user()
        .returning(move |_, _, _, _| Ok(returned.clone()));
    let mut cache = MockSessionCache::new();
    let expected = ended.clone();
    cache
        .expect_remove()
        .withf(move |user, ids| *user == user_id && ids == expected.as_slice())
        .times(1)
        .returning(|_, _| Ok(()));
    let result = repository(cache, store)
        .end_all_for_user(user_id, None, InvalidationReason::PasswordChanged, NOW)
        .await
        .unwrap();
    assert_eq!(result, ended);
}
