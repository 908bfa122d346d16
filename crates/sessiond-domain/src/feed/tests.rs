use std::sync::atomic::{AtomicI64, Ordering};

use mockall::Sequence;
use mockall::predicate::eq;
use time::macros::datetime;

use super::*;
use crate::model::{InvalidationReason, Remembered, Revocation};
use crate::ports::{
    MockClock, MockHeartbeats, MockNearCache, MockRevocationLog, MockSessionCache, RevocationBatch,
};
use crate::trust::ValidationMode;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// How long the tests' memory keeps a revocation.
const WINDOW: time::Duration = time::Duration::seconds(965);

fn user(n: u8) -> UserId {
    UserId::from_random_bytes([n; 16])
}

fn session(n: u8) -> SessionId {
    SessionId::from_random_bytes([n; 16])
}

fn revocation(user_id: UserId, session_id: SessionId, revoked_at: OffsetDateTime) -> Revocation {
    Revocation {
        session_id,
        user_id,
        reason: Some(InvalidationReason::AdminRevoked),
        revoked_at,
    }
}

fn batch(revocations: Vec<Revocation>, next: u64) -> RevocationBatch {
    let newest = (!revocations.is_empty()).then_some(LogPosition(next.saturating_sub(1)));
    RevocationBatch {
        revocations,
        next: LogPosition(next),
        newest,
    }
}

fn clock_at(now: OffsetDateTime) -> Arc<dyn Clock> {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(now);
    Arc::new(clock)
}

fn memory() -> Arc<RevocationMemory> {
    Arc::new(RevocationMemory::new(WINDOW))
}

fn feed(
    log: MockRevocationLog,
    memory: &Arc<RevocationMemory>,
    cache: Option<MockSessionCache>,
) -> RevocationFeed {
    RevocationFeed::new(
        Arc::new(log),
        Arc::clone(memory),
        cache.map(|cache| Arc::new(cache) as Arc<dyn SessionCache>),
        clock_at(NOW),
    )
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("database down".into())
}

#[tokio::test]
async fn the_first_read_is_of_the_whole_log_and_later_ones_go_on_from_where_it_stopped() {
    let mut log = MockRevocationLog::new();
    let mut order = Sequence::new();
    log.expect_read()
        .with(eq(None))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(batch(vec![], 5)));
    log.expect_read()
        .with(eq(Some(LogPosition(5))))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(batch(vec![], 9)));
    log.expect_read()
        .with(eq(Some(LogPosition(9))))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(batch(vec![], 9)));
    let memory = memory();
    let feed = feed(log, &memory, None);
    for _ in 0..3 {
        assert_eq!(feed.catch_up().await.unwrap(), 0);
    }
}

