//! Faults of the stores under a running service (issue 4): Redis flushed, killed, paused and
//! restarted; PostgreSQL unreachable. SPEC §3 invariants 1 and 2 at the HTTP level.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use sessiond_app::config::Settings;
use sessiond_app::storage::Storage;
use sessiond_domain::model::Role;
use sessiond_postgres::{PgPool, testing};
use sessiond_redis::RedisSessionCache;
use sessiond_tests::app::{
    ANDROID, Device, IPHONE, PASSWORD, TestApp, WINDOWS, redis_settings, test_settings,
};
use sessiond_tests::redis_server::RedisServer;
use sessiond_tests::tcp_proxy::TcpProxy;

/// A pool on `url` that gives up fast when the database is unreachable.
async fn pool(url: String) -> PgPool {
    let mut settings = testing::settings(url);
    settings.acquire_timeout = Duration::from_millis(800);
    PgPool::connect(&settings).await.expect("a pool")
}

/// sessiond on a fresh database, behind the private Redis `server`.
async fn app_with_redis(server: &RedisServer) -> TestApp {
    app_on_redis(server, test_settings()).await
}

/// Without the near cache: every validation reaches Redis, as these tests of Redis's own
/// faults need.
async fn app_with_redis_only(server: &RedisServer) -> TestApp {
    let mut settings = test_settings();
    settings.sessions.near_cache_capacity = 0;
    app_on_redis(server, settings).await
}

async fn app_on_redis(server: &RedisServer, settings: Settings) -> TestApp {
    let url = testing::fresh_database_url().await.expect("a database");
    let cache = RedisSessionCache::connect(redis_settings(&server.url()))
        .await
        .expect("the cache");
    TestApp::spawn_on(settings, Storage::postgres(pool(url).await, Some(cache))).await
}

