//! The Redis session cache against real Redis servers.
//!
//! Tests that only read and write use the shared server at `TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), each under its own key prefix `test:<uuid>:`, and delete what
//! they wrote. Tests that count commands, measure memory, pause or kill Redis start their
//! own `redis-server` ([`RedisServer`]).

// Test helpers: a failed expectation here is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration as StdDuration, Instant};

use deadpool_redis::redis::{self, aio::MultiplexedConnection};
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    DeviceClass, DeviceInfo, InvalidationReason, Role, RolePolicies, SessionId, SessionStatus,
    SessionSummary, UserId,
};
use sessiond_domain::ports::SessionCache;
use sessiond_redis::{RedisSessionCache, RedisSettings};
use sessiond_tests::redis_server::RedisServer;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const TIMEOUT: StdDuration = StdDuration::from_millis(250);

fn shared_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

// Redis counts TTLs on its own clock: these tests need the real time, not a fixed one.
#[allow(clippy::disallowed_methods)]
fn now() -> OffsetDateTime {
    // Microsecond precision, as the encoding keeps.
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

/// A cache on `url` under `prefix`.
async fn cache_on(url: &str, prefix: &str) -> RedisSessionCache {
    RedisSessionCache::connect(RedisSettings {
        url: url.into(),
        key_prefix: prefix.into(),
        command_timeout: TIMEOUT,
    })
    .await
    .unwrap()
}

/// A cache on the shared Redis under a fresh prefix, and the prefix.
async fn shared_cache() -> (RedisSessionCache, String) {
    let prefix = format!("test:{}:", Uuid::new_v4());
    (cache_on(&shared_url(), &prefix).await, prefix)
}

async fn admin(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A typical session: Android, Chrome, named "Pixel", IPv4.
fn summary(user_id: UserId, role: Role, now: OffsetDateTime) -> SessionSummary {
    SessionSummary {
        id: SessionId::from_uuid(Uuid::new_v4()),
        user_id,
        role,
        device: DeviceInfo {
            class: DeviceClass::Android,
            browser: Some("Chrome".into()),
        },
        device_name: Some("Pixel".into()),
        ip_address: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
        created_at: now - Duration::minutes(5),
        last_activity: now,
        expires_at: now + Duration::hours(8),
        status: SessionStatus::Active,
    }
}

fn new_user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

fn session_key(prefix: &str, s: &SessionSummary) -> String {
    format!("{prefix}session:{{{}}}:{}", s.user_id, s.id)
}

fn index_key(prefix: &str, user_id: UserId) -> String {
    format!("{prefix}sessions:{{{user_id}}}")
}

async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

async fn exists(conn: &mut MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(conn)
        .await
        .unwrap()
        == 1
}

async fn index_members(conn: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap()
}

/// `cmdstat_<name>` → calls, from `INFO commandstats`.
async fn command_calls(conn: &mut MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn put_then_get_round_trips_every_field() {
    let (cache, _prefix) = shared_cache().await;
    let now = now();
    let user = new_user();
    let full = summary(user, Role::VendorAdmin, now);
    let mut sparse = summary(user, Role::Guest, now);
    sparse.device = DeviceInfo::unknown();
    sparse.device_name = None;
    sparse.ip_address = None;
    let mut v6 = summary(user, Role::SystemAdmin, now);
    v6.ip_address = Some("2001:db8::42".parse().unwrap());
    v6.device.class = DeviceClass::IPad;
    v6.device_name = Some("Küche — iPad".into());
    let all = [full, sparse, v6];
    for session in &all {
        cache.put(session, now).await.unwrap();
    }
    for session in &all {
        assert_eq!(
            cache.get(user, session.id).await.unwrap().as_ref(),
            Some(session)
        );
    }
    // Only live sessions are cached: putting an ended one drops the cached copy.
    let mut ended = all[0].clone();
    ended.status = SessionStatus::Ended {
        at: now,
        reason: InvalidationReason::PasswordChanged,
    };
    cache.put(&ended, now).await.unwrap();
    assert_eq!(cache.get(user, ended.id).await.unwrap(), None);
    let ids: Vec<SessionId> = all.iter().map(|s| s.id).collect();
    cache.remove(user, &ids).await.unwrap();
}

#[tokio::test]
async fn get_of_an_unknown_session_is_a_miss() {
    let (cache, _prefix) = shared_cache().await;
    let before = cache.stats();
    let missing = SessionId::from_uuid(Uuid::new_v4());
    assert_eq!(cache.get(new_user(), missing).await.unwrap(), None);
    assert_eq!(cache.stats().misses, before.misses + 1);
}

#[tokio::test]
async fn touch_moves_last_activity_forward_and_keeps_the_ttl() {
    let (cache, prefix) = shared_cache().await;
    let mut conn = admin(&shared_url()).await;
    let now = now();
    let session = summary(new_user(), Role::Guest, now);
    let key = session_key(&prefix, &session);
    cache.put(&session, now).await.unwrap();
    let ttl_before = pttl(&mut conn, &key).await;

    let later = now + Duration::seconds(42) + Duration::microseconds(7);
    cache
        .touch(session.user_id, session.id, later)
        .await
        .unwrap();
    let touched = cache
        .get(session.user_id, session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.last_activity, later);
    assert_eq!(
        touched,
        SessionSummary {
            last_activity: later,
            ..session.clone()
        }
    );
    let ttl_after = pttl(&mut conn, &key).await;
    assert!(
        ttl_after <= ttl_before && ttl_after > ttl_before - 1_000,
        "TTL {ttl_before} ms became {ttl_after} ms"
    );

    // Never backwards.
    cache.touch(session.user_id, session.id, now).await.unwrap();
    let kept = cache.get(session.user_id, session.id).await.unwrap();
    assert_eq!(kept.unwrap().last_activity, later);

    // A missing key stays missing.
    let missing = SessionId::from_uuid(Uuid::new_v4());
    cache.touch(session.user_id, missing, later).await.unwrap();
    let missing_key = format!("{prefix}session:{{{}}}:{missing}", session.user_id);
    assert!(!exists(&mut conn, &missing_key).await);

    cache.remove(session.user_id, &[session.id]).await.unwrap();
}

#[tokio::test]
async fn remove_deletes_the_keys_and_their_index_members() {
    let (cache, prefix) = shared_cache().await;
    let mut conn = admin(&shared_url()).await;
    let now = now();
    let user = new_user();
    let first = summary(user, Role::Guest, now);
    let mut second = summary(user, Role::Guest, now);
    second.expires_at = now + Duration::hours(20);
    cache.put(&first, now).await.unwrap();
    cache.put(&second, now).await.unwrap();
    let index = index_key(&prefix, user);
    let mut members = index_members(&mut conn, &index).await;
    members.sort();
    let mut expected = vec![first.id.to_string(), second.id.to_string()];
    expected.sort();
    assert_eq!(members, expected);
    // The index lives as long as its latest member.
    let index_ttl = pttl(&mut conn, &index).await;
    assert!((index_ttl - 20 * 3_600_000).abs() <= 1_000, "{index_ttl}");

    cache.remove(user, &[first.id]).await.unwrap();
    assert!(!exists(&mut conn, &session_key(&prefix, &first)).await);
    assert_eq!(cache.get(user, first.id).await.unwrap(), None);
    assert_eq!(
        index_members(&mut conn, &index).await,
        vec![second.id.to_string()]
    );
    assert!(cache.get(user, second.id).await.unwrap().is_some());

    cache.remove(user, &[second.id]).await.unwrap();
    assert!(!exists(&mut conn, &index).await, "an empty index is gone");
}

#[tokio::test]
async fn the_ttl_is_the_time_until_expiry_for_every_role() {
    let (cache, prefix) = shared_cache().await;
    let mut conn = admin(&shared_url()).await;
    let policies = RolePolicies::default();
    let expected = [
        (Role::Guest, 86_400),
        (Role::HotelEmployee, 28_800),
        (Role::VendorAdmin, 43_200),
        (Role::SystemAdmin, 14_400),
    ];
    let user = new_user();
    let mut ids = Vec::new();
    for (role, seconds) in expected {
        let timeout = policies.get(role).timeout;
        assert_eq!(timeout, Duration::seconds(seconds));
        let now = now();
        let mut session = summary(user, role, now);
        session.expires_at = now + timeout;
        cache.put(&session, now).await.unwrap();
        let ttl = pttl(&mut conn, &session_key(&prefix, &session)).await;
        assert!(
            (ttl - seconds * 1_000).abs() <= 1_000,
            "{role}: TTL {ttl} ms, expected {seconds} s"
        );
        ids.push(session.id);
    }
    cache.remove(user, &ids).await.unwrap();
}

#[tokio::test]
async fn an_expired_entry_is_gone() {
    let (cache, prefix) = shared_cache().await;
    let mut conn = admin(&shared_url()).await;
    let now = now();
    let user = new_user();
    let mut short = summary(user, Role::Guest, now);
    short.expires_at = now + Duration::milliseconds(300);
    cache.put(&short, now).await.unwrap();
    assert!(cache.get(user, short.id).await.unwrap().is_some());
    tokio::time::sleep(StdDuration::from_millis(450)).await;
    assert_eq!(cache.get(user, short.id).await.unwrap(), None);

    // Putting a copy that has already expired replaces (drops) the cached one.
    let mut session = summary(user, Role::Guest, now);
    cache.put(&session, now).await.unwrap();
    session.expires_at = now - Duration::seconds(1);
    cache.put(&session, now).await.unwrap();
    assert_eq!(cache.get(user, session.id).await.unwrap(), None);
    assert!(!exists(&mut conn, &index_key(&prefix, user)).await);
}

#[tokio::test]
async fn prune_drops_index_members_whose_key_is_gone() {
    let (cache, prefix) = shared_cache().await;
    let mut conn = admin(&shared_url()).await;
    let now = now();
    let user = new_user();
    let kept = summary(user, Role::Guest, now);
    let lost = summary(user, Role::Guest, now);
    cache.put(&kept, now).await.unwrap();
    cache.put(&lost, now).await.unwrap();
    // As if evicted: the key goes, its member stays.
    let _: i64 = redis::cmd("DEL")
        .arg(session_key(&prefix, &lost))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(cache.prune_user_index(user, now).await.unwrap(), 1);
    let index = index_key(&prefix, user);
    assert_eq!(
        index_members(&mut conn, &index).await,
        vec![kept.id.to_string()]
    );
    // Past its expiry, the remaining member goes too.
    let after = kept.expires_at + Duration::seconds(1);
    assert_eq!(cache.prune_user_index(user, after).await.unwrap(), 1);
    assert_eq!(cache.prune_user_index(user, after).await.unwrap(), 0);
    cache.remove(user, &[kept.id]).await.unwrap();
}

#[tokio::test]
async fn a_typical_session_key_uses_at_most_256_bytes() {
    // A private server and the production layout (no prefix): the shared server's test
    // prefix would inflate the key.
    let server = RedisServer::start();
    let cache = cache_on(&server.url(), "").await;
    let mut conn = admin(&server.url()).await;
    let now = now();
    let session = summary(new_user(), Role::Guest, now);
    cache.put(&session, now).await.unwrap();
    let bytes: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(session_key("", &session))
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    let value: Vec<u8> = redis::cmd("GET")
        .arg(session_key("", &session))
        .query_async(&mut conn)
        .await
        .unwrap();
    println!(
        "MEMORY USAGE of one session key: {bytes} bytes (value {} bytes)",
        value.len()
    );
    assert!(bytes <= 256, "MEMORY USAGE {bytes} > 256");
}

#[tokio::test]
async fn each_get_puts_exactly_one_command_on_the_wire() {
    let server = RedisServer::start();
    let cache = cache_on(&server.url(), "").await;
    let mut conn = admin(&server.url()).await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::Guest, now);
    cache.put(&session, now).await.unwrap();
    // Warm up: the connection is open after this.
    assert!(cache.get(user, session.id).await.unwrap().is_some());

    const N: u64 = 50;
    let before = command_calls(&mut conn).await;
    for _ in 0..N {
        assert!(cache.get(user, session.id).await.unwrap().is_some());
    }
    let missing = SessionId::from_uuid(Uuid::new_v4());
    for _ in 0..N {
        assert!(cache.get(user, missing).await.unwrap().is_none());
    }
    let after = command_calls(&mut conn).await;

    let mut delta: BTreeMap<String, u64> = after
        .iter()
        .map(|(name, calls)| (name.clone(), calls - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, calls)| *calls > 0)
        .collect();
    // The first INFO itself, sent by this test.
    delta.remove("info");
    println!("commands sent by {} gets: {delta:?}", 2 * N);
    assert_eq!(delta, BTreeMap::from([("get".to_owned(), 2 * N)]));
    assert_eq!(cache.stats().connections_opened, 1);
}

/// Each thread that sends commands gets a connection of its own, once: an actix worker
/// drives its connection on its own runtime, so no reply crosses threads.
#[tokio::test]
async fn each_thread_keeps_one_connection_of_its_own() {
    let server = RedisServer::start();
    let cache = cache_on(&server.url(), "").await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::Guest, now);
    cache.put(&session, now).await.unwrap();
    // connect() opened this thread's connection.
    assert_eq!(cache.stats().connections_opened, 1);

    let workers: Vec<_> = (0..2)
        .map(|_| {
            let cache = cache.clone();
            let id = session.id;
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    for _ in 0..20 {
                        assert!(cache.get(user, id).await.unwrap().is_some());
                    }
                });
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(cache.stats().connections_opened, 3);

    // This thread still uses the connection it opened first.
    assert!(cache.get(user, session.id).await.unwrap().is_some());
    assert_eq!(cache.stats().connections_opened, 3);
}

#[tokio::test]
async fn start_up_with_redis_down_is_degraded_mode() {
    let mut server = RedisServer::start();
    server.kill();
    let cache = cache_on(&server.url(), "").await;
    let user = new_user();
    let started = Instant::now();
    let error = cache
        .get(user, SessionId::from_uuid(Uuid::new_v4()))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(started.elapsed() < StdDuration::from_secs(1));
    assert!(cache.stats().outage);

    server.restart();
    let session = summary(user, Role::Guest, now());
    eventually(|| async { cache.put(&session, now()).await.is_ok() }).await;
    assert!(cache.get(user, session.id).await.unwrap().is_some());
    assert!(!cache.stats().outage);
}

/// Retries `check` for up to 5 s.
async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + StdDuration::from_secs(5);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("the condition did not hold within 5 s");
}

