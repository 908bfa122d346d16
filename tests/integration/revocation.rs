//! A revoked session stays revoked, on every instance (issue 12; SPEC §2, §3 invariants 2
//! and 7, §8), tried from outside as an attacker would.
//!
//! Every test runs a [`Cluster`]: two or three sessiond instances on one fresh PostgreSQL
//! database and one Redis keyspace, each with its own pool, cache and revocation feed, and
//! each behind proxies of its own. The bad interleaving of each case is made to happen on
//! purpose, not hoped for: a proxy holds one instance's cache write (or its sign-in
//! transaction) back until the revocation or the security event has returned, then lets it
//! land. The verdict is always HTTP: `GET /api/v1/sessions/current` answers 200 (accepted)
//! or 401 (refused) on each instance, within [`REVOCATION_BOUND`] (far above the configured
//! bound: the machine is a loaded 2-core box) and still after every held write has landed.
//!
//! What each test catches in the release before issue 12: unconditional Redis writes (a
//! refill, a refresh's or a sign-in's write that lands after the revocation resurrects the
//! session everywhere), removals that only the revoking instance retried (an instance cut
//! off from Redis left the entry for every other one to serve), a sign-in transaction that
//! did not read the user again (a disabled, demoted or re-passworded user kept a session
//! from a sign-in in flight), and reuse detection that only knew the previous refresh token.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sessiond_domain::model::Role;
use sessiond_tests::app::{Device, PASSWORD, Reply, WINDOWS, read};
use sessiond_tests::instances::{Cluster, Instance, REVOCATION_BOUND, device, jwt_claims};
use sessiond_tests::tcp_proxy::{Direction, Mode};
use tokio::task::JoinHandle;

/// How long a test waits for a proxy trigger or a store to reach a state it set up.
const SETUP_WAIT: Duration = Duration::from_secs(10);

/// Checks that follow a healed link: rounds × interval of "still refused".
const AFTERWARDS_ROUNDS: usize = 8;
const AFTERWARDS_EVERY: Duration = Duration::from_millis(100);

/// `POST /api/v1/auth/login` on `instance`, in the background.
fn spawn_sign_in(instance: &Instance, email: &str, password: &str) -> JoinHandle<Reply> {
    let request = instance
        .request(Method::POST, "/api/v1/auth/login")
        .header("user-agent", WINDOWS)
        .json(&json!({ "email": email, "password": password }));
    tokio::spawn(read(request))
}

/// `POST /api/v1/auth/refresh` on `instance`, in the background.
fn spawn_refresh(instance: &Instance, refresh_token: &str) -> JoinHandle<Reply> {
    let request = instance
        .request(Method::POST, "/api/v1/auth/refresh")
        .json(&json!({ "refresh_token": refresh_token }));
    tokio::spawn(read(request))
}

/// `GET /api/v1/sessions/current` on `instance`, in the background.
fn spawn_whoami(instance: &Instance, access_token: &str) -> JoinHandle<Reply> {
    let request = instance
        .request(Method::GET, "/api/v1/sessions/current")
        .bearer_auth(access_token);
    tokio::spawn(read(request))
}