#[tokio::test]
async fn new_revocations_are_remembered_and_tombstoned_once_per_user() {
    let (alice, bob) = (user(1), user(2));
    let early = NOW - time::Duration::minutes(5);
    let late = NOW - time::Duration::minutes(1);
    let revocations = vec![
        revocation(alice, session(10), early),
        revocation(bob, session(11), early),
        Revocation {
            // Deleted with its user: remembered without a reason.
            reason: None,
            ..revocation(alice, session(12), late)
        },
    ];
    let mut log = MockRevocationLog::new();
    log.expect_read()
        .times(1)
        .returning(move |_| Ok(batch(revocations.clone(), 3)));
    let mut cache = MockSessionCache::new();
    // One write per user, until the latest of its revocations is forgotten everywhere.
    cache
        .expect_tombstone()
        .withf(move |user, ids, until| {
            *user == alice && ids == [session(10), session(12)] && *until == late + WINDOW
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    cache
        .expect_tombstone()
        .withf(move |user, ids, until| {
            *user == bob && ids == [session(11)] && *until == early + WINDOW
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let memory = memory();
    let feed = feed(log, &memory, Some(cache));
    assert_eq!(feed.catch_up().await.unwrap(), 3);
    assert_eq!(
        memory.recall(session(10)),
        Some(Remembered {
            reason: Some(InvalidationReason::AdminRevoked),
            revoked_at: early
        })
    );
    assert!(memory.recall(session(11)).is_some());
    assert_eq!(
        memory.recall(session(12)),
        Some(Remembered {
            reason: None,
            revoked_at: late
        })
    );
    assert_eq!(feed.status().applied, 3);
}

#[tokio::test]
async fn revocations_already_known_here_are_not_tombstoned_again() {
    let alice = user(1);
    let at = NOW - time::Duration::seconds(10);
    let memory = memory();
    // Ended on this instance: remembered (and tombstoned) by the repository already.
    memory.remember(&revocation(alice, session(10), at));
    let first = vec![
        revocation(alice, session(10), at),
        revocation(alice, session(11), at),
    ];
    // The log may repeat what an earlier read returned.
    let again = vec![revocation(alice, session(11), at)];
    let mut log = MockRevocationLog::new();
    let mut order = Sequence::new();
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_| Ok(batch(first.clone(), 2)));
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_| Ok(batch(again.clone(), 2)));
    let mut cache = MockSessionCache::new();
    cache
        .expect_tombstone()
        .withf(move |user, ids, _| *user == alice && ids == [session(11)])
        .times(1)
        .returning(|_, _, _| Ok(()));
    let feed = feed(log, &memory, Some(cache));
    assert_eq!(feed.catch_up().await.unwrap(), 1);
    assert_eq!(feed.catch_up().await.unwrap(), 0);
    assert_eq!(feed.status().applied, 1);
    assert_eq!(memory.len(), 2);
}

#[tokio::test]
async fn revocations_older_than_the_window_are_ignored() {
    let alice = user(1);
    let horizon = NOW - WINDOW;
    let stale = vec![
        revocation(alice, session(10), horizon - time::Duration::seconds(1)),
        revocation(alice, session(11), horizon - time::Duration::hours(3)),
    ];
    let mut log = MockRevocationLog::new();
    log.expect_read()
        .returning(move |_| Ok(batch(stale.clone(), 2)));
    let mut cache = MockSessionCache::new();
    cache.expect_tombstone().times(0);
    let memory = memory();
    let feed = feed(log, &memory, Some(cache));
    assert_eq!(feed.catch_up().await.unwrap(), 0);
    assert!(memory.is_empty());
    assert_eq!(feed.status().applied, 0);
    // The read itself succeeded: the feed is caught up.
    assert_eq!(feed.status().caught_up_to, Some(NOW));
}

#[tokio::test]
async fn a_revocation_just_inside_the_window_is_applied() {
    let alice = user(1);
    let edge = vec![revocation(alice, session(10), NOW - WINDOW)];
    let mut log = MockRevocationLog::new();
    log.expect_read()
        .returning(move |_| Ok(batch(edge.clone(), 1)));
    let memory = memory();
    let feed = feed(log, &memory, None);
    assert_eq!(feed.catch_up().await.unwrap(), 1);
    assert!(memory.recall(session(10)).is_some());
}

#[tokio::test]
async fn a_failed_read_changes_nothing_and_the_next_read_starts_from_the_same_place() {
    let alice = user(1);
    let at = NOW - time::Duration::seconds(10);
    let later = vec![revocation(alice, session(11), at)];
    let mut log = MockRevocationLog::new();
    let mut order = Sequence::new();
    log.expect_read()
        .with(eq(None))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(batch(vec![], 4)));
    log.expect_read()
        .with(eq(Some(LogPosition(4))))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(unavailable()));
    log.expect_read()
        .with(eq(Some(LogPosition(4))))
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_| Ok(batch(later.clone(), 6)));
    log.expect_read()
        .with(eq(Some(LogPosition(6))))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(batch(vec![], 6)));
    let mut cache = MockSessionCache::new();
    cache
        .expect_tombstone()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let memory = memory();
    let feed = feed(log, &memory, Some(cache));

    feed.catch_up().await.unwrap();
    let before = feed.status();
    let error = feed.catch_up().await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)));
    assert_eq!(
        feed.status(),
        FeedStatus {
            failed_reads: 1,
            ..before
        }
    );
    assert!(memory.is_empty());

    assert_eq!(feed.catch_up().await.unwrap(), 1);
    feed.catch_up().await.unwrap();
    let status = feed.status();
    assert_eq!(status.failed_reads, 1);
    assert_eq!(status.applied, 1);
}

#[tokio::test]
async fn a_feed_that_never_read_the_log_is_not_caught_up() {
    let mut log = MockRevocationLog::new();
    log.expect_read().returning(|_| Err(unavailable()));
    let memory = memory();
    let feed = feed(log, &memory, None);
    assert_eq!(feed.status(), FeedStatus::default());
    assert!(feed.catch_up().await.is_err());
    assert_eq!(
        feed.status(),
        FeedStatus {
            caught_up_to: None,
            applied: 0,
            failed_reads: 1
        }
    );
}

