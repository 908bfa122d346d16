//! The Redis session cache against real Redis servers.
//!
//! The cache's contract (what it stores, for how long, what a write may overwrite) runs
//! twice, on one server and on a Redis Cluster (`single::…` and `cluster::…`): on the shared
//! server at `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), and on the shared test
//! cluster ([`shared_cluster_urls`]), each test under its own key prefix `test:<uuid>:`.
//! On the shared server a test deletes what it wrote; the test cluster goes with the run.
//! Tests that count commands, measure memory, pause, kill Redis or hold its commands back
//! start their own `redis-server` ([`RedisServer`]); the cluster's faults are in
//! `redis_cluster.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration as StdDuration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    DeviceClass, DeviceInfo, InvalidationReason, Role, RolePolicies, SessionId, SessionStatus,
    SessionSummary, UserId,
};
use sessiond_domain::ports::SessionCache;
use sessiond_redis::{RedisClusterSettings, RedisConnection, RedisSessionCache, RedisSettings};
use sessiond_tests::redis_cluster::shared_cluster_urls;
use sessiond_tests::redis_server::RedisServer;
use sessiond_tests::tcp_proxy::TcpProxy;
use time::{Duration, OffsetDateTime};
use tokio::task::JoinHandle;
use uuid::Uuid;

const TIMEOUT: StdDuration = StdDuration::from_millis(250);

fn shared_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// What Safari on an iPhone sends: a typical User-Agent's length.
const IPHONE_USER_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

#[expect(
    clippy::disallowed_methods,
    reason = "Redis counts TTLs on its own clock: these tests need the real time"
)]
fn now() -> OffsetDateTime {
    // Microsecond precision, as the encoding keeps.
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

/// The real time to the millisecond, for tests that compare expiry instants exactly.
fn now_ms() -> OffsetDateTime {
    let now = now();
    now.replace_millisecond(now.millisecond()).unwrap()
}

/// A cache on `url` under `prefix`.
async fn cache_on(url: &str, prefix: &str) -> RedisSessionCache {
    cache_with_timeout(url, prefix, TIMEOUT).await
}

async fn cache_with_timeout(url: &str, prefix: &str, timeout: StdDuration) -> RedisSessionCache {
    RedisSessionCache::connect(RedisSettings {
        url: url.into(),
        key_prefix: prefix.into(),
        command_timeout: timeout,
    })
    .await
    .unwrap()
}

/// Where the cache's contract runs.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The shared server.
    Single,
    /// The shared test cluster.
    Cluster,
}

impl Target {
    /// A cache under a fresh prefix, and the prefix.
    async fn cache(self) -> (RedisSessionCache, String) {
        let prefix = format!("test:{}:", Uuid::new_v4());
        let cache = match self {
            Target::Single => cache_on(&shared_url(), &prefix).await,
            Target::Cluster => RedisSessionCache::connect_cluster(RedisClusterSettings {
                seeds: shared_cluster_urls(),
                key_prefix: prefix.clone(),
                command_timeout: TIMEOUT,
            })
            .await
            .unwrap(),
        };
        (cache, prefix)
    }

    /// A connection to look at what the cache wrote (routed by key on the cluster).
    async fn admin(self) -> RedisConnection {
        match self {
            Target::Single => RedisConnection::Single(admin(&shared_url()).await),
            Target::Cluster => RedisConnection::Cluster(
                ClusterClient::new(shared_cluster_urls())
                    .unwrap()
                    .get_async_connection()
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Deletes what a test wrote under `prefix` on the shared server; the test cluster
    /// is the run's own and goes with it.
    async fn clean(self, prefix: &str) {
        if let Target::Single = self {
            clean(prefix).await;
        }
    }
}

/// For each named `async fn name(target: Target)`, a test on the shared server
/// (`single::name`) and one on the shared cluster (`cluster::name`).
macro_rules! on_both_targets {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Target::Single).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Target::Cluster).await;
                }
            )*
        }
    };
}

