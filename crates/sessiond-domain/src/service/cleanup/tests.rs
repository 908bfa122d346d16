use mockall::predicate::eq;
use time::Duration;

use super::*;
use crate::ports::{CleanupOutcome, MockSessionCache, MockSessionCleanup};
use crate::service::fixtures::{Mocks, NOW};

#[tokio::test]
async fn a_pass_expires_purges_and_prunes_the_cache_per_user() {
    let alice = UserId::from_random_bytes([1; 16]);
    let bob = UserId::from_random_bytes([2; 16]);
    let sessions: Vec<SessionId> = (10..13)
        .map(|b| SessionId::from_random_bytes([b; 16]))
        .collect();
    let expired = vec![
        (alice, sessions[0]),
        (bob, sessions[1]),
        (alice, sessions[2]),
    ];
    let mut cleanup = MockSessionCleanup::new();
    cleanup
        .expect_run_pass()
        .with(
            eq(NOW),
            eq(NOW - Duration::days(30)),
            // Revocations are forgotten once no instance must remember them any more.
            eq(NOW - Duration::seconds(900 + 5 + 60)),
            eq(CLEANUP_BATCH_SIZE),
        )
        .times(1)
        .returning(move |_, _, _, _| {
            Ok(Some(CleanupOutcome {
                expired: expired.clone(),
                purged: 4,
            }))
        });
    // Each user's index is pruned once, however many of their sessions expired; the
    // expired sessions are not tombstoned (expiry refuses them everywhere already).
    let mut cache = MockSessionCache::new();
    cache
        .expect_prune_index()
        .with(eq(alice), eq(NOW))
        .times(1)
        .returning(|_, _| Ok(2));
    cache
        .expect_prune_index()
        .with(eq(bob), eq(NOW))
        .times(1)
        .returning(|_, _| Err(crate::StoreError::Unavailable("redis down".into())));
    cache.expect_tombstone().times(0);
    // Expiry is announced like every other end: once per user, by the system.
    let mut mocks = Mocks::new();
    mocks.events = crate::ports::MockSessionEvents::new();
    let alices = vec![sessions[0], sessions[2]];
    mocks
        .events
        .expect_ended()
        .withf(move |user, ids, reason, by| {
            *user == alice
                && ids == alices.as_slice()
                && *reason == InvalidationReason::Expired
                && *by == EndedBy::System
        })
        .times(1)
        .return_const(());
    let bobs = vec![sessions[1]];
    mocks
        .events
        .expect_ended()
        .withf(move |user, ids, _, _| *user == bob && ids == bobs.as_slice())
        .times(1)
        .return_const(());
    let service = CleanupService::new(
        mocks.into_ports(),
        Arc::new(SessionPolicy::default()),
        Arc::new(cleanup),
        Some(Arc::new(cache)),
    );
    let report = service.run_once().await.unwrap();
    assert_eq!(
        report,
        CleanupReport {
            skipped: false,
            expired: 3,
            purged: 4
        }
    );
}

#[tokio::test]
async fn a_pass_held_elsewhere_is_reported_as_skipped() {
    let mut cleanup = MockSessionCleanup::new();
    cleanup.expect_run_pass().returning(|_, _, _, _| Ok(None));
    let service = CleanupService::new(
        Mocks::new().into_ports(),
        Arc::new(SessionPolicy::default()),
        Arc::new(cleanup),
        None,
    );
    assert!(service.run_once().await.unwrap().skipped);
}