fn redis_cli(server: &RedisServer, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &server.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) async fn status(app: &TestApp, device: &Device) -> StatusCode {
    app.get("/api/v1/sessions/current", &device.access_token)
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_logs_nobody_out_and_revives_no_revoked_session() {
    let redis = RedisServer::start();
    let app = app_with_redis_only(&redis).await;
    let email = app.create_user(Role::Guest).await;
    let kept = app.login(&email, IPHONE).await;
    let revoked = app.login(&email, WINDOWS).await;
    assert_eq!(status(&app, &kept).await, StatusCode::OK);
    let ended = app
        .delete(
            &format!("/api/v1/sessions/{}", revoked.session_id),
            &kept.access_token,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    assert_eq!(status(&app, &revoked).await, StatusCode::UNAUTHORIZED);

    assert!(redis_cli(&redis, &["FLUSHALL"]).contains("OK"));

    assert_eq!(status(&app, &kept).await, StatusCode::OK);
    let refused = app
        .get("/api/v1/sessions/current", &revoked.access_token)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["reason"], "ended_from_other_device");
    // The miss refilled the cache: the next read is a hit again.
    assert!(redis_cli(&redis, &["DBSIZE"]).trim() != "0");
    assert_eq!(status(&app, &kept).await, StatusCode::OK);
}

/// Requests keep flowing while `fault` runs: live sessions must never be refused, revoked
/// ones never accepted.
pub(crate) struct Stream {
    stop: Arc<AtomicBool>,
    refused_live: Arc<AtomicUsize>,
    accepted_revoked: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream {
    pub(crate) fn start(
        app: Arc<TestApp>,
        live: Vec<Device>,
        revoked: Arc<std::sync::Mutex<Vec<Device>>>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let refused_live = Arc::new(AtomicUsize::new(0));
        let accepted_revoked = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let task = {
            let (stop, refused_live, accepted_revoked, requests) = (
                Arc::clone(&stop),
                Arc::clone(&refused_live),
                Arc::clone(&accepted_revoked),
                Arc::clone(&requests),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    for device in &live {
                        if status(&app, device).await != StatusCode::OK {
                            refused_live.fetch_add(1, Ordering::SeqCst);
                        }
                        requests.fetch_add(1, Ordering::SeqCst);
                    }
                    let revoked: Vec<Device> = revoked.lock().unwrap().clone();
                    for device in &revoked {
                        if status(&app, device).await == StatusCode::OK {
                            accepted_revoked.fetch_add(1, Ordering::SeqCst);
                        }
                        requests.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Self {
            stop,
            refused_live,
            accepted_revoked,
            requests,
            task,
        }
    }

    pub(crate) async fn finish(self) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        (
            self.requests.load(Ordering::SeqCst),
            self.refused_live.load(Ordering::SeqCst),
            self.accepted_revoked.load(Ordering::SeqCst),
        )
    }
}

pub(crate) async fn revoke(app: &TestApp, by: &Device, target: &Device) {
    let reply = app
        .delete(
            &format!("/api/v1/sessions/{}", target.session_id),
            &by.access_token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_redis_under_load_refuses_no_live_and_accepts_no_revoked_session() {
    let mut redis = RedisServer::start();
    let app = Arc::new(app_with_redis(&redis).await);
    let email = app.create_user(Role::Guest).await;
    let live = vec![
        app.login(&email, IPHONE).await,
        app.login(&email, ANDROID).await,
    ];
    let early = app.login(&email, WINDOWS).await;
    let during = app.login(&email, WINDOWS).await;
    revoke(&app, &live[0], &early).await;
    let revoked = Arc::new(std::sync::Mutex::new(vec![early]));
    let stream = Stream::start(Arc::clone(&app), live.clone(), Arc::clone(&revoked));

    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Revocation keeps working with Redis down.
    revoke(&app, &live[0], &during).await;
    revoked.lock().unwrap().push(during.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let (requests, refused_live, accepted_revoked) = stream.finish().await;
    assert!(requests > 20, "the stream ran ({requests} requests)");
    assert_eq!(accepted_revoked, 0, "a revoked session was accepted");
    assert_eq!(refused_live, 0, "a live session was refused");
    for device in &live {
        assert_eq!(status(&app, device).await, StatusCode::OK);
    }
    assert_eq!(status(&app, &during).await, StatusCode::UNAUTHORIZED);
    // Sign-in works again through the restarted Redis.
    app.login(&email, IPHONE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_while_redis_hangs_never_lets_the_stale_entry_through() {
    let redis = RedisServer::start();
    let app = Arc::new(app_with_redis(&redis).await);
    let email = app.create_user(Role::Guest).await;
    let live = vec![app.login(&email, IPHONE).await];
    let target = app.login(&email, ANDROID).await;
    // Warm the cache: the target's entry is in Redis.
    assert_eq!(status(&app, &target).await, StatusCode::OK);
    let revoked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stream = Stream::start(Arc::clone(&app), live.clone(), Arc::clone(&revoked));

    // Redis keeps its data but answers nothing for 1.5 s.
    redis_cli(&redis, &["CLIENT", "PAUSE", "1500", "ALL"]);
    revoke(&app, &live[0], &target).await;
    revoked.lock().unwrap().push(target.clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let (_, refused_live, accepted_revoked) = stream.finish().await;
    assert_eq!(accepted_revoked, 0, "the stale cache entry was served");
    assert_eq!(refused_live, 0, "a live session was refused");
    assert_eq!(status(&app, &target).await, StatusCode::UNAUTHORIZED);
}

/// Redis's commands since the last `CONFIG RESETSTAT`, but the heartbeats' (their script
/// and what it runs) and the test's own.
fn session_commands(redis: &RedisServer) -> Vec<(String, u64)> {
    const NOT_SESSIONS: [&str; 10] = [
        "info",
        "config|resetstat",
        "evalsha",
        "eval",
        "script|load",
        "time",
        "hset",
        "hgetall",
        "hdel",
        "pexpire",
    ];
    let stats = redis_cli(redis, &["INFO", "commandstats"]);
    stats
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| !NOT_SESSIONS.contains(&name.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validated_request_makes_no_redis_command_in_steady_state() {
    let redis = RedisServer::start();
    let app = app_with_redis(&redis).await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    assert_eq!(status(&app, &device).await, StatusCode::OK);
    redis_cli(&redis, &["CONFIG", "RESETSTAT"]);
    for _ in 0..50 {
        assert_eq!(status(&app, &device).await, StatusCode::OK);
    }
    // The near cache answers: no GET, and nothing written (a put would run SET).
    assert_eq!(session_commands(&redis), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_near_cache_each_validated_request_is_one_redis_command() {
    let redis = RedisServer::start();
    let app = app_with_redis_only(&redis).await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    assert_eq!(status(&app, &device).await, StatusCode::OK);
    redis_cli(&redis, &["CONFIG", "RESETSTAT"]);
    for _ in 0..50 {
        assert_eq!(status(&app, &device).await, StatusCode::OK);
    }
    assert_eq!(session_commands(&redis), vec![("get".to_owned(), 50)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_down_cached_sessions_work_and_writes_fail_cleanly() {
    let url = testing::fresh_database_url().await.expect("a database");
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = url.replacen(":5432/", &format!(":{}/", proxy.port()), 1);
    assert_ne!(proxied, url);
    let cache = RedisSessionCache::connect(redis_settings(sessiond_tests::app::SHARED_REDIS_URL))
        .await
        .expect("the cache");
    // Activity is due after a second: the outage outlasts it.
    let mut settings = test_settings();
    settings.sessions.activity_interval = 1;
    let app = TestApp::spawn_on(
        settings,
        Storage::postgres(pool(proxied).await, Some(cache)),
    )
    .await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let laptop = app.login(&email, WINDOWS).await;
    assert_eq!(status(&app, &phone).await, StatusCode::OK);
    assert_eq!(status(&app, &laptop).await, StatusCode::OK);

    proxy.cut();
    // Validation of cached sessions needs no database, also once their activity is due
    // (its write fails and is retried later; the request is served).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        assert_eq!(status(&app, &phone).await, StatusCode::OK);
    }
    // Writes answer 503 service_unavailable.
    let sign_in = app.try_login(&email, PASSWORD, ANDROID).await;
    assert_eq!(sign_in.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sign_in.code(), "service_unavailable");
    let refresh = app.refresh(&phone.refresh_token).await;
    assert_eq!(refresh.status, StatusCode::SERVICE_UNAVAILABLE);
    let revoke = app
        .delete(
            &format!("/api/v1/sessions/{}", laptop.session_id),
            &phone.access_token,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(revoke.body["request_id"].is_string(), "{:?}", revoke.body);

    proxy.restore();
    // Nothing was half-written: the refused revocation did not happen, the refused
    // refresh did not rotate the token.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(status(&app, &laptop).await, StatusCode::OK);
    let list = app.get("/api/v1/sessions", &phone.access_token).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(2));
    assert_eq!(
        app.refresh(&phone.refresh_token).await.status,
        StatusCode::OK
    );
}
