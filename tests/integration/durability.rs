//! PostgreSQL is the durable record (issue 3, SPEC §3 invariant 1): sessions survive a
//! restart of sessiond, and cleanup ends what expired, purges what is past retention and
//! prunes Redis's per-user indexes.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use sessiond_app::storage::Storage;
use sessiond_domain::model::Role;
use sessiond_postgres::{PgPool, testing};
use sessiond_redis::RedisSessionCache;
use sessiond_tests::app::{IPHONE, TestApp, WINDOWS, redis_settings, test_settings};
use sessiond_tests::logs;
use sessiond_tests::redis_server::RedisServer;

/// What `/metrics` (on the metrics listener) shows now.
async fn scrape(app: &TestApp) -> String {
    app.metrics().await
}

/// The value of `sessiond_sessions_ended_total{reason}` (0 before the first).
fn ended_counted(metrics: &str, reason: &str) -> f64 {
    let series = format!(r#"sessiond_sessions_ended_total{{reason="{reason}"}} "#);
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

async fn instance(url: &str) -> TestApp {
    let pool = PgPool::connect(&testing::settings(url.to_owned()))
        .await
        .expect("a pool");
    TestApp::spawn_on(test_settings(), Storage::postgres(pool, None)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_session_and_its_state() {
    let url = testing::fresh_database_url().await.expect("a database");
    let before = instance(&url).await;
    let email = before.create_user(Role::Guest).await;
    let phone = before.login(&email, IPHONE).await;
    let laptop = before.login(&email, WINDOWS).await;
    let rotated = before.refreshed(&phone).await;
    let ended = before
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&laptop.access_token),
            None,
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    before.stop().await;

    let after = instance(&url).await;
    // The live session, its rotated refresh token and its access token all carry over.
    let list = after.get("/api/v1/sessions", &rotated.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    assert_eq!(list.body[0]["device_info"], "iPhone");
    // The rotated-away token is still recognised as such, the ended session stays ended.
    assert_eq!(
        after.refresh(&phone.refresh_token).await.code(),
        "refresh_token_rotated"
    );
    let refused = after.get("/api/v1/sessions", &laptop.access_token).await;
    assert_eq!(refused.body["reason"], "user_logout");
    after.refreshed(&rotated).await;
    let history = after
        .get("/api/v1/sessions/history", &rotated.access_token)
        .await;
    assert_eq!(history.body[0]["id"], laptop.session_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_ends_expired_sessions_once_and_the_device_is_told_why() {
    let logs = logs::capture();
    let url = testing::fresh_database_url().await.expect("a database");
    let pool = PgPool::connect(&testing::settings(url))
        .await
        .expect("a pool");
    let mut settings = test_settings();
    settings.roles.hotel_employee.timeout = 1;
    settings.roles.hotel_employee.absolute_lifetime = 1;
    let app = TestApp::spawn_on(settings, Storage::postgres(pool, None)).await;
    let short = app.create_user(Role::HotelEmployee).await;
    let first = app.login(&short, IPHONE).await;
    app.login(&short, WINDOWS).await;
    let guest = app.login(&app.create_user(Role::Guest).await, IPHONE).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired_before = ended_counted(&scrape(&app).await, "expired");

    let report = app.cleanup.run_once().await.expect("a pass");
    assert!(!report.skipped);
    assert_eq!(report.expired, 2);
    let again = app.cleanup.run_once().await.expect("a pass");
    assert_eq!(again.expired, 0);
    // Expiry is announced like every other end: counted, and logged as the system's.
    let expired_after = ended_counted(&scrape(&app).await, "expired");
    assert!(
        expired_after - expired_before >= 2.0,
        "{expired_before} -> {expired_after}"
    );
    let first_ended = logs.text().lines().any(|line| {
        line.contains("session ended")
            && line.contains(&first.session_id)
            && line.contains(r#""reason":"expired""#)
            && line.contains(r#""ended_by":"system""#)
    });
    assert!(first_ended, "no log line for the expired session");
    // The guest's day-long session is untouched.
    assert_eq!(
        app.get("/api/v1/sessions", &guest.access_token)
            .await
            .status,
        StatusCode::OK
    );
    let refresh = app.refresh(&first.refresh_token).await;
    assert_eq!(refresh.code(), "session_expired");
    assert_eq!(refresh.body["reason"], "expired");
}

/// SPEC §5: a cleanup pass also prunes each user's index in Redis of the sessions that
/// expired, so that no index grows with every session a user ever had. The user keeps a
/// later session, so the index itself lives on (it expires with its latest member).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_prunes_the_redis_index_of_expired_sessions() {
    let redis = RedisServer::start();
    let url = testing::fresh_database_url().await.expect("a database");
    let pool = PgPool::connect(&testing::settings(url))
        .await
        .expect("a pool");
    let redis_settings = redis_settings(&redis.url());
    let prefix = redis_settings.key_prefix.clone();
    let cache = RedisSessionCache::connect(redis_settings)
        .await
        .expect("the cache");
    let mut settings = test_settings();
    settings.roles.guest.timeout = 2;
    settings.roles.guest.absolute_lifetime = 2;
    let app = TestApp::spawn_on(settings, Storage::postgres(pool, Some(cache))).await;
    let email = app.create_user(Role::Guest).await;
    let early = app.login(&email, IPHONE).await;
    let user_id = app.user_id(&early).await;
    let index = format!("{prefix}sessions:{{{user_id}}}");
    let members = || {
        let output = Command::new("redis-cli")
            .args(["-p", &redis.port().to_string(), "ZRANGE", &index, "0", "-1"])
            .output()
            .expect("redis-cli runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut members: Vec<String> = text.lines().map(str::to_owned).collect();
        members.sort();
        members
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let late = app.login(&email, WINDOWS).await;
    let mut both = vec![early.session_id.clone(), late.session_id.clone()];
    both.sort();
    assert_eq!(members(), both);

    // The early session has expired, the late one has not.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let report = app.cleanup.run_once().await.expect("a pass");
    assert_eq!(report.expired, 1);
    assert_eq!(members(), vec![late.session_id.clone()]);
}

/// SPEC §8: activity is written behind. A request that finds its session's activity due
/// writes nothing itself; the batch goes out at the next flush, or, when the process stops
/// first, at shutdown: nothing noted is lost to a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noted_activity_is_written_behind_and_flushed_at_shutdown() {
    let url = testing::fresh_database_url().await.expect("a database");
    let pool = PgPool::connect(&testing::settings(url.clone()))
        .await
        .expect("a pool");
    let mut settings = test_settings();
    settings.sessions.activity_interval = 1;
    // No periodic flush within the test: only the shutdown one.
    settings.sessions.activity_flush_ms = 600_000;
    let app = TestApp::spawn_on(settings, Storage::postgres(pool, None)).await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    let (sql, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    let stored = || async {
        let row = sql
            .query_one(
                "SELECT (extract(epoch FROM last_activity) * 1000000)::bigint \
                 FROM user_sessions WHERE id = $1::text::uuid",
                &[&device.session_id],
            )
            .await
            .expect("the session row");
        row.get::<_, i64>(0)
    };
    let signed_in = stored().await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = app
        .get("/api/v1/sessions/current", &device.access_token)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        stored().await,
        signed_in,
        "the request wrote its activity itself"
    );

    app.stop().await;
    let flushed = stored().await;
    assert!(
        flushed >= signed_in + 1_000_000,
        "the activity noted before shutdown was lost: {signed_in} -> {flushed}"
    );
}