/// Polls `condition` every few milliseconds for at most `within`.
async fn wait_until<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Issue 12, case 1.1: a burst of parallel sign-ins of a `hotel_employee` (max 2) over two
/// instances, while instance A's cache writes wait at its proxy until every sign-in has
/// committed (so each of them lands after the evictions that ended its session; the
/// command timeout is long, so A's writes are late, not failed). Afterwards exactly the
/// sessions PostgreSQL has live are accepted; after a password change only the changing
/// device; after the account is disabled, none.
///
/// Before the fix: A's late unconditional `SET`s resurrected every session of A that B's
/// sign-ins had evicted, and they kept working after the password change and the
/// deactivation (which only removed the keys of the rows they ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_sign_ins_leave_exactly_the_live_sessions_accepted_on_every_instance() {
    const SIGN_INS: usize = 40;
    let cluster = Cluster::builder(2)
        .command_timeout(Duration::from_secs(5))
        .start()
        .await;
    let admin = cluster.admin().await;
    let (email, user_id) = cluster.create_user(Role::HotelEmployee).await;
    // Both of A's HTTP workers have their Redis connection open before the link stalls.
    let warm: Vec<JoinHandle<Reply>> = (0..8)
        .map(|_| spawn_whoami(&cluster[0], &admin.access_token))
        .collect();
    for reply in join_all(warm).await {
        assert_eq!(reply.expect("the whoami task").status, StatusCode::OK);
    }

    cluster[0]
        .redis
        .set_direction(Direction::Upstream, Mode::Blackhole);
    let (on_a, on_b): (Vec<JoinHandle<Reply>>, Vec<JoinHandle<Reply>>) = (
        (0..SIGN_INS / 2)
            .map(|_| spawn_sign_in(&cluster[0], &email, PASSWORD))
            .collect(),
        (0..SIGN_INS / 2)
            .map(|_| spawn_sign_in(&cluster[1], &email, PASSWORD))
            .collect(),
    );
    // Every sign-in has committed (B's have answered; A's wait for their cache writes).
    let (sessions, user, b) = (&cluster, user_id.as_str(), &on_b);
    let committed = wait_until(Duration::from_secs(20), || async move {
        b.iter().all(JoinHandle::is_finished) && sessions.session_count(user).await >= SIGN_INS
    })
    .await;
    cluster.heal().await;
    let replies: Vec<Reply> = join_all(on_a.into_iter().chain(on_b))
        .await
        .into_iter()
        .map(|reply| reply.expect("the sign-in task"))
        .collect();
    assert!(committed, "the burst's sign-ins did not all commit");
    let mut devices = Vec::new();
    for (i, reply) in replies.iter().enumerate() {
        match reply.status {
            StatusCode::OK => devices.push(device(reply)),
            // Overload is a clean refusal (SPEC §3 invariant 6); it opens no session.
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("sign-in {i} answered {other}: {:?}", reply.body),
        }
    }
    assert!(
        devices.len() >= SIGN_INS / 2,
        "most sign-ins succeed ({} of {SIGN_INS})",
        devices.len()
    );

    let live = cluster.live_sessions(&user_id).await;
    assert_eq!(live.len(), 2, "max sessions holds: {live:?}");
    expect_exactly(&cluster, &devices, &live, "after the burst").await;

    // A password change ends every other session (SPEC §4).
    let changer = devices
        .iter()
        .find(|device| device.session_id == live[0])
        .expect("a device of a live session")
        .clone();
    let changed = cluster[1]
        .change_password(&changer, "a brand new passphrase")
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    let kept = vec![changer.session_id.clone()];
    assert_eq!(cluster.live_sessions(&user_id).await, kept);
    expect_exactly(&cluster, &devices, &kept, "after the password change").await;

    let disabled = cluster[0]
        .admin_update(&admin, &user_id, json!({ "is_active": false }))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);
    assert!(cluster.live_sessions(&user_id).await.is_empty());
    expect_exactly(&cluster, &devices, &[], "after the account was disabled").await;

    cluster.stop().await;
}

