//! The administrators' reads among 100 000 users and 1 000 000 sessions (issue 19): the user
//! search (first page, a deep page by token, an e-mail prefix, role filters) and the
//! statistics, through the HTTP API, with the `EXPLAIN (ANALYZE, BUFFERS)` of each search
//! shape (the service's own statement, `PgUserRepository::explain_search`) and of the
//! statistics' reads. Writes its own section of `docs/BENCHMARKS.md` (`BENCH_ONLY=admin`
//! runs it alone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use sessiond_domain::model::{EmailPrefix, Role, UserFilter, UserId, UserPosition};
use sessiond_postgres::PgUserRepository;
use sessiond_postgres::statistics::{READ_HOURS, READ_OPEN};
use time::OffsetDateTime;
use tokio::runtime::Handle;

use crate::env::{plan, rows, scalar};
use crate::fixture::Fixture;
use crate::load::{self, GetWithAuth, Outcome, Plan, Stop};
use crate::report::{Report, Row};
use crate::{IPHONE, scenarios};

const USERS: u64 = 100_000;
const SESSIONS_PER_USER: u64 = 10;
const ADMIN_EMAIL: &str = "bench-admin@example.com";

/// 1 000 requests on one connection after a short warm-up.
async fn timed(clients: &Handle, fixture: &Fixture, token: &HeaderValue, path: &str) -> Outcome {
    let headers = Arc::new(vec![token.clone()]);
    let addr = fixture.addr;
    let uri = path.to_owned();
    let outcome = load::run_on(
        clients,
        addr,
        Plan {
            connections: 1,
            warm_up: Duration::from_millis(300),
            stop: Stop::Requests(1_000),
        },
        move |w| GetWithAuth::new(addr, &uri, headers.clone(), w, 1),
    )
    .await
    .unwrap();
    assert_eq!(outcome.errors, 0, "{path}: {}", outcome.failures());
    outcome
}

/// The users and sessions: roles 89 % guest, 10 % hotel employee, 1 % vendor admin; one user
/// in 50 disabled; created a second apart. Each user has 10 sessions opened over the last 24
/// hours, 7 live and 3 ended, for reasons in turn.
async fn load_population(sql: &tokio_postgres::Client, cheap_hash: &str) -> anyhow::Result<f64> {
    let t = Instant::now();
    sql.batch_execute(&format!(
        "INSERT INTO users (id, email, password_hash, role, is_active, created_at, updated_at) \
         SELECT gen_random_uuid(), 'staff-' || i || '@example.com', 'x', \
             CASE WHEN i % 100 = 0 THEN 'vendor_admin' WHEN i % 10 = 1 THEN 'hotel_employee' \
                  ELSE 'guest' END, \
             i % 50 <> 0, now() - i * interval '1 second', now() - i * interval '1 second' \
         FROM generate_series(1, {USERS}) AS i; \
         INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         VALUES (gen_random_uuid(), '{ADMIN_EMAIL}', '{cheap_hash}', 'system_admin', now(), now()); \
         INSERT INTO user_sessions (id, user_id, device_info, ip_address, user_agent, created_at, \
             last_activity, expires_at, is_active, invalidated_at, invalidation_reason, role, \
             browser, refresh_token_hash) \
         SELECT gen_random_uuid(), u.id, 'iPhone', '198.51.100.7', '{IPHONE}', t.at, t.at, \
             t.at + interval '2 days', s <= 7, \
             CASE WHEN s > 7 THEN t.at + interval '1 minute' END, \
             CASE WHEN s > 7 THEN (ARRAY['user_logout', 'ended_from_other_device', \
                 'user_logout_all', 'max_sessions_exceeded', 'password_changed', 'role_changed', \
                 'account_disabled', 'admin_revoked', 'refresh_token_reuse', \
                 'expired'])[1 + (s + get_byte(uuid_send(u.id), 0)) % 10] END, \
             u.role, 'Safari', sha256(convert_to(u.id::text || s::text, 'UTF8')) \
         FROM (SELECT id, email, role FROM users WHERE email LIKE 'staff-%') AS u, \
             generate_series(1, {SESSIONS_PER_USER}) AS s, \
             LATERAL (SELECT now() - random() * interval '23 hours' AS at) AS t; \
         ANALYZE"
    ))
    .await?;
    Ok(t.elapsed().as_secs_f64())
}

/// The position of the user `offset` places down the unfiltered list, as a page token.
async fn token_at(sql: &tokio_postgres::Client, offset: u64) -> anyhow::Result<String> {
    let row = rows(
        sql,
        &format!(
            "SELECT (extract(epoch FROM created_at) * 1000000)::bigint, id FROM users \
             ORDER BY created_at DESC, id DESC OFFSET {offset} LIMIT 1"
        ),
    )
    .await?
    .pop()
    .ok_or_else(|| anyhow::anyhow!("no user at {offset}"))?;
    let micros: i128 = row[0].parse()?;
    Ok(UserPosition {
        created_at: OffsetDateTime::from_unix_timestamp_nanos(micros * 1000)?,
        id: UserId::from_uuid(row[1].parse()?),
    }
    .to_token())
}

