//! SPEC §3 invariants 3 and 4, checked on what the stores actually hold after real traffic:
//! no raw token at rest in PostgreSQL or Redis, and every stored time is a `timestamptz`.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessiond_app::storage::Storage;
use sessiond_domain::model::Role;
use sessiond_postgres::{PgPool, testing};
use sessiond_redis::RedisSessionCache;
use sessiond_tests::app::{ANDROID, IPHONE, TestApp, redis_settings, test_settings};
use sessiond_tests::redis_server::RedisServer;
use tokio_postgres::NoTls;

async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Every byte Redis holds: each key's name and its value (the session strings, the index
/// members, the heartbeats), read uncompressed.
fn redis_contents(server: &RedisServer) -> Vec<u8> {
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["-p", &server.port().to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs")
            .stdout
    };
    let keys = String::from_utf8(cli(&["--scan"])).expect("key names");
    let mut contents = Vec::new();
    for key in keys.lines().filter(|k| !k.is_empty()) {
        contents.extend_from_slice(key.as_bytes());
        let kind = String::from_utf8(cli(&["TYPE", key])).expect("a type");
        match kind.trim() {
            "string" => contents.extend(cli(&["--raw", "GET", key])),
            "zset" => contents.extend(cli(&["--raw", "ZRANGE", key, "0", "-1"])),
            // The instances' heartbeats: field names and values.
            "hash" => contents.extend(cli(&["--raw", "HGETALL", key])),
            other => panic!("unexpected Redis type {other} at {key}"),
        }
    }
    contents
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_token_is_ever_at_rest_in_postgres_or_redis() {
    let url = testing::fresh_database_url().await.expect("a database");
    let redis = RedisServer::start();
    let cache = RedisSessionCache::connect(redis_settings(&redis.url()))
        .await
        .expect("the cache");
    let pool = PgPool::connect(&testing::settings(url.clone()))
        .await
        .expect("a pool");
    let app = TestApp::spawn_on(test_settings(), Storage::postgres(pool, Some(cache))).await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let tablet = app.login(&email, ANDROID).await;
    let rotated = app.refreshed(&phone).await;
    for device in [&phone, &tablet, &rotated] {
        // Cached by validation.
        app.get("/api/v1/sessions/current", &device.access_token)
            .await;
    }

    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for device in [&phone, &tablet, &rotated] {
        secrets.push(device.access_token.clone().into_bytes());
        secrets.push(device.refresh_token.clone().into_bytes());
        let (_, secret) = device.refresh_token.split_once('.').expect("<id>.<secret>");
        secrets.push(secret.as_bytes().to_vec());
        let raw = URL_SAFE_NO_PAD.decode(secret).expect("base64url");
        secrets.push(hex(&raw).into_bytes());
        secrets.push(raw);
    }

    let client = sql(&url).await;
    let mut stored = Vec::new();
    for table in ["users", "user_sessions"] {
        for row in client
            .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
            .await
            .expect("a dump")
        {
            stored.extend(row.get::<_, String>(0).into_bytes());
        }
    }
    assert!(
        contains(&stored, b"refresh_token_hash"),
        "the dump is empty"
    );
    let cached = redis_contents(&redis);
    assert!(contains(&cached, b"session:{"), "the cache is empty");
    for secret in &secrets {
        assert!(!contains(&stored, secret), "a raw token is in PostgreSQL");
        assert!(!contains(&cached, secret), "a raw token is in Redis");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_time_is_utc() {
    let url = testing::fresh_database_url().await.expect("a database");
    let client = sql(&url).await;
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type LIKE 'time%' \
               AND table_name NOT LIKE '\\_\\_%'",
            &[],
        )
        .await
        .expect("the catalogue");
    assert!(
        columns.len() >= 9,
        "the time columns are there: {}",
        columns.len()
    );
    for column in &columns {
        let (table, name, kind): (String, String, String) =
            (column.get(0), column.get(1), column.get(2));
        assert_eq!(kind, "timestamp with time zone", "{table}.{name}");
    }

    // And the API speaks UTC whatever the server's zone.
    let app = TestApp::spawn_backend(sessiond_tests::app::Backend::Postgres, |_| {}).await;
    let device = app.login(&app.create_user(Role::Guest).await, IPHONE).await;
    for field in ["created_at", "last_activity", "expires_at"] {
        let value = device.body["session"][field].as_str().expect("a time");
        assert!(value.ends_with('Z'), "{field} = {value}");
    }
}
