//! Faults of a Redis Cluster under a running service (issue 14, SPEC §8): a primary killed,
//! a manual failover, every node's scripts flushed, a primary frozen. Each test starts a
//! cluster of its own ([`RedisCluster`]) and an app whose every validation reaches Redis (no
//! near cache), and holds SPEC §3's invariants at the HTTP level: a revoked session is never
//! accepted, a live one is not refused once the cluster has settled.
//!
//! The cluster's failover is quick here (`cluster-node-timeout` 1000 ms, see
//! `scripts/redis-cluster.sh`); the tests print how long it took.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use reqwest::StatusCode;
use secrecy::SecretString;
use sessiond_app::storage::Storage;
use sessiond_domain::model::{Role, SessionId, UserId};
use sessiond_domain::ports::SessionCache;
use sessiond_postgres::{PgPool, testing};
use sessiond_redis::RedisSessionCache;
use sessiond_tests::app::{
    ANDROID, Backend, Device, IPHONE, TestApp, WINDOWS, redis_cluster_settings, test_settings,
};
use sessiond_tests::redis_cluster::{RedisCluster, shared_cluster_urls};
use uuid::Uuid;

use crate::faults::{Stream, revoke, status};

/// How long a failover may take before the test fails (it takes 1–3 s here).
const SETTLE_WITHIN: Duration = Duration::from_secs(20);

/// sessiond on a fresh database, behind `cluster`, without the near cache; and the key
/// prefix of its cache.
async fn app_on(cluster: &RedisCluster) -> (Arc<TestApp>, String) {
    let url = testing::fresh_database_url().await.expect("a database");
    let mut pg = testing::settings(url);
    pg.acquire_timeout = Duration::from_millis(800);
    let pool = PgPool::connect(&pg).await.expect("a pool");
    let redis = redis_cluster_settings(cluster.urls());
    let prefix = redis.key_prefix.clone();
    let cache = RedisSessionCache::connect_cluster(redis)
        .await
        .expect("the cache");
    let mut settings = test_settings();
    settings.sessions.near_cache_capacity = 0;
    let app = TestApp::spawn_on(settings, Storage::postgres(pool, Some(cache))).await;
    (Arc::new(app), prefix)
}

/// A user with two live devices and one revoked, under a running stream of validations.
struct Scene {
    app: Arc<TestApp>,
    email: String,
    live: Vec<Device>,
    revoked: Arc<Mutex<Vec<Device>>>,
    /// The Redis key of a live session: the user's slot.
    key: String,
    prefix: String,
    user: String,
}

impl Scene {
    async fn new(cluster: &RedisCluster) -> Scene {
        let (app, prefix) = app_on(cluster).await;
        let email = app.create_user(Role::Guest).await;
        let live = vec![
            app.login(&email, IPHONE).await,
            app.login(&email, ANDROID).await,
        ];
        let early = app.login(&email, WINDOWS).await;
        revoke(&app, &live[0], &early).await;
        for device in &live {
            assert_eq!(status(&app, device).await, StatusCode::OK);
        }
        let user = app.user_id(&live[0]).await;
        let key = session_key(&prefix, &user, &live[0].session_id);
        Scene {
            app,
            email,
            live,
            revoked: Arc::new(Mutex::new(vec![early])),
            key,
            prefix,
            user,
        }
    }

    fn stream(&self) -> Stream {
        Stream::start(
            Arc::clone(&self.app),
            self.live.clone(),
            Arc::clone(&self.revoked),
        )
    }

    /// Revokes one more session of the user (a sign-in made for it) and adds it to those
    /// the stream expects refused.
    async fn revoke_one(&self) {
        let target = self.app.login(&self.email, WINDOWS).await;
        revoke(&self.app, &self.live[0], &target).await;
        self.revoked.lock().unwrap().push(target);
    }

    /// Signs in once more, validates, and returns the new session's Redis key: written
    /// through whichever node serves the user's slot now.
    async fn fresh_key(&self) -> String {
        let device = self.app.login(&self.email, IPHONE).await;
        assert_eq!(status(&self.app, &device).await, StatusCode::OK);
        session_key(&self.prefix, &self.user, &device.session_id)
    }
}