/// Waits (at most [`REVOCATION_BOUND`]) until, on every instance, exactly the devices of
/// `live` sessions are accepted, then checks once more that it holds.
async fn expect_exactly(cluster: &Cluster, devices: &[Device], live: &[String], when: &str) {
    let deadline = Instant::now() + REVOCATION_BOUND;
    let mut settled = false;
    loop {
        let mut wrong = Vec::new();
        for device in devices {
            let expected = live.contains(&device.session_id);
            for instance in &cluster.instances {
                if instance.accepts(&device.access_token).await != expected {
                    wrong.push(format!(
                        "{} {} on {}",
                        if expected { "refused" } else { "accepted" },
                        device.session_id,
                        instance.name
                    ));
                }
            }
        }
        if wrong.is_empty() {
            if settled {
                return;
            }
            settled = true;
            continue;
        }
        assert!(
            !settled && Instant::now() < deadline,
            "{when}: PostgreSQL has {live:?} live, but {} of {} checks disagree: {}",
            wrong.len(),
            devices.len() * cluster.instances.len(),
            wrong.join("; ")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 12, case 1.2: a refresh on instance A, whose Redis link is slow (80 ms), races an
/// administrator's revocation on instance B. The refresh's cache write is held at A's proxy
/// until the revocation has returned, then lands over the slow link (no timeout: the
/// instances' command timeout is long, so the write succeeds, late).
///
/// Before the fix: the late `SET` of the refreshed session overwrote the revocation, and
/// both the old and the refreshed access tokens were accepted on both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_refresh_write_over_a_slow_link_does_not_revive_a_revoked_session() {
    let cluster = Cluster::builder(2)
        .command_timeout(Duration::from_secs(3))
        .start()
        .await;
    let admin = cluster.admin().await;
    let (email, _) = cluster.create_user(Role::Guest).await;
    let session = cluster[0].login(&email, WINDOWS).await;
    assert!(cluster[0].accepts(&session.access_token).await);
    assert!(cluster[1].accepts(&session.access_token).await);

    let slow = Mode::Delay(Duration::from_millis(80));
    cluster[0].redis.set_mode(slow);
    // Whatever A writes to Redis from now on waits at the proxy.
    cluster[0]
        .redis
        .set_direction(Direction::Upstream, Mode::Blackhole);
    let refresh = spawn_refresh(&cluster[0], &session.refresh_token);
    let (sessions, id) = (&cluster, session.session_id.as_str());
    assert!(
        wait_until(SETUP_WAIT, || async move { sessions.rotated(id).await }).await,
        "the refresh on A never committed its rotation"
    );
    cluster[1].admin_revoke(&admin, &session.session_id).await;
    // A's writes go on, 80 ms late.
    cluster[0].redis.set_direction(Direction::Upstream, slow);

    let refreshed = refresh.await.expect("the refresh task");
    let mut tokens = vec![session.access_token.clone()];
    match refreshed.status {
        StatusCode::OK => tokens.push(device(&refreshed).access_token),
        StatusCode::UNAUTHORIZED => {}
        other => panic!("the refresh answered {other}: {:?}", refreshed.body),
    }
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    cluster
        .refused_within(&tokens, REVOCATION_BOUND, "revoked during a slow refresh")
        .await;
    assert!(
        cluster[0].redis.wait_until_drained(SETUP_WAIT).await,
        "A's delayed writes were delivered"
    );
    cluster
        .stay_refused(
            &tokens,
            AFTERWARDS_ROUNDS,
            AFTERWARDS_EVERY,
            "after the slow writes landed",
        )
        .await;
    cluster.stop().await;
}

/// Issue 12, case 1.3: a cache miss racing a logout. Instance A misses in Redis, reads the
/// live session from PostgreSQL, and its refill is held at the proxy (from the moment Redis
/// answers the miss) until the logout on instance B has returned; then it lands.
///
/// Before the fix: the refill was an unconditional `SET` of the session as it was before
/// the logout: the ended session came back on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_read_before_a_logout_and_written_after_it_does_not_revive_the_session() {
    let cluster = Cluster::start(2).await;
    let (email, user_id) = cluster.create_user(Role::Guest).await;
    let session = cluster[1].login(&email, WINDOWS).await;
    assert!(cluster[1].accepts(&session.access_token).await);

    // Nobody has the session cached any more: A's next read misses.
    cluster.evict(&user_id, &session.session_id);
    // A RESP nil (`$-1`) is the miss; everything A sends once it has seen it is held.
    cluster[0].redis.hold_upstream_when_answered(b"$-1\r\n");
    let validation = spawn_whoami(&cluster[0], &session.access_token);
    assert!(
        cluster[0].redis.wait_until_triggered(SETUP_WAIT).await,
        "A's read never missed in Redis"
    );
    // The refill (read from PostgreSQL before the logout) reaches the proxy, or A gives up
    // writing it.
    let (link, pending) = (&cluster[0].redis, &validation);
    wait_until(SETUP_WAIT, || async move {
        link.pending(Direction::Upstream) > 0 || pending.is_finished()
    })
    .await;

    let logout = cluster[1]
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&session.access_token),
            None,
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{:?}", logout.body);
    cluster[0].redis.restore();
    let validated = validation.await.expect("the validation task");
    assert!(
        matches!(validated.status, StatusCode::OK | StatusCode::UNAUTHORIZED),
        "{:?}",
        validated.body
    );

    let tokens = [session.access_token.as_str()];
    cluster
        .refused_within(&tokens, REVOCATION_BOUND, "logged out during a refill")
        .await;
    assert!(cluster[0].redis.wait_until_drained(SETUP_WAIT).await);
    cluster
        .stay_refused(
            &tokens,
            AFTERWARDS_ROUNDS,
            AFTERWARDS_EVERY,
            "after the refill landed",
        )
        .await;
    let row = cluster.session(&session.session_id).await.expect("the row");
    assert_eq!(row.reason.as_deref(), Some("user_logout"));
    cluster.stop().await;
}