#[tokio::test]
async fn caught_up_to_is_the_time_taken_before_the_read() {
    // The clock moves on while the log is read: a revocation committed during the read
    // may be missing from it, so only the instant before the read is vouched for.
    let seconds = Arc::new(AtomicI64::new(0));
    let mut clock = MockClock::new();
    let elapsed = Arc::clone(&seconds);
    clock
        .expect_now()
        .returning(move || NOW + time::Duration::seconds(elapsed.load(Ordering::SeqCst)));
    let mut log = MockRevocationLog::new();
    let during = Arc::clone(&seconds);
    log.expect_read().returning(move |_| {
        during.fetch_add(7, Ordering::SeqCst);
        Ok(batch(vec![], 1))
    });
    let memory = memory();
    let feed = RevocationFeed::new(Arc::new(log), Arc::clone(&memory), None, Arc::new(clock));
    feed.catch_up().await.unwrap();
    assert_eq!(feed.status().caught_up_to, Some(NOW));
    feed.catch_up().await.unwrap();
    assert_eq!(
        feed.status().caught_up_to,
        Some(NOW + time::Duration::seconds(7))
    );
}

#[tokio::test]
async fn a_failed_tombstone_does_not_fail_the_read() {
    let alice = user(1);
    let revocations = vec![revocation(alice, session(10), NOW)];
    let mut log = MockRevocationLog::new();
    log.expect_read()
        .returning(move |_| Ok(batch(revocations.clone(), 1)));
    let mut cache = MockSessionCache::new();
    cache
        .expect_tombstone()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable("redis down".into())));
    let memory = memory();
    let feed = feed(log, &memory, Some(cache));
    assert_eq!(feed.catch_up().await.unwrap(), 1);
    assert!(memory.recall(session(10)).is_some());
    assert_eq!(feed.status().caught_up_to, Some(NOW));
}

#[tokio::test]
async fn without_a_cache_revocations_are_still_remembered() {
    let alice = user(1);
    let revocations = vec![revocation(alice, session(10), NOW)];
    let mut log = MockRevocationLog::new();
    log.expect_read()
        .returning(move |_| Ok(batch(revocations.clone(), 1)));
    let memory = memory();
    let feed = feed(log, &memory, None);
    assert_eq!(feed.catch_up().await.unwrap(), 1);
    assert!(memory.recall(session(10)).is_some());
}

#[tokio::test]
async fn revocations_past_their_window_are_forgotten_as_the_feed_moves_on() {
    let alice = user(1);
    let memory = memory();
    memory.remember(&revocation(
        alice,
        session(10),
        NOW - WINDOW - time::Duration::seconds(1),
    ));
    memory.remember(&revocation(alice, session(11), NOW));
    let mut log = MockRevocationLog::new();
    log.expect_read().returning(|_| Ok(batch(vec![], 1)));
    let feed = feed(log, &memory, None);
    feed.catch_up().await.unwrap();
    assert_eq!(memory.recall(session(10)), None);
    assert!(memory.recall(session(11)).is_some());
}

#[tokio::test]
async fn a_revocation_is_dropped_from_the_near_cache_after_it_is_remembered() {
    let revocations = vec![revocation(user(1), session(20), NOW)];
    let mut log = MockRevocationLog::new();
    log.expect_read()
        .returning(move |_| Ok(batch(revocations.clone(), 4)));
    let memory = memory();
    let mut near = MockNearCache::new();
    let remembered_first = Arc::clone(&memory);
    near.expect_remove()
        .with(eq(session(20)))
        .times(1)
        .returning(move |id| assert!(remembered_first.recall(id).is_some()));
    let feed = feed(log, &memory, None).with_near_cache(Arc::new(near));
    assert_eq!(feed.catch_up().await.unwrap(), 1);
    // Heard again: already dropped, nothing more to do.
    assert_eq!(feed.catch_up().await.unwrap(), 0);
}

const BOUND: time::Duration = time::Duration::milliseconds(200);
const INSTANCE: Uuid = Uuid::from_u128(7);

/// A clock at NOW + the milliseconds in the returned counter.
fn moving_clock() -> (Arc<dyn Clock>, Arc<AtomicI64>) {
    let millis = Arc::new(AtomicI64::new(0));
    let elapsed = Arc::clone(&millis);
    let mut clock = MockClock::new();
    clock
        .expect_now()
        .returning(move || NOW + time::Duration::milliseconds(elapsed.load(Ordering::SeqCst)));
    (Arc::new(clock), millis)
}

fn trusted_feed(
    log: MockRevocationLog,
    trust: &Arc<CacheTrust>,
    clock: Arc<dyn Clock>,
) -> RevocationFeed {
    RevocationFeed::new(Arc::new(log), memory(), None, clock)
        .with_trust(Arc::clone(trust), INSTANCE)
}