fn session_key(prefix: &str, user: &str, session: &str) -> String {
    format!("{prefix}session:{{{user}}}:{session}")
}

/// The roles around the user's slot: its primary, that primary's replica, and a node that
/// is neither (to ask while the other two are in trouble).
fn roles(cluster: &RedisCluster, key: &str) -> (u16, u16, u16) {
    let first = cluster.ports()[0];
    let primary = cluster.primary_of_key(first, key);
    let replica = cluster.replica_of(first, primary);
    let observer = *cluster
        .ports()
        .iter()
        .find(|port| **port != primary && **port != replica)
        .expect("six nodes");
    (primary, replica, observer)
}

/// `EVAL` calls on the node on `port` so far (scripts it ran by their body).
fn evals(cluster: &RedisCluster, port: u16) -> u64 {
    cluster
        .cli(port, &["INFO", "commandstats"])
        .lines()
        .find_map(|line| line.trim().strip_prefix("cmdstat_eval:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}

/// Whether `key` is a live session's value (not a tombstone) on the node on `port`.
fn holds_a_live_value(cluster: &RedisCluster, port: u16, key: &str) -> bool {
    cluster
        .cli(port, &["STRLEN", key])
        .trim()
        .parse::<u64>()
        .unwrap_or(0)
        > 1
}

/// Lets the stream run for `how_long`, then stops it: (requests, live refused, revoked
/// accepted).
async fn run_for(stream: Stream, how_long: Duration) -> (usize, usize, usize) {
    tokio::time::sleep(how_long).await;
    stream.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_load_fails_over_and_no_revoked_session_is_ever_accepted() {
    let cluster = RedisCluster::start();
    let scene = Scene::new(&cluster).await;
    let (primary, replica, observer) = roles(&cluster, &scene.key);
    assert!(holds_a_live_value(&cluster, primary, &scene.key));
    let stream = scene.stream();
    tokio::time::sleep(Duration::from_millis(300)).await;

    cluster.kill(primary);
    let killed_at = Instant::now();
    // A revocation while the user's slot has no primary: PostgreSQL takes it, the
    // tombstone is lost with the node; the revocation feed refuses the session.
    scene.revoke_one().await;
    let alive: Vec<u16> = cluster
        .ports()
        .iter()
        .copied()
        .filter(|port| *port != primary)
        .collect();
    tokio::task::block_in_place(|| {
        cluster.wait_until(&alive, SETTLE_WITHIN, || {
            cluster.is_primary(observer, replica)
        })
    });
    let failover = killed_at.elapsed();
    let (during, refused_during, accepted_during) = stream.finish().await;

    let (after, refused_after, accepted_after) =
        run_for(scene.stream(), Duration::from_millis(1500)).await;
    println!(
        "failover in {failover:?}; during it {during} requests, {refused_during} live refused; \
         after it {after} requests, {refused_after} live refused"
    );
    assert_eq!(
        accepted_during + accepted_after,
        0,
        "a revoked session was accepted"
    );
    assert_eq!(
        refused_after, 0,
        "a live session was refused after the failover"
    );
    assert!(
        after > 20,
        "the stream ran after the failover ({after} requests)"
    );
    // The cache works on the new primary: a new session is written there, by EVAL (the
    // promoted replica never had the scripts), and sign-in works.
    let key = scene.fresh_key().await;
    assert!(holds_a_live_value(&cluster, replica, &key));
    assert!(evals(&cluster, replica) >= 1, "the put ran as EVAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_refuses_no_live_and_accepts_no_revoked_session() {
    let cluster = RedisCluster::start();
    let scene = Scene::new(&cluster).await;
    let (primary, replica, observer) = roles(&cluster, &scene.key);
    let stream = scene.stream();
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(cluster.cli(replica, &["CLUSTER", "FAILOVER"]).trim(), "OK");
    let started = Instant::now();
    scene.revoke_one().await;
    let ports = cluster.ports().to_vec();
    tokio::task::block_in_place(|| {
        cluster.wait_until(&ports, SETTLE_WITHIN, || {
            cluster.is_primary(observer, replica) && !cluster.is_primary(observer, primary)
        })
    });
    let switched = started.elapsed();
    let (requests, refused, accepted) = run_for(stream, Duration::from_millis(1500)).await;
    println!("manual failover in {switched:?}; {requests} requests, {refused} live refused");
    assert_eq!(accepted, 0, "a revoked session was accepted");
    // A manual failover loses nothing and pauses writes only for the switch: the
    // validations never needed more than a retry or a PostgreSQL read.
    assert_eq!(refused, 0, "a live session was refused");
    assert!(requests > 20, "the stream ran ({requests} requests)");
    let key = scene.fresh_key().await;
    assert!(holds_a_live_value(&cluster, replica, &key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_flushed_on_every_node_are_run_by_their_body() {
    let cluster = RedisCluster::start();
    let scene = Scene::new(&cluster).await;
    let (primary, _, _) = roles(&cluster, &scene.key);
    for port in cluster.ports() {
        assert_eq!(cluster.cli(*port, &["SCRIPT", "FLUSH"]).trim(), "OK");
    }
    let evals_before = evals(&cluster, primary);
    let stream = scene.stream();

    // A put (sign-in and validation) and a tombstone (revocation) on a node that knows no
    // script.
    let device = scene.app.login(&scene.email, IPHONE).await;
    assert_eq!(status(&scene.app, &device).await, StatusCode::OK);
    let key = session_key(&scene.prefix, &scene.user, &device.session_id);
    assert!(holds_a_live_value(&cluster, primary, &key));
    revoke(&scene.app, &scene.live[0], &device).await;
    scene.revoked.lock().unwrap().push(device);
    let mut admin = ClusterClient::new(cluster.urls())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let value: Option<Vec<u8>> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(value, Some(vec![0]), "the tombstone was written");

    let (requests, refused, accepted) = run_for(stream, Duration::from_millis(500)).await;
    assert_eq!((refused, accepted), (0, 0), "{requests} requests");
    assert!(
        evals(&cluster, primary) >= evals_before + 2,
        "the put and the tombstone ran as EVAL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_frozen_past_the_node_timeout_is_replaced_and_nothing_wrong_is_served() {
    let cluster = RedisCluster::start();
    let scene = Scene::new(&cluster).await;
    let (primary, replica, observer) = roles(&cluster, &scene.key);
    let stream = scene.stream();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Frozen (SIGSTOP): its sockets stay open and answer nothing, so every command to it
    // runs into the command timeout; past the node timeout its replica takes over.
    cluster.pause(primary);
    scene.revoke_one().await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    cluster.resume(primary);
    let ports = cluster.ports().to_vec();
    tokio::task::block_in_place(|| {
        cluster.wait_until(&ports, SETTLE_WITHIN, || {
            cluster.is_primary(observer, replica) && !cluster.is_primary(observer, primary)
        })
    });
    let (during, refused_during, accepted_during) = stream.finish().await;

    let (after, refused_after, accepted_after) =
        run_for(scene.stream(), Duration::from_millis(1500)).await;
    println!(
        "frozen 3 s: {during} requests, {refused_during} live refused; after the thaw \
         {after} requests, {refused_after} live refused"
    );
    assert_eq!(
        accepted_during + accepted_after,
        0,
        "a revoked session was accepted"
    );
    assert_eq!(
        refused_after, 0,
        "a live session was refused after the thaw"
    );
    assert!(
        after > 20,
        "the stream ran after the thaw ({after} requests)"
    );
    let key = scene.fresh_key().await;
    assert!(holds_a_live_value(&cluster, replica, &key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_metrics_show_the_cluster() {
    let app = TestApp::spawn_backend(Backend::PostgresRedisCluster, |_| {}).await;
    let ready = app
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["checks"]["redis"], "up");
    assert_eq!(
        ready.body["checks"]["redis_cluster"],
        serde_json::json!({ "state": "ok", "known_nodes": 6, "primaries": 3 })
    );
    let metrics = app.metrics().await;
    for line in [
        "sessiond_redis_cluster_ok 1",
        "sessiond_redis_cluster_known_nodes 6",
        "sessiond_redis_cluster_primaries 3",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in {metrics}"
        );
    }
    // On one server there is no cluster to report.
    let single = TestApp::spawn_backend(Backend::PostgresRedis, |_| {}).await;
    let ready = single
        .call(reqwest::Method::GET, "/health/ready", None, None)
        .await;
    assert_eq!(ready.body["checks"]["redis"], "up");
    assert!(
        ready.body["checks"].get("redis_cluster").is_none(),
        "{}",
        ready.body
    );
}

/// While one primary fails over, its slots fail and the others answer: that is one outage
/// (logged when it starts and when it ends), not one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_one_outage_for_the_cache_not_one_per_request() {
    let cluster = RedisCluster::start();
    let settings = redis_cluster_settings(cluster.urls());
    let prefix = settings.key_prefix.clone();
    let cache = RedisSessionCache::connect_cluster(settings).await.unwrap();
    let first = cluster.ports()[0];
    // Two users whose slots two different primaries serve.
    let key_of = |user: UserId| session_key(&prefix, &user.to_string(), "s");
    let doomed = UserId::from_uuid(Uuid::new_v4());
    let primary = cluster.primary_of_key(first, &key_of(doomed));
    let healthy = std::iter::repeat_with(|| UserId::from_uuid(Uuid::new_v4()))
        .find(|user| cluster.primary_of_key(first, &key_of(*user)) != primary)
        .unwrap();
    let session = SessionId::from_uuid(Uuid::new_v4());
    assert_eq!(cache.get(doomed, session).await.unwrap(), None);
    assert!(!cache.stats().outage);

    cluster.kill(primary);
    let (mut failed, mut answered, mut stalled) = (0, 0, 0);
    for _ in 0..40 {
        if cache.get(doomed, session).await.is_ok() {
            break; // failed over
        }
        failed += 1;
        // The other nodes answer, though not always in time: the client refreshes its
        // slot map meanwhile.
        match cache.get(healthy, session).await {
            Ok(found) => {
                assert_eq!(found, None);
                answered += 1;
                assert!(
                    cache.stats().outage,
                    "an answer from another node ended the outage"
                );
            }
            Err(_) => stalled += 1,
        }
    }
    println!(
        "during the failover: {failed} commands to the killed primary's slots failed; \
         to another primary's, {answered} answered and {stalled} timed out"
    );
    assert!(
        failed > 0,
        "no command found the killed primary unreachable"
    );
    assert!(answered > 0, "no other node answered during the failover");
    // Once its slots answer again and stay quiet for a second, the outage ends.
    let quiet = Instant::now();
    while cache.stats().outage {
        assert!(quiet.elapsed() < SETTLE_WITHIN, "the outage never ended");
        let _ = cache.get(doomed, session).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cache.get(doomed, session).await.unwrap(), None);
}

/// The composition root reads `REDIS_CLUSTER_URLS` as `sessiond serve` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_puts_the_cache_on_the_cluster_that_redis_cluster_urls_names() {
    let mut settings = test_settings();
    settings.database_url = Some(SecretString::from(
        testing::fresh_database_url().await.expect("a database"),
    ));
    settings.redis_cluster_urls = Some(SecretString::from(shared_cluster_urls().join(",")));
    settings.redis.key_prefix = format!("test:{}:", Uuid::new_v4().simple());
    // Every validation reads Redis, so that its hits show the cluster answering.
    settings.sessions.near_cache_capacity = 0;
    settings.validate().unwrap();
    let storage = Storage::connect(&settings).await.unwrap();
    let cluster = storage.cluster_probe.clone().expect("a cluster probe");
    assert_eq!(cluster.state().await.map(|state| state.ok), Some(true));
    assert!(storage.probes().redis.expect("a Redis probe").check().await);
    let app = TestApp::spawn_on(settings, storage).await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    assert_eq!(status(&app, &device).await, StatusCode::OK);
    let cached = app.metrics().await;
    assert!(
        cached
            .lines()
            .any(|line| line.starts_with("sessiond_cache_hits_total ") && !line.ends_with(" 0")),
        "validation was answered from the cluster: {cached}"
    );
}