/// SPEC §8: a Redis tombstone can vanish (a restart, a failover that loses acknowledged
/// writes) and a late write can then put the live session back. Every instance must still
/// refuse it, from what it remembers of the revocation log, whatever Redis holds. The lost
/// tombstone and the late write are made exact: the session's live value is copied aside
/// before the logout and copied back over the tombstone after it. An instance started
/// afterwards refuses it from its first request: it loads the log before it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_entry_back_in_redis_after_its_tombstone_was_lost_is_still_refused() {
    let mut cluster = Cluster::start(2).await;
    let (email, user_id) = cluster.create_user(Role::Guest).await;
    let session = cluster[1].login(&email, WINDOWS).await;
    assert!(cluster[0].accepts(&session.access_token).await);
    let key = cluster.session_key(&user_id, &session.session_id);
    let aside = format!("{key}:aside");
    assert_eq!(cluster.redis_cli(&["COPY", &key, &aside]).trim(), "1");

    let logout = cluster[1]
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&session.access_token),
            None,
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{:?}", logout.body);
    let tokens = [session.access_token.as_str()];
    cluster
        .refused_within(&tokens, REVOCATION_BOUND, "logged out")
        .await;

    // The tombstone is lost and the live value lands again, as a late write would.
    let put_back = |cluster: &Cluster| {
        assert_eq!(
            cluster.redis_cli(&["COPY", &aside, &key, "REPLACE"]).trim(),
            "1"
        );
    };
    let live_value =
        |cluster: &Cluster| cluster.redis_cli(&["STRLEN", &key]).trim().parse::<usize>();
    put_back(&cluster);
    assert!(
        live_value(&cluster).is_ok_and(|len| len > 1),
        "a live value, not a tombstone"
    );
    cluster
        .stay_refused(
            &tokens,
            AFTERWARDS_ROUNDS,
            AFTERWARDS_EVERY,
            "with the live value back in Redis",
        )
        .await;
    // Nothing wrote a tombstone again: the refusals came from the instances' memory.
    assert!(
        live_value(&cluster).is_ok_and(|len| len > 1),
        "still the live value"
    );

    // A new instance loads the log before it serves (and marks the session ended in Redis
    // again); with the live value put back once more, its first answer is still a refusal.
    cluster.join().await;
    put_back(&cluster);
    let reply = cluster[2].whoami(&session.access_token).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "a new instance's first answer: {:?}",
        reply.body
    );
    cluster.stop().await;
}

/// Issue 12, case 1.4: instance A's Redis link hangs (blackhole both ways: nothing answered,
/// nothing reset). A refreshes one session and signs another in; its cache writes time out
/// on A but wait in the proxy. Both sessions are revoked on instance B and refused. Then
/// the link recovers and the held writes execute.
///
/// Before the fix: the held `SET`s landed after the revocations and both sessions were
/// accepted again on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_timed_out_and_land_later_do_not_revive_sessions_revoked_meanwhile() {
    let cluster = Cluster::start(3).await;
    let admin = cluster.admin().await;
    let (email, _) = cluster.create_user(Role::Guest).await;
    let first = cluster[1].login(&email, WINDOWS).await;
    for instance in &cluster.instances {
        assert!(instance.accepts(&first.access_token).await);
    }

    cluster[0].redis.set_mode(Mode::Blackhole);
    let refreshed = cluster[0].refresh(&first.refresh_token).await;
    assert_eq!(
        refreshed.status,
        StatusCode::OK,
        "a hung cache does not stop a refresh: {:?}",
        refreshed.body
    );
    let refreshed = device(&refreshed);
    let second = device(&cluster[0].sign_in(&email, PASSWORD).await);

    cluster[1].admin_revoke(&admin, &first.session_id).await;
    cluster[1].admin_revoke(&admin, &second.session_id).await;
    let tokens = [
        first.access_token.as_str(),
        refreshed.access_token.as_str(),
        second.access_token.as_str(),
    ];
    cluster
        .refused_within(&tokens, REVOCATION_BOUND, "revoked while A's link hangs")
        .await;

    // The link recovers: every held command executes now.
    cluster.heal().await;
    cluster
        .stay_refused(
            &tokens,
            AFTERWARDS_ROUNDS,
            AFTERWARDS_EVERY,
            "after A's held writes executed",
        )
        .await;
    cluster.stop().await;
}