#[tokio::test]
async fn reads_tell_the_trust_how_far_the_feed_is() {
    let mut log = MockRevocationLog::new();
    let mut order = Sequence::new();
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(batch(vec![], 5)));
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(unavailable()));
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = trusted_feed(log, &trust, clock_at(NOW));
    feed.catch_up().await.unwrap();
    assert_eq!(trust.caught_up_to(), Some(NOW));
    assert_eq!(trust.mode(NOW + BOUND), ValidationMode::Cached);
    feed.catch_up().await.unwrap_err();
    assert_eq!(trust.mode(NOW + BOUND * 2), ValidationMode::Closed);
}

fn heartbeat(n: u128, position: u64, newest: Option<u64>) -> Heartbeat {
    Heartbeat {
        instance: Uuid::from_u128(n),
        position: LogPosition(position),
        newest: newest.map(LogPosition),
    }
}

/// How long after its last successful read the feed exchanges heartbeats.
const LATER: i64 = 300;

/// A feed that read up to position 10 at NOW (the newest entry it read being at 8), whose
/// log fails after that, and whose clock then stands at NOW + `LATER` ms: its caches are
/// trusted only as the heartbeats vouch.
async fn cut_off_feed(trust: &Arc<CacheTrust>) -> RevocationFeed {
    let mut log = MockRevocationLog::new();
    let mut order = Sequence::new();
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| {
            Ok(RevocationBatch {
                revocations: vec![],
                next: LogPosition(10),
                newest: Some(LogPosition(8)),
            })
        });
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(unavailable()));
    let (clock, millis) = moving_clock();
    let feed = trusted_feed(log, trust, clock);
    feed.catch_up().await.unwrap();
    millis.store(LATER, Ordering::SeqCst);
    feed.catch_up().await.unwrap_err();
    feed
}

fn at(millis: i64) -> OffsetDateTime {
    NOW + time::Duration::milliseconds(millis)
}

/// A heartbeat read back `age_ms` after it was published.
fn published(heartbeat: Heartbeat, age_ms: u64) -> PublishedHeartbeat {
    PublishedHeartbeat {
        heartbeat,
        age: Duration::from_millis(age_ms),
        left: false,
    }
}

/// Heartbeats that show `others`, each just published, beside ours.
fn exchanging(others: Vec<Heartbeat>) -> MockHeartbeats {
    exchanging_published(others.into_iter().map(|h| published(h, 0)).collect())
}

fn exchanging_published(others: Vec<PublishedHeartbeat>) -> MockHeartbeats {
    let mut heartbeats = MockHeartbeats::new();
    heartbeats
        .expect_exchange()
        .withf(|own, _| *own == heartbeat(7, 10, Some(8)))
        .returning(move |own, _| Ok([vec![published(*own, 0)], others.clone()].concat()));
    heartbeats
}

#[tokio::test]
async fn heartbeats_that_show_nothing_beyond_our_position_vouch_for_half_the_bound() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = cut_off_feed(&trust).await;
    assert_eq!(trust.mode(at(LATER)), ValidationMode::Closed);
    let others = vec![heartbeat(1, 12, Some(9)), heartbeat(2, 3, None)];
    feed.beat(&exchanging(others), Duration::from_secs(5)).await;
    // Vouched from the exchange's start for half the bound.
    assert_eq!(trust.mode(at(LATER + 100)), ValidationMode::Vouched);
    assert_eq!(trust.mode(at(LATER + 101)), ValidationMode::Closed);
}

#[tokio::test]
async fn a_heartbeat_that_read_an_entry_at_or_beyond_our_position_withdraws_the_vouch() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = cut_off_feed(&trust).await;
    feed.beat(&exchanging(vec![]), Duration::from_secs(5)).await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Vouched);
    // Another instance read an entry at position 10: it may be one we lack.
    feed.beat(
        &exchanging(vec![heartbeat(1, 11, Some(10))]),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Closed);
}

#[tokio::test]
async fn heartbeats_that_cannot_be_exchanged_withdraw_the_vouch() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = cut_off_feed(&trust).await;
    feed.beat(&exchanging(vec![]), Duration::from_secs(5)).await;
    let mut failing = MockHeartbeats::new();
    failing
        .expect_exchange()
        .returning(|_, _| Err(unavailable()));
    feed.beat(&failing, Duration::from_secs(5)).await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Closed);
}

#[tokio::test]
async fn a_feed_that_never_read_the_log_is_never_vouched_for() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let mut log = MockRevocationLog::new();
    log.expect_read().returning(|_| Err(unavailable()));
    let feed = trusted_feed(log, &trust, clock_at(NOW));
    feed.catch_up().await.unwrap_err();
    let mut heartbeats = MockHeartbeats::new();
    heartbeats
        .expect_exchange()
        .returning(|own, _| Ok(vec![published(*own, 0)]));
    feed.beat(&heartbeats, Duration::from_secs(5)).await;
    assert_eq!(trust.mode(NOW), ValidationMode::Closed);
}

