//! PostgreSQL failover (issue 14, SPEC §8): two sessiond instances on a private primary
//! with a synchronous standby, both named in one `DATABASE_URL` with
//! `target_session_attrs=read-write`, and the shared Redis under a key prefix of their own.
//!
//! Sessions are signed in, refreshed and revoked on both instances; then, under a steady
//! load of writes (sign-ins, refreshes) and validations of cached sessions on both, the
//! primary crashes (`pg_ctl stop -m immediate`), a second passes as a failover manager
//! detects it, and the standby is promoted. The test shows, over the whole run: no 5xx but
//! 503, every 503 with `Retry-After`; writes between the crash and the reconnection get 503;
//! cached sessions keep validating (200) throughout; each instance writes again on its own
//! within [`RECONNECT_WITHIN`]. Then, on the new primary: every acknowledged sign-in is
//! there, every acknowledged revocation is still a revocation (refused on both instances),
//! every acknowledged refresh holds (the newest refresh token works); and a revocation on
//! one instance reaches the other through the log read from the new primary (its feed
//! applies it) within [`REVOCATION_BOUND`]. The figures (how long writes got 503, how long
//! each instance took to write again) are printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sessiond_app::config::OnLimit;
use sessiond_app::storage::Storage;
use sessiond_domain::model::Role;
use sessiond_postgres::{LISTENER_APPLICATION_NAME, PgPool, PgSettings, run_migrations, testing};
use sessiond_redis::{RedisSessionCache, RedisSettings};
use sessiond_tests::app::{Device, PASSWORD, SHARED_REDIS_URL, TestApp, WINDOWS, test_settings};
use sessiond_tests::instances::{
    COMMAND_TIMEOUT, CONFIGURED_BOUND_MS, REVOCATION_BOUND, STORE_TIMEOUT, device,
};
use sessiond_tests::postgres_standby::PgStandbyPair;
use uuid::Uuid;

/// How long the test waits between the crash and the promotion, as a failover manager
/// takes to declare a primary dead: meanwhile there is no primary at all.
const DETECTION: Duration = Duration::from_secs(1);

/// How long each instance may take, after the promotion, to acknowledge a write again: far
/// above what it takes (printed), for a loaded 2-core machine.
const RECONNECT_WITHIN: Duration = Duration::from_secs(30);

/// One answer of the load.
#[derive(Debug, Clone)]
struct Answer {
    /// Since the load started.
    at: Duration,
    instance: &'static str,
    what: &'static str,
    status: StatusCode,
    retry_after: bool,
}

impl Answer {
    fn is_write(&self) -> bool {
        self.what != "validate"
    }
}

/// What the load leaves behind: the sessions whose sign-in was acknowledged, and per
/// instance the device of its newest acknowledged sign-in or refresh.
#[derive(Debug, Default)]
struct Acknowledged {
    sign_ins: Vec<String>,
    newest: Vec<Device>,
}