/// Issue 12, case 2: instance A, cut off from Redis, revokes a session that instances B and
/// C have cached. Every instance refuses it within the bound and for as long as the outage
/// lasts, and after it.
///
/// Before the fix: A queued the removal in its own process and answered 200; B and C kept
/// serving the cached entry for the whole outage.
async fn a_revocation_by_an_instance_cut_off_from_redis_reaches_every_instance(fault: Mode) {
    let cluster = Cluster::start(3).await;
    let (email, _) = cluster.create_user(Role::Guest).await;
    let target = cluster[1].login(&email, WINDOWS).await;
    let other = cluster[1].login(&email, WINDOWS).await;
    for instance in &cluster.instances {
        assert!(instance.accepts(&target.access_token).await);
    }

    cluster[0].redis.set_mode(fault);
    let ended = cluster[0]
        .delete(
            &format!("/api/v1/sessions/{}", target.session_id),
            &other.access_token,
        )
        .await;
    assert_eq!(
        ended.status,
        StatusCode::OK,
        "a revocation needs no Redis: {:?}",
        ended.body
    );
    let tokens = [target.access_token.as_str()];
    cluster
        .refused_within(&tokens, REVOCATION_BOUND, "revoked by a cut-off instance")
        .await;
    // The outage goes on: still refused everywhere.
    cluster
        .stay_refused(&tokens, 10, Duration::from_millis(100), "during the outage")
        .await;
    assert!(cluster[1].accepts(&other.access_token).await);

    cluster.heal().await;
    cluster
        .stay_refused(
            &tokens,
            AFTERWARDS_ROUNDS,
            AFTERWARDS_EVERY,
            "after the outage",
        )
        .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_by_an_instance_whose_redis_link_hangs_reaches_every_instance() {
    a_revocation_by_an_instance_cut_off_from_redis_reaches_every_instance(Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_by_an_instance_whose_redis_link_is_reset_reaches_every_instance() {
    a_revocation_by_an_instance_cut_off_from_redis_reaches_every_instance(Mode::Reset).await;
}

/// Which of the two commits of a sign-in racing a security event comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The sign-in verified the password, then the event commits, then the sign-in's
    /// transaction runs: the sign-in's `BEGIN` is held at its instance's PostgreSQL proxy.
    EventFirst,
    /// The sign-in's transaction has done its work and holds its locks; the event starts
    /// and waits for it: the sign-in's `COMMIT` is held until PostgreSQL shows the event
    /// waiting on a lock (or the event is done).
    SignInFirst,
}

/// A security event racing a sign-in: run on instance B, as `admin` or as another device.
type Event = Box<dyn FnOnce(&Cluster) -> JoinHandle<Reply> + Send>;

/// Signs `email` in on instance C with `password` while `event` runs on instance B, in
/// `order`; returns the sign-in's and the event's replies.
async fn sign_in_racing(
    cluster: &Cluster,
    email: &str,
    password: &str,
    order: Order,
    event: Event,
) -> (Reply, Reply) {
    let link = &cluster[2].postgres;
    match order {
        Order::EventFirst => link.hold_upstream_when_sent(b"BEGIN"),
        Order::SignInFirst => link.hold_upstream_when_sent(b"COMMIT"),
    }
    let sign_in = spawn_sign_in(&cluster[2], email, password);
    assert!(
        link.wait_until_triggered(SETUP_WAIT).await,
        "the sign-in never reached its transaction ({order:?})"
    );
    let event = event(cluster);
    let running = &event;
    if order == Order::SignInFirst {
        wait_until(SETUP_WAIT, || async move {
            running.is_finished() || cluster.lock_waiters().await > 0
        })
        .await;
    } else {
        assert!(
            wait_until(SETUP_WAIT, || async move { running.is_finished() }).await,
            "the event did not finish while the sign-in was held"
        );
        assert!(
            !sign_in.is_finished(),
            "the proxy held the sign-in until the event was done"
        );
    }
    link.restore();
    let sign_in = sign_in.await.expect("the sign-in task");
    let event = event.await.expect("the event task");
    assert!(event.status.is_success(), "the event: {:?}", event.body);
    (sign_in, event)
}

/// A sign-in that answered 200 opened a session that must not survive: it ends, every
/// instance refuses its token, and its refresh token is refused.
async fn assert_session_did_not_survive(cluster: &Cluster, reply: &Reply, what: &str) {
    let session = device(reply);
    let row = cluster
        .session(&session.session_id)
        .await
        .expect("the session's row");
    assert!(
        !row.live,
        "{what}: the sign-in's session is live in PostgreSQL: {row:?}"
    );
    cluster
        .refused_within(&[session.access_token.as_str()], REVOCATION_BOUND, what)
        .await;
    let refreshed = cluster[0].refresh(&session.refresh_token).await;
    assert_eq!(
        refreshed.status,
        StatusCode::UNAUTHORIZED,
        "{what}: the refresh token still works: {:?}",
        refreshed.body
    );
}

/// Issue 12, case 3.1: a sign-in in flight when an administrator disables the user, in
/// both orders. It gets 403 `account_disabled`, or its session ends with the others.
///
/// Before the fix: with the deactivation committed between the sign-in's password check and
/// its transaction, the sign-in answered 200 and its session stayed live (the disabled user
/// kept refreshing until the absolute lifetime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_racing_a_deactivation_leaves_no_live_session() {
    let cluster = Cluster::start(3).await;
    let admin = cluster.admin().await;
    for order in [Order::EventFirst, Order::SignInFirst] {
        let (email, user_id) = cluster.create_user(Role::Guest).await;
        let event: Event = {
            let admin = admin.clone();
            Box::new(move |cluster: &Cluster| {
                let request = cluster[1]
                    .request(Method::PATCH, &format!("/api/v1/admin/users/{user_id}"))
                    .bearer_auth(&admin.access_token)
                    .json(&json!({ "is_active": false }));
                tokio::spawn(read(request))
            })
        };
        let (sign_in, _) = sign_in_racing(&cluster, &email, PASSWORD, order, event).await;
        let what = format!("a sign-in racing a deactivation ({order:?})");
        match sign_in.status {
            StatusCode::FORBIDDEN => assert_eq!(sign_in.code(), "account_disabled", "{what}"),
            StatusCode::OK => assert_session_did_not_survive(&cluster, &sign_in, &what).await,
            other => panic!("{what}: answered {other}: {:?}", sign_in.body),
        }
    }
    cluster.stop().await;
}

/// Issue 12, case 3.2: a sign-in in flight while an administrator demotes a `system_admin`
/// to `hotel_employee`, in both orders. A session that survives carries the new role, in
/// the JWT and in `GET /sessions/current` on every instance.
///
/// Before the fix: the sign-in took the role it read before its transaction and opened a
/// live session that still said `system_admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_racing_a_demotion_carries_the_new_role() {
    let cluster = Cluster::start(3).await;
    let admin = cluster.admin().await;
    for order in [Order::EventFirst, Order::SignInFirst] {
        let (email, user_id) = cluster.create_user(Role::SystemAdmin).await;
        let event: Event = {
            let admin = admin.clone();
            Box::new(move |cluster: &Cluster| {
                let request = cluster[1]
                    .request(Method::PATCH, &format!("/api/v1/admin/users/{user_id}"))
                    .bearer_auth(&admin.access_token)
                    .json(&json!({ "role": "hotel_employee" }));
                tokio::spawn(read(request))
            })
        };
        let (sign_in, _) = sign_in_racing(&cluster, &email, PASSWORD, order, event).await;
        let what = format!("a sign-in racing a demotion ({order:?})");
        assert_eq!(sign_in.status, StatusCode::OK, "{what}: {:?}", sign_in.body);
        let session = device(&sign_in);
        let row = cluster
            .session(&session.session_id)
            .await
            .expect("the session's row");
        if !row.live {
            // Ended by the role change: fine, as long as it stays ended.
            assert_session_did_not_survive(&cluster, &sign_in, &what).await;
            continue;
        }
        assert_eq!(row.role, "hotel_employee", "{what}: the stored role");
        assert_eq!(
            jwt_claims(&session.access_token)["role"],
            "hotel_employee",
            "{what}: the access token's role"
        );
        for instance in &cluster.instances {
            let me = instance.whoami(&session.access_token).await;
            assert_eq!(me.status, StatusCode::OK, "{what}: {:?}", me.body);
            assert_eq!(
                me.body["user"]["role"], "hotel_employee",
                "{what}: the role on {}",
                instance.name
            );
        }
        let refreshed = device(&cluster[0].refresh(&session.refresh_token).await);
        assert_eq!(
            jwt_claims(&refreshed.access_token)["role"],
            "hotel_employee",
            "{what}: the refreshed token's role"
        );
    }
    cluster.stop().await;
}