/// One search shape: its query string and its filter for `EXPLAIN`.
struct Shape {
    name: &'static str,
    query: String,
    filter: UserFilter,
    after: Option<UserPosition>,
}

/// Sets the population up, signs the administrator in, measures and writes the section.
pub async fn run(clients: &Handle, fixture: &Fixture) -> anyhow::Result<()> {
    let sql = &fixture.sql;
    let insert_secs = load_population(sql, fixture.passwords.cheap_hash.as_str()).await?;
    let users: u64 = scalar(sql, "SELECT count(*) FROM users").await?;
    let sessions: u64 = scalar(sql, "SELECT count(*) FROM user_sessions").await?;

    let token = scenarios::signed_in(clients, fixture.addr, ADMIN_EMAIL, 1).await?;

    let deep_offset = 90_000;
    let deep = token_at(sql, deep_offset).await?;
    let deep_position = UserPosition::from_token(&deep)?;
    let shapes = [
        Shape {
            name: "first page (no filter)",
            query: "page_size=20".into(),
            filter: UserFilter::default(),
            after: None,
        },
        Shape {
            name: "deep page by token (after 90 000 users)",
            query: format!("page_size=20&page_token={deep}"),
            filter: UserFilter::default(),
            after: Some(deep_position),
        },
        Shape {
            name: "e-mail prefix `staff-777` (111 matches)",
            query: "page_size=20&email=STAFF-777".into(),
            filter: UserFilter {
                email_prefix: EmailPrefix::parse("staff-777")?,
                ..UserFilter::default()
            },
            after: None,
        },
        Shape {
            name: "e-mail prefix `s` (all staff: the prefix matches 100 000)",
            query: "page_size=20&email=s".into(),
            filter: UserFilter {
                email_prefix: EmailPrefix::parse("s")?,
                ..UserFilter::default()
            },
            after: None,
        },
        Shape {
            name: "role vendor_admin (1 000 users)",
            query: "page_size=20&role=vendor_admin".into(),
            filter: UserFilter {
                role: Some(Role::VendorAdmin),
                ..UserFilter::default()
            },
            after: None,
        },
        Shape {
            name: "role guest, disabled (1 800 users)",
            query: "page_size=20&role=guest&is_active=false".into(),
            filter: UserFilter {
                role: Some(Role::Guest),
                is_active: Some(false),
                ..UserFilter::default()
            },
            after: None,
        },
    ];

    let setup = format!(
        "sessiond (release, in-process, PostgreSQL + Redis) among {users} users and {sessions} \
         sessions (bulk SQL in {insert_secs:.0} s, the statistics' triggers on); each figure \
         1 000 requests on one connection after a warm-up"
    );
    let mut report = Report::admin(setup);
    let directory = PgUserRepository::new(fixture.pool.clone());
    for shape in &shapes {
        let outcome = timed(
            clients,
            fixture,
            &token,
            &format!("/api/v1/admin/users?{}", shape.query),
        )
        .await;
        let plan = directory
            .explain_search(&shape.filter, shape.after, 21)
            .await?;
        let flat = !plan.contains("Seq Scan") && !plan.contains("Bitmap Heap Scan on users");
        report.row(Row::target(
            format!("search: GET /api/v1/admin/users, {}, p50 / p99", shape.name),
            format!("{:.2} / {:.2} ms", outcome.ms(0.5), outcome.ms(0.99)),
            "an index, no scan of the users",
            flat,
        ));
        report.plan(&format!("search, {}", shape.name), &plan);
    }

    let stats = timed(clients, fixture, &token, "/api/v1/admin/stats").await;
    let counter_rows: u64 = scalar(
        sql,
        "SELECT (SELECT count(*) FROM session_stats_open) \
             + (SELECT count(*) FROM session_stats_hourly)",
    )
    .await?;
    report.row(Row::target(
        "statistics: GET /api/v1/admin/stats, p50 / p99".into(),
        format!(
            "{:.2} / {:.2} ms ({counter_rows} counter rows for {sessions} sessions)",
            stats.ms(0.5),
            stats.ms(0.99)
        ),
        "< 5 ms, flat in the sessions",
        stats.ms(0.5) < 5.0,
    ));
    let since = "date_trunc('hour', now(), 'UTC') - interval '23 hours'";
    let analyze = "EXPLAIN (ANALYZE, BUFFERS)";
    let mut open_plan = plan(sql, &format!("{analyze} {READ_OPEN}")).await?;
    open_plan.push_str("\n\n");
    let hours = READ_HOURS.replace("$1", since);
    open_plan.push_str(&plan(sql, &format!("{analyze} {hours}")).await?);
    report.plan("statistics' two reads (READ_OPEN, READ_HOURS)", &open_plan);
    report.note(
        "The statistics read counters kept by triggers on `user_sessions` (migration 000013): \
         a few rows per backend and hour, whatever the number of sessions; cleanup folds them."
            .into(),
    );
    report.finish()
}