#[tokio::test]
async fn a_killed_redis_fails_fast_and_a_restart_brings_the_cache_back() {
    let mut server = RedisServer::start();
    let cache = cache_on(&server.url(), "").await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::Guest, now);
    cache.put(&session, now).await.unwrap();
    assert!(cache.get(user, session.id).await.unwrap().is_some());

    server.kill();
    for _ in 0..20 {
        let started = Instant::now();
        let got = cache.get(user, session.id).await;
        assert!(
            matches!(got, Err(StoreError::Unavailable(_))),
            "get while down: {got:?}"
        );
        let put = cache.put(&session, now).await;
        assert!(
            matches!(put, Err(StoreError::Unavailable(_))),
            "put while down: {put:?}"
        );
        assert!(
            started.elapsed() < StdDuration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
    assert!(cache.stats().outage);

    // A removal while Redis is down succeeds, and this instance then refuses cached reads.
    let removed = summary(user, Role::Guest, now);
    cache.remove(user, &[removed.id]).await.unwrap();
    assert_eq!(cache.stats().pending_removals, 1);

    server.restart();
    // The same cache object reconnects (the restarted server is empty: --save "").
    eventually(|| async { matches!(cache.get(user, session.id).await, Ok(None)) }).await;
    assert_eq!(cache.stats().pending_removals, 0);
    cache.put(&session, now).await.unwrap();
    assert_eq!(
        cache.get(user, session.id).await.unwrap().as_ref(),
        Some(&session)
    );
    assert!(!cache.stats().outage);
    assert!(cache.stats().connections_opened >= 2);
}

/// A paused Redis keeps its data: a removal that cannot reach it leaves a stale key behind,
/// the one situation where the pending-removal queue matters (a killed server with
/// `--save ""` comes back empty).
#[tokio::test]
async fn a_removal_during_a_pause_is_delivered_later_and_reads_wait_for_it() {
    let server = RedisServer::start();
    let cache = cache_on(&server.url(), "").await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::Guest, now);
    let other = summary(user, Role::Guest, now);
    cache.put(&session, now).await.unwrap();
    cache.put(&other, now).await.unwrap();

    let pause = StdDuration::from_millis(1_500);
    let mut pauser = admin(&server.url()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis() as u64)
        .arg("ALL")
        .query_async(&mut pauser)
        .await
        .unwrap();
    let paused_at = Instant::now();

    let started = Instant::now();
    cache.remove(user, &[session.id]).await.unwrap();
    assert!(
        started.elapsed() < StdDuration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cache.stats().pending_removals, 1);

    // Until the removal is delivered, this instance answers no read from Redis at all, not
    // even for sessions that were not removed.
    let mut refused = 0;
    loop {
        match cache.get(user, session.id).await {
            Err(StoreError::Unavailable(_)) => refused += 1,
            Ok(None) => break,
            other => panic!("a removed session must never be read back: {other:?}"),
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
        assert!(
            paused_at.elapsed() < pause + StdDuration::from_secs(5),
            "the removal was not delivered"
        );
    }
    assert!(refused > 0);
    assert!(paused_at.elapsed() >= pause);
    assert_eq!(cache.stats().pending_removals, 0);

    let mut conn = admin(&server.url()).await;
    assert!(!exists(&mut conn, &session_key("", &session)).await);
    assert_eq!(
        index_members(&mut conn, &index_key("", user)).await,
        vec![other.id.to_string()]
    );
    assert_eq!(
        cache.get(user, other.id).await.unwrap().as_ref(),
        Some(&other)
    );
}