/// Issue 12, case 3.3: a sign-in with the OLD password while the user changes it on
/// another device, in both orders. It gets 401 `invalid_credentials`, or its session ends
/// with the user's other sessions.
///
/// Before the fix: with the change committed between the sign-in's password check and its
/// transaction, the sign-in answered 200 and its session survived the change: an attacker
/// who loops sign-ins always wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_with_the_old_password_racing_a_password_change_leaves_no_live_session() {
    let cluster = Cluster::start(3).await;
    for order in [Order::EventFirst, Order::SignInFirst] {
        let (email, _) = cluster.create_user(Role::Guest).await;
        let owner = cluster[1].login(&email, WINDOWS).await;
        let event: Event = Box::new(move |cluster: &Cluster| {
            let request = cluster[1]
                .request(Method::POST, "/api/v1/users/me/password")
                .bearer_auth(&owner.access_token)
                .json(&json!({
                    "current_password": PASSWORD,
                    "new_password": "a brand new passphrase",
                }));
            tokio::spawn(read(request))
        });
        let (sign_in, _) = sign_in_racing(&cluster, &email, PASSWORD, order, event).await;
        let what = format!("a sign-in racing a password change ({order:?})");
        match sign_in.status {
            StatusCode::UNAUTHORIZED => {
                assert_eq!(sign_in.code(), "invalid_credentials", "{what}");
            }
            StatusCode::OK => assert_session_did_not_survive(&cluster, &sign_in, &what).await,
            other => panic!("{what}: answered {other}: {:?}", sign_in.body),
        }
    }
    cluster.stop().await;
}