async fn admin(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes every key under `prefix` on the shared server (a test's own keys only).
async fn clean(prefix: &str) {
    let mut conn = admin(&shared_url()).await;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("UNLINK")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// A typical session: Android, Chrome, named "Pixel", IPv4, generation 1.
fn summary(user_id: UserId, role: Role, now: OffsetDateTime) -> SessionSummary {
    SessionSummary {
        id: SessionId::from_uuid(Uuid::new_v4()),
        user_id,
        role,
        hotel_id: None,
        device: DeviceInfo {
            class: DeviceClass::Android,
            browser: Some("Chrome".into()),
        },
        device_name: Some("Pixel".into()),
        ip_address: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
        user_agent: Some(IPHONE_USER_AGENT.into()),
        created_at: now - Duration::minutes(5),
        last_activity: now,
        expires_at: now + Duration::hours(8),
        status: SessionStatus::Active,
        version: 1,
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

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap()
}

async fn pttl(conn: &mut impl ConnectionLike, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

async fn pexpiretime(conn: &mut impl ConnectionLike, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

async fn raw(conn: &mut impl ConnectionLike, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query_async(conn).await.unwrap()
}

async fn exists(conn: &mut impl ConnectionLike, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(conn)
        .await
        .unwrap()
        == 1
}

async fn index_members(conn: &mut impl ConnectionLike, key: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap()
}

/// `cmdstat_<name>` → calls, from `INFO commandstats`.
async fn command_calls(conn: &mut impl ConnectionLike) -> BTreeMap<String, u64> {
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
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("the condition did not hold within 5 s");
}

async fn put_then_get_round_trips_every_field(target: Target) {
    let (cache, prefix) = target.cache().await;
    let now = now();
    let user = new_user();
    let full = summary(user, Role::VendorAdmin, now);
    let mut sparse = summary(user, Role::Guest, now);
    sparse.device = DeviceInfo::unknown();
    sparse.device_name = None;
    sparse.ip_address = None;
    sparse.version = u64::MAX;
    let mut v6 = summary(user, Role::SystemAdmin, now);
    v6.ip_address = Some("2001:db8::42".parse().unwrap());
    v6.device.class = DeviceClass::IPad;
    v6.device_name = Some("Küche — iPad".into());
    v6.version = 7;
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
    // Only live sessions are cached, and a put never deletes: putting an ended copy leaves
    // the cached one alone (ending is `tombstone`'s job).
    let mut ended = all[0].clone();
    ended.status = SessionStatus::Ended {
        at: now,
        reason: InvalidationReason::PasswordChanged,
    };
    ended.version = 2;
    cache.put(&ended, now).await.unwrap();
    assert_eq!(
        cache.get(user, ended.id).await.unwrap().as_ref(),
        Some(&all[0])
    );
    let other = summary(user, Role::Guest, now);
    let ended_elsewhere = SessionSummary {
        status: ended.status,
        ..other.clone()
    };
    cache.put(&ended_elsewhere, now).await.unwrap();
    assert_eq!(cache.get(user, other.id).await.unwrap(), None);
    target.clean(&prefix).await;
}

async fn get_of_an_unknown_session_is_a_miss(target: Target) {
    let (cache, _prefix) = target.cache().await;
    let before = cache.stats();
    let missing = SessionId::from_uuid(Uuid::new_v4());
    assert_eq!(cache.get(new_user(), missing).await.unwrap(), None);
    assert_eq!(cache.stats().misses, before.misses + 1);
}

async fn tombstone_replaces_the_keys_and_drops_their_index_members(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now_ms();
    let user = new_user();
    let first = summary(user, Role::Guest, now);
    let mut second = summary(user, Role::Guest, now);
    second.expires_at = now + Duration::hours(20);
    let mut third = summary(user, Role::Guest, now);
    third.expires_at = now + Duration::hours(10);
    for session in [&first, &second, &third] {
        cache.put(session, now).await.unwrap();
    }
    let index = index_key(&prefix, user);
    let mut members = index_members(&mut conn, &index).await;
    members.sort();
    let mut expected = vec![
        first.id.to_string(),
        second.id.to_string(),
        third.id.to_string(),
    ];
    expected.sort();
    assert_eq!(members, expected);
    // The index expires with its latest member.
    assert_eq!(
        pexpiretime(&mut conn, &index).await,
        unix_ms(second.expires_at)
    );

    // Nothing to do is not an error.
    cache.tombstone(user, &[], now).await.unwrap();

    let until = now + Duration::minutes(30) + Duration::microseconds(1);
    cache
        .tombstone(user, &[first.id, third.id], until)
        .await
        .unwrap();
    for ended in [&first, &third] {
        let key = session_key(&prefix, ended);
        assert_eq!(raw(&mut conn, &key).await, Some(vec![0]), "a tombstone");
        // Rounded up: the tombstone lasts at least until `until`.
        assert_eq!(pexpiretime(&mut conn, &key).await, unix_ms(until) + 1);
        assert_eq!(cache.get(user, ended.id).await.unwrap(), None);
    }
    assert_eq!(
        index_members(&mut conn, &index).await,
        vec![second.id.to_string()]
    );
    assert!(cache.get(user, second.id).await.unwrap().is_some());

    // A tombstone of a session that was not cached is written all the same.
    let never_cached = summary(user, Role::Guest, now);
    cache
        .tombstone(user, &[second.id, never_cached.id], until)
        .await
        .unwrap();
    assert_eq!(
        raw(&mut conn, &session_key(&prefix, &never_cached)).await,
        Some(vec![0])
    );
    assert!(!exists(&mut conn, &index).await, "an empty index is gone");
    target.clean(&prefix).await;
}

async fn a_tombstone_is_never_shortened(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now_ms();
    let user = new_user();
    let session = summary(user, Role::Guest, now);
    let key = session_key(&prefix, &session);
    cache.put(&session, now).await.unwrap();
    let long = now + Duration::hours(1);
    cache.tombstone(user, &[session.id], long).await.unwrap();
    cache
        .tombstone(user, &[session.id], now + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pexpiretime(&mut conn, &key).await, unix_ms(long));
    // ...but lengthened.
    let longer = now + Duration::hours(2);
    cache.tombstone(user, &[session.id], longer).await.unwrap();
    assert_eq!(pexpiretime(&mut conn, &key).await, unix_ms(longer));
    target.clean(&prefix).await;
}

async fn the_entry_expires_at_expires_at_for_every_role(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let policies = RolePolicies::default();
    let expected = [
        (Role::Guest, 86_400),
        (Role::HotelEmployee, 28_800),
        (Role::VendorAdmin, 43_200),
        (Role::SystemAdmin, 14_400),
    ];
    let user = new_user();
    for (role, seconds) in expected {
        let timeout = policies.get(role).timeout;
        assert_eq!(timeout, Duration::seconds(seconds));
        let now = now();
        let mut session = summary(user, role, now);
        session.expires_at = now + timeout + Duration::microseconds(999);
        cache.put(&session, now).await.unwrap();
        let key = session_key(&prefix, &session);
        // Absolute (PXAT), rounded down: never later than `expires_at`.
        assert_eq!(
            pexpiretime(&mut conn, &key).await,
            unix_ms(session.expires_at)
        );
        let ttl = pttl(&mut conn, &key).await;
        assert!(
            (ttl - seconds * 1_000).abs() <= 1_000,
            "{role}: TTL {ttl} ms, expected {seconds} s"
        );
    }
    target.clean(&prefix).await;
}

async fn an_expired_entry_is_gone(target: Target) {
    let (cache, prefix) = target.cache().await;
    let now = now();
    let user = new_user();
    let mut short = summary(user, Role::Guest, now);
    short.expires_at = now + Duration::milliseconds(300);
    cache.put(&short, now).await.unwrap();
    assert!(cache.get(user, short.id).await.unwrap().is_some());
    tokio::time::sleep(StdDuration::from_millis(450)).await;
    assert_eq!(cache.get(user, short.id).await.unwrap(), None);
    target.clean(&prefix).await;
}

async fn a_put_whose_expiry_has_passed_stores_nothing_and_deletes_nothing(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now();
    let user = new_user();
    let cached = summary(user, Role::Guest, now);
    cache.put(&cached, now).await.unwrap();

    // Expired on the caller's clock.
    let mut expired = cached.clone();
    expired.version = 2;
    expired.expires_at = now - Duration::seconds(1);
    cache.put(&expired, now).await.unwrap();
    // Live on the caller's clock (a `now` taken before a long delay) but expired on Redis's
    // by the time the write runs: still nothing.
    cache
        .put(&expired, now - Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!(
        cache.get(user, cached.id).await.unwrap().as_ref(),
        Some(&cached)
    );

    // A session never cached: no key, no index member.
    let mut late = summary(user, Role::Guest, now);
    late.expires_at = now - Duration::milliseconds(1);
    cache.put(&late, now - Duration::seconds(2)).await.unwrap();
    assert!(!exists(&mut conn, &session_key(&prefix, &late)).await);
    assert_eq!(
        index_members(&mut conn, &index_key(&prefix, user)).await,
        vec![cached.id.to_string()]
    );
    target.clean(&prefix).await;
}

async fn a_put_of_an_ended_session_stores_nothing_and_deletes_nothing(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now();
    let user = new_user();
    let cached = summary(user, Role::Guest, now);
    cache.put(&cached, now).await.unwrap();

    // The cache holds live sessions only (its port's contract); ending is `tombstone`'s job.
    let mut ended = cached.clone();
    ended.version = 2;
    ended.status = SessionStatus::Ended {
        at: now,
        reason: InvalidationReason::UserLogout,
    };
    cache.put(&ended, now).await.unwrap();
    assert_eq!(
        cache.get(user, cached.id).await.unwrap().as_ref(),
        Some(&cached)
    );

    let mut never_cached = summary(user, Role::Guest, now);
    never_cached.status = ended.status;
    cache.put(&never_cached, now).await.unwrap();
    assert!(!exists(&mut conn, &session_key(&prefix, &never_cached)).await);
    assert_eq!(
        index_members(&mut conn, &index_key(&prefix, user)).await,
        vec![cached.id.to_string()]
    );
    target.clean(&prefix).await;
}

async fn an_older_generation_never_replaces_a_newer_one(target: Target) {
    let (cache, prefix) = target.cache().await;
    let now = now();
    let user = new_user();
    let mut v1 = summary(user, Role::HotelEmployee, now);
    let mut v2 = v1.clone();
    v2.version = 2;
    v2.expires_at = now + Duration::hours(9);
    v2.last_activity = now + Duration::seconds(1);

    cache.put(&v2, now).await.unwrap();
    cache.put(&v1, now).await.unwrap();
    assert_eq!(cache.get(user, v1.id).await.unwrap().as_ref(), Some(&v2));

    // Equal replaces (same state, e.g. a fresher last_activity), greater replaces.
    let mut v2_again = v2.clone();
    v2_again.last_activity = now + Duration::seconds(5);
    cache.put(&v2_again, now).await.unwrap();
    assert_eq!(
        cache.get(user, v1.id).await.unwrap().as_ref(),
        Some(&v2_again)
    );
    // Across the 32-bit halves the script compares.
    let mut big = v2.clone();
    big.version = 1 << 32;
    cache.put(&big, now).await.unwrap();
    v1.version = u64::from(u32::MAX);
    cache.put(&v1, now).await.unwrap();
    assert_eq!(cache.get(user, v1.id).await.unwrap().as_ref(), Some(&big));
    target.clean(&prefix).await;
}

async fn a_put_after_a_tombstone_is_ignored_until_it_expires(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::Guest, now);
    cache.put(&session, now).await.unwrap();
    let until = now + Duration::milliseconds(400);
    cache.tombstone(user, &[session.id], until).await.unwrap();

    // Any generation, any number of times: the tombstone stays.
    for version in [1, 2, u64::MAX] {
        let refill = SessionSummary {
            version,
            ..session.clone()
        };
        cache.put(&refill, now).await.unwrap();
        assert_eq!(cache.get(user, session.id).await.unwrap(), None);
    }
    let key = session_key(&prefix, &session);
    assert_eq!(raw(&mut conn, &key).await, Some(vec![0]));
    assert!(
        index_members(&mut conn, &index_key(&prefix, user))
            .await
            .is_empty()
    );

    // Once `until` has passed, the tombstone is gone and a put lands again.
    let wait = until - now + Duration::milliseconds(50);
    tokio::time::sleep(wait.try_into().unwrap()).await;
    assert!(!exists(&mut conn, &key).await);
    let later = self::now();
    cache.put(&session, later).await.unwrap();
    assert_eq!(
        cache.get(user, session.id).await.unwrap().as_ref(),
        Some(&session)
    );
    assert_eq!(
        index_members(&mut conn, &index_key(&prefix, user)).await,
        vec![session.id.to_string()]
    );
    target.clean(&prefix).await;
}

/// What an instance of the previous release left behind (layout 1) is never served, and a
/// refill replaces it.
async fn a_value_of_the_previous_layout_is_not_served_and_is_replaced(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::Guest, now);
    let key = session_key(&prefix, &session);
    let mut old = vec![1u8];
    old.extend_from_slice(session.id.as_uuid().as_bytes());
    old.extend_from_slice(user.as_uuid().as_bytes());
    old.resize(61, 0);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(old)
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    let error = cache.get(user, session.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Internal(_)), "{error:?}");
    cache.put(&session, now).await.unwrap();
    assert_eq!(
        cache.get(user, session.id).await.unwrap().as_ref(),
        Some(&session)
    );
    target.clean(&prefix).await;
}

/// A rolling deploy from the release before the hotel id (layout 3): its values are a miss
/// here, but their generation is still compared, so a copy of ours that a slow refill holds
/// back never rolls back a newer copy the other release wrote; an older one is replaced.
async fn a_value_of_layout_3_keeps_a_newer_generation_and_loses_an_older_one(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now();
    let user = new_user();
    let session = SessionSummary {
        version: 3,
        ..summary(user, Role::Guest, now)
    };
    let key = session_key(&prefix, &session);
    // Layout 3's head: the layout byte, the generation, the ids; the rest does not matter.
    let layout_3 = |generation: u64| {
        let mut value = vec![3u8];
        value.extend_from_slice(&generation.to_be_bytes());
        value.extend_from_slice(session.id.as_uuid().as_bytes());
        value.extend_from_slice(user.as_uuid().as_bytes());
        value.resize(69, 0);
        value
    };
    for (cached, replaced) in [(4, false), (2, true)] {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(layout_3(cached))
            .arg("EX")
            .arg(60)
            .query_async(&mut conn)
            .await
            .unwrap();
        cache.put(&session, now).await.unwrap();
        let read = cache.get(user, session.id).await;
        if replaced {
            assert_eq!(
                read.unwrap().as_ref(),
                Some(&session),
                "generation {cached}"
            );
        } else {
            assert!(read.is_err(), "generation {cached}: the newer copy stays");
            assert_eq!(raw(&mut conn, &key).await, Some(layout_3(cached)));
        }
    }
    target.clean(&prefix).await;
}

async fn prune_drops_index_members_whose_key_is_gone(target: Target) {
    let (cache, prefix) = target.cache().await;
    let mut conn = target.admin().await;
    let now = now();
    let user = new_user();
    let kept = summary(user, Role::Guest, now);
    let lost = summary(user, Role::Guest, now);
    let ended = summary(user, Role::Guest, now);
    for session in [&kept, &lost, &ended] {
        cache.put(session, now).await.unwrap();
    }
    let index = index_key(&prefix, user);
    // As if evicted: the key goes, its member stays.
    let _: i64 = redis::cmd("DEL")
        .arg(session_key(&prefix, &lost))
        .query_async(&mut conn)
        .await
        .unwrap();
    // A tombstone whose member is somehow still indexed (tombstone drops it itself).
    let _: () = redis::cmd("SET")
        .arg(session_key(&prefix, &ended))
        .arg(vec![0u8])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(cache.prune_index(user, now).await.unwrap(), 2);
    assert_eq!(
        index_members(&mut conn, &index).await,
        vec![kept.id.to_string()]
    );
    // Past its expiry, the remaining member goes too.
    let after = kept.expires_at + Duration::seconds(1);
    assert_eq!(cache.prune_index(user, after).await.unwrap(), 1);
    assert_eq!(cache.prune_index(user, after).await.unwrap(), 0);
    target.clean(&prefix).await;
}

#[tokio::test]
async fn a_typical_session_key_uses_at_most_400_bytes() {
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
    let value = raw(&mut conn, &session_key("", &session)).await.unwrap();
    println!(
        "MEMORY USAGE of one session key: {bytes} bytes (value {} bytes)",
        value.len()
    );
    // 216 B before the User-Agent travelled with the summary (so that every route answers
    // it without a read of PostgreSQL); Safari's adds about 150 B.
    assert!(bytes <= 400, "MEMORY USAGE {bytes} > 400");
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

    // A tombstone that cannot reach Redis is an error for the caller, nothing more: it is
    // not queued, and cached reads are not suspended once Redis is back (the revocation
    // log, not this process, makes every instance refuse the session).
    let ended = summary(user, Role::Guest, now);
    let tombstone = cache
        .tombstone(user, &[ended.id], now + Duration::hours(1))
        .await;
    assert!(
        matches!(tombstone, Err(StoreError::Unavailable(_))),
        "tombstone while down: {tombstone:?}"
    );

    server.restart();
    // The same cache object reconnects (the restarted server is empty: --save "").
    eventually(|| async { cache.put(&session, now).await.is_ok() }).await;
    assert_eq!(
        cache.get(user, session.id).await.unwrap().as_ref(),
        Some(&session)
    );
    let mut conn = admin(&server.url()).await;
    assert!(!exists(&mut conn, &session_key("", &ended)).await);
    assert!(!cache.stats().outage);
    assert!(cache.stats().connections_opened >= 2);
}

/// Two caches on one private Redis: `slow` through a [`TcpProxy`] that can hold its
/// commands back (with `timeout`), `direct` straight to it, both warmed up (connections
/// open, scripts loaded) so that the held command is the put itself.
struct LateWrite {
    _server: RedisServer,
    proxy: TcpProxy,
    slow: RedisSessionCache,
    direct: RedisSessionCache,
    conn: MultiplexedConnection,
}

impl LateWrite {
    async fn start(timeout: StdDuration) -> Self {
        let server = RedisServer::start();
        let proxy = TcpProxy::start(([127, 0, 0, 1], server.port()).into()).await;
        let slow = cache_with_timeout(&format!("redis://{}", proxy.addr()), "", timeout).await;
        let direct = cache_on(&server.url(), "").await;
        let now = now();
        let warm = summary(new_user(), Role::Guest, now);
        slow.put(&warm, now).await.unwrap();
        direct
            .tombstone(warm.user_id, &[warm.id], now)
            .await
            .unwrap();
        let conn = admin(&server.url()).await;
        Self {
            _server: server,
            proxy,
            slow,
            direct,
            conn,
        }
    }

    /// Sends `session`'s put through the proxy and returns once the proxy holds it: the
    /// first chunk that names the session blackholes the link, that chunk included.
    async fn held_put(
        &self,
        session: &SessionSummary,
        now: OffsetDateTime,
    ) -> JoinHandle<Result<(), StoreError>> {
        self.proxy
            .hold_upstream_when_sent(session.id.to_string().as_bytes());
        let put = {
            let slow = self.slow.clone();
            let session = session.clone();
            tokio::spawn(async move { slow.put(&session, now).await })
        };
        assert!(
            self.proxy
                .wait_until_triggered(StdDuration::from_secs(5))
                .await,
            "the put never reached the proxy"
        );
        put
    }

    /// Lets everything held through, in order.
    fn release(&self) {
        self.proxy.restore();
    }
}

/// SPEC §3 invariant 2: a refill sent before a revocation and executed after it (a slow
/// link) must not bring the session back.
#[tokio::test]
async fn a_put_held_back_until_after_a_tombstone_does_not_bring_the_session_back() {
    let mut late = LateWrite::start(StdDuration::from_secs(30)).await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::HotelEmployee, now);

    let put = late.held_put(&session, now).await;
    // The revocation, through another connection, while the put is on its way.
    late.direct
        .tombstone(user, &[session.id], now + Duration::hours(1))
        .await
        .unwrap();
    assert!(!put.is_finished(), "the put must still be held");
    late.release();
    // The put's reply came back: it ran, after the tombstone.
    put.await.unwrap().unwrap();

    assert_eq!(late.direct.get(user, session.id).await.unwrap(), None);
    let key = session_key("", &session);
    assert_eq!(raw(&mut late.conn, &key).await, Some(vec![0]));
    assert!(
        index_members(&mut late.conn, &index_key("", user))
            .await
            .is_empty()
    );
}

/// The same with a put that timed out on the client: the caller got an error and moved on,
/// the command still executes when the link recovers.
#[tokio::test]
async fn a_timed_out_put_that_runs_after_a_tombstone_changes_nothing() {
    let mut late = LateWrite::start(StdDuration::from_millis(300)).await;
    let now = now();
    let user = new_user();
    let session = summary(user, Role::HotelEmployee, now);

    let put = late.held_put(&session, now).await;
    let timed_out = put.await.unwrap();
    assert!(
        matches!(timed_out, Err(StoreError::Unavailable(_))),
        "{timed_out:?}"
    );
    late.direct
        .tombstone(user, &[session.id], now + Duration::hours(1))
        .await
        .unwrap();
    let scripts_run = |calls: BTreeMap<String, u64>| calls.get("evalsha").copied().unwrap_or(0);
    let before = scripts_run(command_calls(&mut late.conn).await);
    late.release();
    // Redis counted one more script: the late command has run.
    let conn = late.conn.clone();
    eventually(|| {
        let mut conn = conn.clone();
        async move { scripts_run(command_calls(&mut conn).await) > before }
    })
    .await;

    assert_eq!(late.direct.get(user, session.id).await.unwrap(), None);
    let key = session_key("", &session);
    assert_eq!(raw(&mut late.conn, &key).await, Some(vec![0]));
}

/// A refill of generation 1 that lands after generation 2 was cached (a refresh on
/// another instance) must not roll the session back. Also shows that a held write does
/// land: the tests above would pass vacuously otherwise.
#[tokio::test]
async fn a_put_held_back_behind_a_newer_generation_does_not_roll_it_back() {
    let late = LateWrite::start(StdDuration::from_secs(30)).await;
    let now = now();
    let user = new_user();
    let v1 = summary(user, Role::Guest, now);
    let v2 = SessionSummary {
        version: 2,
        expires_at: now + Duration::hours(9),
        last_activity: now + Duration::seconds(1),
        ..v1.clone()
    };

    let put = late.held_put(&v1, now).await;
    late.direct.put(&v2, now).await.unwrap();
    late.release();
    put.await.unwrap().unwrap();
    assert_eq!(
        late.direct.get(user, v1.id).await.unwrap().as_ref(),
        Some(&v2)
    );

    // Control: with nothing newer cached, the held write lands.
    let other = summary(user, Role::Guest, now);
    let put = late.held_put(&other, now).await;
    late.release();
    put.await.unwrap().unwrap();
    assert_eq!(
        late.direct.get(user, other.id).await.unwrap().as_ref(),
        Some(&other)
    );
}

on_both_targets!(
    put_then_get_round_trips_every_field,
    get_of_an_unknown_session_is_a_miss,
    tombstone_replaces_the_keys_and_drops_their_index_members,
    a_tombstone_is_never_shortened,
    the_entry_expires_at_expires_at_for_every_role,
    an_expired_entry_is_gone,
    a_put_whose_expiry_has_passed_stores_nothing_and_deletes_nothing,
    a_put_of_an_ended_session_stores_nothing_and_deletes_nothing,
    an_older_generation_never_replaces_a_newer_one,
    a_put_after_a_tombstone_is_ignored_until_it_expires,
    a_value_of_the_previous_layout_is_not_served_and_is_replaced,
    a_value_of_layout_3_keeps_a_newer_generation_and_loses_an_older_one,
    prune_drops_index_members_whose_key_is_gone,
);

mod heartbeats {
    use sessiond_domain::ports::{Heartbeat, Heartbeats, LogPosition, PublishedHeartbeat};

    use super::*;

    fn heartbeat(instance: Uuid, position: u64, newest: Option<u64>) -> Heartbeat {
        Heartbeat {
            instance,
            position: LogPosition(position),
            newest: newest.map(LogPosition),
        }
    }

    /// The heartbeats, by position, without their ages.
    fn beats(published: &[PublishedHeartbeat]) -> Vec<Heartbeat> {
        let mut beats: Vec<Heartbeat> = published.iter().map(|p| p.heartbeat).collect();
        beats.sort_by_key(|h| h.position);
        beats
    }

    async fn each_exchange_publishes_one_heartbeat_and_returns_every_kept_one(target: Target) {
        let (cache, prefix) = target.cache().await;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let keep_for = StdDuration::from_secs(5);
        let first = cache
            .exchange(&heartbeat(a, 10, None), keep_for)
            .await
            .unwrap();
        assert_eq!(beats(&first), vec![heartbeat(a, 10, None)]);
        assert_eq!(first[0].age, StdDuration::ZERO);
        cache
            .exchange(&heartbeat(b, 12, Some(11)), keep_for)
            .await
            .unwrap();
        tokio::time::sleep(StdDuration::from_millis(120)).await;
        // A's next beat replaces its own and sees B's, as old as it is by Redis's clock.
        let seen = cache
            .exchange(&heartbeat(a, 13, Some(12)), keep_for)
            .await
            .unwrap();
        assert_eq!(
            beats(&seen),
            vec![heartbeat(b, 12, Some(11)), heartbeat(a, 13, Some(12))]
        );
        for published in &seen {
            let expected = if published.heartbeat.instance == a {
                StdDuration::ZERO..=StdDuration::ZERO
            } else {
                StdDuration::from_millis(110)..=StdDuration::from_secs(2)
            };
            assert!(expected.contains(&published.age), "{published:?}");
            assert!(!published.left);
        }

        // Another deployment (prefix) sees none of them.
        let (other, other_prefix) = target.cache().await;
        let c = Uuid::new_v4();
        let alone = other
            .exchange(&heartbeat(c, 1, None), keep_for)
            .await
            .unwrap();
        assert_eq!(beats(&alone), vec![heartbeat(c, 1, None)]);
        target.clean(&prefix).await;
        target.clean(&other_prefix).await;
    }

    async fn an_instance_that_stopped_beating_drops_out(target: Target) {
        let (cache, prefix) = target.cache().await;
        let (gone, alive) = (Uuid::new_v4(), Uuid::new_v4());
        let keep_for = StdDuration::from_millis(300);
        cache
            .exchange(&heartbeat(gone, 5, Some(9)), keep_for)
            .await
            .unwrap();
        tokio::time::sleep(StdDuration::from_millis(450)).await;
        let seen = cache
            .exchange(&heartbeat(alive, 10, None), keep_for)
            .await
            .unwrap();
        assert_eq!(beats(&seen), vec![heartbeat(alive, 10, None)]);
        target.clean(&prefix).await;
    }

    async fn a_final_heartbeat_is_marked_left(target: Target) {
        let (cache, prefix) = target.cache().await;
        let (leaving, staying) = (Uuid::new_v4(), Uuid::new_v4());
        let keep_for = StdDuration::from_secs(5);
        cache
            .exchange(&heartbeat(leaving, 5, Some(4)), keep_for)
            .await
            .unwrap();
        cache
            .leave(&heartbeat(leaving, 7, Some(6)), keep_for)
            .await
            .unwrap();
        let seen = cache
            .exchange(&heartbeat(staying, 8, None), keep_for)
            .await
            .unwrap();
        let last = seen
            .iter()
            .find(|p| p.heartbeat.instance == leaving)
            .expect("the final heartbeat is kept");
        assert!(last.left);
        assert_eq!(last.heartbeat, heartbeat(leaving, 7, Some(6)));
        assert!(
            seen.iter()
                .filter(|p| p.heartbeat.instance == staying)
                .all(|p| !p.left)
        );
        target.clean(&prefix).await;
    }

    on_both_targets!(
        each_exchange_publishes_one_heartbeat_and_returns_every_kept_one,
        an_instance_that_stopped_beating_drops_out,
        a_final_heartbeat_is_marked_left,
    );
}
