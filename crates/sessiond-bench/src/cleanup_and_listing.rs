//! Cleanup over 1 000 000 expired sessions (`PgSessionCleanup::run_pass`, the cleanup
//! job's own batches), and the listing latency of one user measured around it: it must not
//! grow with the sessions of others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use sessiond_domain::ports::SessionCleanup;
use sessiond_domain::service::CLEANUP_BATCH_SIZE as CLEANUP_BATCH;
use sessiond_postgres::{CleanupBatch, PgSessionCleanup};
use tokio::runtime::Handle;

use crate::env::{plan, scalar};
use crate::fixture::Fixture;
use crate::load::{self, GetWithAuth, Outcome, Plan, Stop};
use crate::report::{Report, Row};
use crate::{IPHONE, now, scenarios};

async fn listing(
    clients: &Handle,
    addr: SocketAddr,
    token: &HeaderValue,
) -> anyhow::Result<Outcome> {
    let headers = Arc::new(vec![token.clone()]);
    load::run_on(
        clients,
        addr,
        Plan {
            connections: 1,
            warm_up: Duration::from_millis(500),
            stop: Stop::Requests(1_000),
        },
        move |w| GetWithAuth::new(addr, "/api/v1/sessions", headers.clone(), w, 1),
    )
    .await
}

/// The listing user signs in five times; their listing is timed among the bulk sessions,
/// then among `expired` more sessions of other users (expired an hour ago, not yet ended),
/// then after the expire pass; the expire pass over them and a purge after retention are
/// timed; the plans of their batches and of the listing are shown.
pub async fn cleanup_and_listing(
    report: &mut Report,
    clients: &Handle,
    fixture: &Fixture,
    expired: u64,
) -> anyhow::Result<()> {
    let addr = fixture.addr;
    // The listing user: 5 sessions signed in through the API.
    let access = scenarios::signed_in(clients, addr, "bench-list@example.com", 5).await?;
    let small = listing(clients, addr, &access).await?;
    let small_rows: u64 = scalar(&fixture.sql, "SELECT count(*) FROM user_sessions").await?;

    // 1 000 000 sessions, expired an hour ago but not yet ended, over 100 000 users.
    let sql = &fixture.sql;
    let per_user = 10u64;
    let owners = expired.div_ceil(per_user);
    let t = Instant::now();
    sql.batch_execute(&format!(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT gen_random_uuid(), 'bench-old-' || i || '@example.com', 'x', 'guest', \
             now() - interval '3 days', now() - interval '3 days' \
         FROM generate_series(1, {owners}) AS i; \
         INSERT INTO user_sessions (id, user_id, device_info, ip_address, user_agent, created_at, \
             last_activity, expires_at, is_active, role, browser, refresh_token_hash) \
         SELECT gen_random_uuid(), u.id, 'iPhone', '198.51.100.7', '{IPHONE}', \
             now() - interval '25 hours', now() - interval '25 hours', \
             now() - interval '1 hour', true, 'guest', 'Safari', \
             sha256(convert_to(u.id::text || s::text, 'UTF8')) \
         FROM (SELECT id FROM users WHERE email LIKE 'bench-old-%') AS u, \
             generate_series(1, {per_user}) AS s \
         LIMIT {expired}; \
         ANALYZE"
    ))
    .await?;
    let inserted: u64 = scalar(sql, "SELECT count(*) FROM user_sessions").await?;
    let insert_secs = t.elapsed().as_secs_f64();
    let big = listing(clients, addr, &access).await?;
    let list_user: String = scalar(
        sql,
        "SELECT id FROM users WHERE email = 'bench-list@example.com'",
    )
    .await?;
    let list_plan = plan(
        sql,
        &format!(
            "EXPLAIN SELECT * FROM user_sessions WHERE user_id = '{list_user}' AND is_active \
             AND expires_at > now() ORDER BY last_activity DESC, created_at DESC, id"
        ),
    )
    .await?;

    let at = now();
    let cleanup = PgSessionCleanup::new(fixture.pool.clone());
    let expire_plan = cleanup
        .explain(CleanupBatch::Expire, at, CLEANUP_BATCH)
        .await?;
    let t = Instant::now();
    let pass = cleanup
        .run_pass(at, at - time::Duration::days(30), at, CLEANUP_BATCH)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the cleanup pass was skipped (lock held)"))?;
    let expire_secs = t.elapsed().as_secs_f64();
    let ended = pass.expired.len() as u64;
    sql.batch_execute("ANALYZE user_sessions").await?;
    let after_expire = listing(clients, addr, &access).await?;
    // "After retention": purge everything that ended before now.
    let purge_at = now();
    let purge_plan = cleanup
        .explain(CleanupBatch::Purge, purge_at, CLEANUP_BATCH)
        .await?;
    let t = Instant::now();
    let purge = cleanup
        .run_pass(purge_at, purge_at, purge_at, CLEANUP_BATCH)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the purge pass was skipped (lock held)"))?;
    let purge_secs = t.elapsed().as_secs_f64();

    let uses = |plan: &str, index: &str| plan.contains(index) && !plan.contains("Seq Scan");
    report.row(Row::target(
        format!("cleanup: end {ended} expired sessions (PgSessionCleanup::run_pass, batches of {CLEANUP_BATCH})"),
        format!("{expire_secs:.1} s ({:.0} rows/s; bulk insert took {insert_secs:.0} s)", ended as f64 / expire_secs),
        "< 30 s for 1 000 000",
        ended >= 1_000_000 && expire_secs < 30.0 && uses(&expire_plan, "idx_sessions_expiring"),
    ));
    report.row(Row::info(
        format!(
            "cleanup: purge {} ended sessions after retention",
            purge.purged
        ),
        format!(
            "{purge_secs:.1} s ({:.0} rows/s)",
            purge.purged as f64 / purge_secs
        ),
    ));
    let flat = small.ms(0.5) * 3.0 + 1.0;
    report.row(Row::target(
        "listing: GET /api/v1/sessions, user with 5 sessions, p50 / p99".into(),
        format!(
            "{:.2} / {:.2} ms among {small_rows} rows; {:.2} / {:.2} ms among {inserted} rows ({} expired-not-ended); {:.2} / {:.2} ms after the expire pass",
            small.ms(0.5),
            small.ms(0.99),
            big.ms(0.5),
            big.ms(0.99),
            expired,
            after_expire.ms(0.5),
            after_expire.ms(0.99),
        ),
        "O(sessions of the user)",
        big.ms(0.5) <= flat && after_expire.ms(0.5) <= flat && uses(&list_plan, "idx_sessions_user"),
    ));
    report.plan("expire batch (EXPIRE_BATCH), 1 000 000 due", &expire_plan);
    report.plan("purge batch (PURGE_BATCH), 1 000 000 ended", &purge_plan);
    report.plan(
        "listing (the diesel query of PgSessionRepository::list_live, as SQL)",
        &list_plan,
    );
    Ok(())
}