#[tokio::test]
async fn a_heartbeat_older_than_half_the_bound_withdraws_the_vouch() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = cut_off_feed(&trust).await;
    let late = published(heartbeat(1, 9, Some(8)), 101);
    feed.beat(&exchanging_published(vec![late]), Duration::from_secs(5))
        .await;
    // It may be cut off from Redis and revoking through PostgreSQL.
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Closed);
    // Beating again: nothing it read is beyond ours, and it is heard.
    let back = published(heartbeat(1, 9, Some(8)), 100);
    feed.beat(&exchanging_published(vec![back]), Duration::from_secs(5))
        .await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Vouched);
}

#[tokio::test]
async fn an_instance_whose_heartbeat_is_gone_withdraws_the_vouch_until_the_log_is_read_past_it() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let mut log = MockRevocationLog::new();
    let mut order = Sequence::new();
    let batch = || {
        Ok(RevocationBatch {
            revocations: vec![],
            next: LogPosition(10),
            newest: Some(LogPosition(8)),
        })
    };
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_| batch());
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(unavailable()));
    log.expect_read()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_| batch());
    let (clock, millis) = moving_clock();
    let feed = trusted_feed(log, &trust, clock);
    feed.catch_up().await.unwrap();
    millis.store(LATER, Ordering::SeqCst);
    feed.catch_up().await.unwrap_err();

    let peer = heartbeat(1, 9, Some(8));
    feed.beat(&exchanging(vec![peer]), Duration::from_secs(5))
        .await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Vouched);
    // Its entry expired: it stopped publishing, and it may still be revoking.
    feed.beat(&exchanging(vec![]), Duration::from_secs(5)).await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Closed);
    feed.beat(&exchanging(vec![]), Duration::from_secs(5)).await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Closed);
    // A read that began after it fell silent holds what it committed before.
    millis.store(LATER + 10, Ordering::SeqCst);
    feed.catch_up().await.unwrap();
    assert!(trust.mode(at(LATER + 60)).trusts_near_cache());
    millis.store(LATER + 250, Ordering::SeqCst);
    trust.read_failed();
    feed.beat(&exchanging(vec![]), Duration::from_secs(5)).await;
    assert_eq!(trust.mode(at(LATER + 300)), ValidationMode::Vouched);
}

#[tokio::test]
async fn an_instance_that_left_does_not_withdraw_the_vouch() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = cut_off_feed(&trust).await;
    let peer = heartbeat(1, 9, Some(8));
    feed.beat(&exchanging(vec![peer]), Duration::from_secs(5))
        .await;
    let gone = PublishedHeartbeat {
        left: true,
        ..published(peer, 3_000)
    };
    feed.beat(&exchanging_published(vec![gone]), Duration::from_secs(5))
        .await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Vouched);
    // And once its final heartbeat expires, it is not missed either.
    feed.beat(&exchanging(vec![]), Duration::from_secs(5)).await;
    assert_eq!(trust.mode(at(LATER + 50)), ValidationMode::Vouched);
}

#[tokio::test]
async fn leaving_publishes_the_final_heartbeat() {
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = cut_off_feed(&trust).await;
    let mut heartbeats = MockHeartbeats::new();
    heartbeats
        .expect_leave()
        .withf(|last, _| *last == heartbeat(7, 10, Some(8)))
        .times(1)
        .returning(|_, _| Ok(()));
    feed.leave(&heartbeats, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_revocation_named_by_news_leaves_the_caches_before_the_log_is_read() {
    // No read at all: the news alone drops the session.
    let log = MockRevocationLog::new();
    let memory = memory();
    let mut near = MockNearCache::new();
    near.expect_remove()
        .with(eq(session(20)))
        .times(1)
        .return_const(());
    let trust = Arc::new(CacheTrust::new(BOUND));
    let feed = feed(log, &memory, None)
        .with_near_cache(Arc::new(near))
        .with_trust(Arc::clone(&trust), INSTANCE);
    feed.hear(&[revocation(user(1), session(20), NOW)]).await;
    assert!(memory.recall(session(20)).is_some());
    assert_eq!(feed.status().applied, 1);
    // News never shows that nothing else happened: only a read moves the trust.
    assert_eq!(trust.caught_up_to(), None);
    feed.hear(&[revocation(user(1), session(20), NOW)]).await;
    assert_eq!(feed.status().applied, 1);
}