/// An instance the load calls.
#[derive(Debug, Clone)]
struct Target {
    name: &'static str,
    base_url: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_to_a_synchronous_standby_loses_no_acknowledged_write() {
    let test_started = Instant::now();
    let mut pair = tokio::task::spawn_blocking(PgStandbyPair::start)
        .await
        .expect("a primary and a synchronous standby");
    pair.psql(pair.primary_port(), "CREATE DATABASE sessiond");
    {
        let pool = PgPool::connect(&testing::settings(pair.primary_url("sessiond")))
            .await
            .expect("a pool on the primary");
        run_migrations(&pool).await.expect("the migrations");
    }
    let url = pair.url("sessiond");
    let key_prefix = format!("test:{}:", Uuid::new_v4().simple());
    let a = instance(&url, &key_prefix).await;
    let b = instance(&url, &key_prefix).await;
    let started_in = test_started.elapsed();

    // Before: sign-ins on either instance, each refreshed on the other, two revoked.
    let mut devices = Vec::new();
    for i in 0..6 {
        let (on, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let email = a.create_user(Role::Guest).await;
        let signed_in = on.login(&email, WINDOWS).await;
        devices.push(other.refreshed(&signed_in).await);
    }
    let mut sign_ins: Vec<String> = devices.iter().map(|d| d.session_id.clone()).collect();
    let revoked = vec![devices.remove(0), devices.remove(0)];
    assert_eq!(logout(&a, &revoked[0]).await, StatusCode::NO_CONTENT);
    assert_eq!(logout(&b, &revoked[1]).await, StatusCode::NO_CONTENT);
    refused_within(&[&a, &b], &revoked, REVOCATION_BOUND).await;
    // The live ones are validated on both instances: cached there.
    for device in &devices {
        assert!(accepts(&a, device).await && accepts(&b, device).await);
    }
    let load_users = [
        a.create_user(Role::Guest).await,
        a.create_user(Role::Guest).await,
    ];

    // The switch, under load.
    let origin = Instant::now();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(run_load(
        vec![
            Target {
                name: "A",
                base_url: a.base_url.clone(),
            },
            Target {
                name: "B",
                base_url: b.base_url.clone(),
            },
        ],
        load_users.to_vec(),
        devices.clone(),
        Arc::clone(&answers),
        Arc::clone(&stop),
        origin,
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let listening = pair.psql(pair.primary_port(), &listeners_sql());
    assert_eq!(listening, "2", "both instances listen on the primary");
    let crashed_at = origin.elapsed();
    let (primary_port, standby_port) = (pair.primary_port(), pair.standby_port());
    pair = tokio::task::spawn_blocking(move || {
        pair.crash_primary();
        pair
    })
    .await
    .expect("the primary crashed");
    // Meanwhile, a new connection finds no primary, and says so naming both hosts.
    let detecting = Instant::now();
    let refused = PgPool::connect(&testing::settings(url.clone()))
        .await
        .expect("a pool on both hosts")
        .ping()
        .await
        .expect_err("no host takes writes");
    let said = error_chain(&refused);
    assert!(
        said.contains(&format!(
            "no PostgreSQL primary among the hosts of DATABASE_URL: 127.0.0.1:{standby_port} \
             answered read-only"
        )) && said.contains(&format!("cannot reach 127.0.0.1:{primary_port}: ")),
        "{said}"
    );
    tokio::time::sleep(DETECTION.saturating_sub(detecting.elapsed())).await;
    pair = tokio::task::spawn_blocking(move || {
        pair.promote_standby();
        pair
    })
    .await
    .expect("the standby promoted");
    let promoted_at = origin.elapsed();
    let (new_primary, connection) =
        tokio_postgres::connect(&pair.standby_url("sessiond"), tokio_postgres::NoTls)
            .await
            .expect("the new primary");
    let connection = tokio::spawn(connection);
    // Each instance acknowledges writes again, and listens on the new primary, by itself.
    let mut writing_again = [None, None];
    let mut listening_again = None;
    let deadline = Instant::now() + RECONNECT_WITHIN;
    while writing_again.iter().any(Option::is_none) || listening_again.is_none() {
        assert!(
            Instant::now() < deadline,
            "not reconnected within {RECONNECT_WITHIN:?} of the promotion: writes again at \
             {writing_again:?}, listening at {listening_again:?}; last answers {:?}",
            tail(&answers)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (slot, name) in writing_again.iter_mut().zip(["A", "B"]) {
            *slot = slot.or_else(|| first_write_ok_after(&answers, name, promoted_at));
        }
        if listening_again.is_none() && listeners(&new_primary).await == 2 {
            listening_again = Some(origin.elapsed());
        }
    }
    // A little more load on the new primary, then stop it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let acknowledged = load.await.expect("the load ran");
    let answers = answers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();

    // Over the whole run: 503 with Retry-After or a success, never another 5xx.
    let wrong: Vec<&Answer> = answers
        .iter()
        .filter(|answer| {
            (answer.status.is_server_error() && answer.status != StatusCode::SERVICE_UNAVAILABLE)
                || (answer.status == StatusCode::SERVICE_UNAVAILABLE && !answer.retry_after)
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "5xx other than 503 + Retry-After: {wrong:?}"
    );
    // Writes met the switch, and got 503 (or went through), nothing else.
    let writes: Vec<&Answer> = answers.iter().filter(|a| a.is_write()).collect();
    let unavailable: Vec<&Answer> = writes
        .iter()
        .copied()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(
        !unavailable.is_empty(),
        "no write met the switch: the test showed nothing ({} writes)",
        writes.len()
    );
    let odd: Vec<&&Answer> = writes
        .iter()
        .filter(|a| !matches!(a.status, StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE))
        .collect();
    assert!(
        odd.is_empty(),
        "writes answered neither 200 nor 503: {odd:?}"
    );
    assert!(
        unavailable.iter().all(|a| a.at >= crashed_at),
        "a write got 503 before the crash: {unavailable:?}"
    );
    // Cached sessions validated throughout, the switch included.
    let validations: Vec<&Answer> = answers.iter().filter(|a| !a.is_write()).collect();
    let refused: Vec<&&Answer> = validations
        .iter()
        .filter(|a| a.status != StatusCode::OK)
        .collect();
    assert!(
        refused.is_empty(),
        "cached sessions not served during the switch ({} of {}): {refused:?}",
        refused.len(),
        validations.len()
    );
    let during_switch = validations
        .iter()
        .filter(|a| a.at >= crashed_at && a.at <= promoted_at)
        .count();
    assert!(during_switch > 0, "no validation ran during the switch");

    // On the new primary, nothing acknowledged is lost.
    sign_ins.extend(acknowledged.sign_ins.iter().cloned());
    for id in &sign_ins {
        let row = new_primary
            .query_opt(
                "SELECT is_active FROM user_sessions WHERE id = $1::text::uuid",
                &[id],
            )
            .await
            .expect("the session's row");
        assert!(row.is_some(), "acknowledged sign-in {id} lost");
    }
    for device in &revoked {
        let active: bool = new_primary
            .query_one(
                "SELECT is_active FROM user_sessions WHERE id = $1::text::uuid",
                &[&device.session_id],
            )
            .await
            .expect("the revoked session's row")
            .get(0);
        assert!(
            !active,
            "acknowledged revocation of {} lost",
            device.session_id
        );
    }
    refused_within(&[&a, &b], &revoked, REVOCATION_BOUND).await;
    // The newest refresh token of every device works: no rotation was lost.
    let mut live = Vec::new();
    for (i, device) in devices.iter().chain(&acknowledged.newest).enumerate() {
        let on = if i % 2 == 0 { &a } else { &b };
        live.push(on.refreshed(device).await);
    }

    // The revocation listener reads the new primary's log: a revocation on A is applied
    // by B's feed (B is not asked about the session before), and refused everywhere.
    let applied_before = applied(&b).await;
    let ended = live.remove(0);
    assert_eq!(logout(&a, &ended).await, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + REVOCATION_BOUND;
    while applied(&b).await <= applied_before {
        assert!(
            Instant::now() < deadline,
            "B's feed applied nothing within {REVOCATION_BOUND:?} of a revocation on A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    refused_within(&[&a, &b], &[ended], REVOCATION_BOUND).await;
    for device in &live {
        assert!(accepts(&a, device).await && accepts(&b, device).await);
    }

    let last_503 = unavailable.iter().map(|a| a.at).max().unwrap_or_default();
    let first_503 = unavailable.iter().map(|a| a.at).min().unwrap_or_default();
    eprintln!(
        "failover: pair and instances started in {started_in:.1?}; crash at {crashed_at:.1?}, \
         promoted at {promoted_at:.1?} (promotion took {:.1?}); {} writes got 503 from \
         {first_503:.1?} to {last_503:.1?} ({:.1?}); A wrote again {:.1?} and B {:.1?} after \
         the promotion, both listened on the new primary {:.1?} after it; {} validations of cached sessions, {during_switch} between crash and \
         promotion, all 200; {} acknowledged sign-ins checked on the new primary; whole test \
         {:.1?}",
        promoted_at.saturating_sub(crashed_at + DETECTION),
        unavailable.len(),
        last_503.saturating_sub(first_503),
        writing_again[0]
            .unwrap_or_default()
            .saturating_sub(promoted_at),
        writing_again[1]
            .unwrap_or_default()
            .saturating_sub(promoted_at),
        listening_again
            .unwrap_or_default()
            .saturating_sub(promoted_at),
        validations.len(),
        sign_ins.len(),
        test_started.elapsed(),
    );
    a.stop().await;
    b.stop().await;
    connection.abort();
    drop(pair);
}

/// An instance on `url` and the shared Redis under `key_prefix`, with production-like
/// store timeouts (a request gives up within seconds) and room for the load's sign-ins.
async fn instance(url: &str, key_prefix: &str) -> TestApp {
    let mut settings = test_settings();
    settings.redis.key_prefix = key_prefix.to_owned();
    settings.redis.command_timeout_ms =
        u64::try_from(COMMAND_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
    // Twice the other many-instance tests' bound: during the switch every validation of a
    // cached session rests on the heartbeats' vouch (half the bound long, renewed eight
    // times per bound), and this test asserts every one of them, also when `make test`
    // loads both cores; [`REVOCATION_BOUND`] stays well above it.
    settings.sessions.revocation_bound_ms = 2 * CONFIGURED_BOUND_MS;
    settings.roles.guest.max_sessions = 10_000;
    settings.roles.guest.on_limit = OnLimit::EvictOldest;
    let pool = PgPool::connect(&PgSettings {
        acquire_timeout: STORE_TIMEOUT,
        statement_timeout: STORE_TIMEOUT,
        ..testing::settings(url.to_owned())
    })
    .await
    .expect("a pool on both hosts");
    let cache = RedisSessionCache::connect(RedisSettings {
        url: SHARED_REDIS_URL.to_owned(),
        key_prefix: key_prefix.to_owned(),
        command_timeout: COMMAND_TIMEOUT,
    })
    .await
    .expect("the shared Redis");
    TestApp::spawn_on(settings, Storage::postgres(pool, Some(cache))).await
}

/// Until `stop`: on each instance in turn, a sign-in, a refresh of the newest device, and
/// a validation of every cached session; every answer recorded.
async fn run_load(
    targets: Vec<Target>,
    users: Vec<String>,
    cached: Vec<Device>,
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
    origin: Instant,
) -> Acknowledged {
    let client = reqwest::Client::new();
    let mut acknowledged = Acknowledged::default();
    let mut newest: Vec<Option<Device>> = vec![None; targets.len()];
    let record = |target: &Target, what, status, retry_after| {
        answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Answer {
                at: origin.elapsed(),
                instance: target.name,
                what,
                status,
                retry_after,
            });
    };
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        for (target, newest) in targets.iter().zip(newest.iter_mut()) {
            let email = &users[round % users.len()];
            let (status, retry_after, body) = send(
                client
                    .post(format!("{}/api/v1/auth/login", target.base_url))
                    .header("user-agent", WINDOWS)
                    .json(&json!({ "email": email, "password": PASSWORD })),
            )
            .await;
            record(target, "sign-in", status, retry_after);
            if status == StatusCode::OK {
                let signed_in = device_of(status, body);
                acknowledged.sign_ins.push(signed_in.session_id.clone());
                *newest = Some(signed_in);
            }
            // A refresh that got no answer may or may not have rotated: that device is
            // left alone from then on.
            if let Some(current) = newest.take() {
                let (status, retry_after, body) = send(
                    client
                        .post(format!("{}/api/v1/auth/refresh", target.base_url))
                        .json(&json!({ "refresh_token": current.refresh_token })),
                )
                .await;
                record(target, "refresh", status, retry_after);
                if status == StatusCode::OK {
                    *newest = Some(device_of(status, body));
                }
            }
            for session in &cached {
                let (status, retry_after, _) = send(
                    client
                        .get(format!("{}/api/v1/sessions/current", target.base_url))
                        .bearer_auth(&session.access_token),
                )
                .await;
                record(target, "validate", status, retry_after);
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    acknowledged.newest = newest.into_iter().flatten().collect();
    acknowledged
}

/// Status, whether `Retry-After` came with it, and the JSON body (`Null` when none).
async fn send(request: RequestBuilder) -> (StatusCode, bool, Value) {
    let response = request.send().await.expect("the instance answers");
    let status = response.status();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn device_of(status: StatusCode, body: Value) -> Device {
    device(&sessiond_tests::app::Reply {
        status,
        content_type: "application/json".into(),
        body,
    })
}

/// When `instance` first acknowledged a write after `after`, since the load started.
fn first_write_ok_after(
    answers: &Mutex<Vec<Answer>>,
    instance: &str,
    after: Duration,
) -> Option<Duration> {
    answers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|a| {
            a.instance == instance && a.is_write() && a.status == StatusCode::OK && a.at > after
        })
        .map(|a| a.at)
}

/// The last answers, for a failure message.
fn tail(answers: &Mutex<Vec<Answer>>) -> Vec<Answer> {
    let answers = answers.lock().unwrap_or_else(PoisonError::into_inner);
    answers[answers.len().saturating_sub(8)..].to_vec()
}

async fn logout(app: &TestApp, device: &Device) -> StatusCode {
    app.call(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&device.access_token),
        None,
    )
    .await
    .status
}

/// Whether `app` accepts the device's access token (200) or refuses it (401); anything
/// else fails the test.
async fn accepts(app: &TestApp, device: &Device) -> bool {
    let reply = app
        .get("/api/v1/sessions/current", &device.access_token)
        .await;
    match reply.status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        other => panic!("GET /sessions/current answered {other}: {:?}", reply.body),
    }
}

/// Polls until no app accepts any of `devices`, for at most `within`.
async fn refused_within(apps: &[&TestApp], devices: &[Device], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut accepted = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            for device in devices {
                if accepts(app, device).await {
                    accepted.push(format!("{} on instance {i}", device.session_id));
                }
            }
        }
        if accepted.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "revoked sessions still accepted after {within:?}: {accepted:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An error and its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut said = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        said.push_str(": ");
        said.push_str(&cause.to_string());
        source = cause.source();
    }
    said
}

/// Counts the revocation listeners connected to the `sessiond` database.
fn listeners_sql() -> String {
    format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = 'sessiond' AND application_name = '{LISTENER_APPLICATION_NAME}'"
    )
}

/// How many instances listen for revocations on the server of `sql`.
async fn listeners(sql: &tokio_postgres::Client) -> i64 {
    sql.query_one(&listeners_sql(), &[])
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// The instance's `sessiond_revocations_applied_total`: revocations its feed heard first.
async fn applied(app: &TestApp) -> f64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("sessiond_revocations_applied_total ")
                .and_then(|value| value.trim().parse().ok())
        })
        .expect("sessiond_revocations_applied_total in /metrics")
}