/// Issue 12, case 4 (SPEC §2): refresh rt0 → rt1 → rt2 (on two instances), wait past the
/// grace window, present rt0: 401 `session_revoked`, the session ends with
/// `refresh_token_reuse` on every instance, and rt2 no longer works.
///
/// Before the fix: only rt1 (the previous token) counted as reuse; rt0 got 401
/// `refresh_token_invalid`, nothing was revoked and rt2 kept working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presenting_any_earlier_refresh_token_after_the_grace_window_ends_the_session() {
    let cluster = Cluster::builder(2)
        .configure(|_, settings| settings.sessions.refresh_grace = 1)
        .start()
        .await;
    let (email, _) = cluster.create_user(Role::Guest).await;
    let rt0 = cluster[0].login(&email, WINDOWS).await;
    let rt1 = cluster[0].refreshed(&rt0).await;
    let rt2 = cluster[1].refreshed(&rt1).await;
    // Past the grace window of the last rotation (1 s): a window of time, not a handshake.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let reused = cluster[1].refresh(&rt0.refresh_token).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "{:?}", reused.body);
    assert_eq!(reused.code(), "session_revoked", "{:?}", reused.body);
    let row = cluster
        .session(&rt0.session_id)
        .await
        .expect("the session's row");
    assert!(!row.is_active, "{row:?}");
    assert_eq!(row.reason.as_deref(), Some("refresh_token_reuse"));

    cluster
        .refused_within(
            &[rt2.access_token.as_str()],
            REVOCATION_BOUND,
            "revoked for refresh-token reuse",
        )
        .await;
    let refused = cluster[0].whoami(&rt2.access_token).await;
    assert_eq!(refused.body["reason"], "refresh_token_reuse");
    assert_eq!(
        cluster[0].refresh(&rt2.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    cluster.stop().await;
}
