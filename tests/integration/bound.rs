//! The revocation bound holds under faults, with the near cache on (issue 13; SPEC §8).
//!
//! Three instances on one store, each validating from its near cache in steady state. A
//! test cuts instances off from PostgreSQL at their proxies (a blackhole holds every byte
//! and closes nothing, as a dead link does; a reset closes every connection) and asks each
//! instance over HTTP what it makes of a token: accepted (200), refused (401) or refused
//! while it cannot tell (503, failed closed). A revoked session must never be accepted once
//! the bound has passed; a live one keeps being accepted through an outage that no
//! revocation could have crossed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sessiond_domain::model::Role;
use sessiond_tests::app::{Device, WINDOWS};
use sessiond_tests::instances::{CONFIGURED_BOUND_MS, Cluster, Instance, REVOCATION_BOUND};
use sessiond_tests::tcp_proxy::Mode;

/// What an instance makes of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused,
    /// 503: the instance has failed closed.
    Unavailable,
}

async fn verdict(instance: &Instance, device: &Device) -> Verdict {
    let reply = instance.whoami(&device.access_token).await;
    match reply.status {
        StatusCode::OK => Verdict::Accepted,
        StatusCode::UNAUTHORIZED => Verdict::Refused,
        StatusCode::SERVICE_UNAVAILABLE => Verdict::Unavailable,
        other => panic!(
            "instance {}: GET /sessions/current answered {other}: {:?}",
            instance.name, reply.body
        ),
    }
}

/// `/health/ready`'s status on `instance`.
async fn readiness(instance: &Instance) -> StatusCode {
    instance.get("/health/ready", "").await.status
}

/// Waits until `instance` no longer accepts `device`, for at most `within`; returns how
/// long that took.
async fn not_accepted_within(instance: &Instance, device: &Device, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if verdict(instance, device).await != Verdict::Accepted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "instance {} still accepts a revoked session after {within:?}",
            instance.name
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A guest with two sessions, both validated on every instance (so each near cache holds
/// them): `doomed` is about to be revoked, `kept` stays live.
async fn two_warm_sessions(cluster: &Cluster) -> (Device, Device) {
    let (email, _) = cluster.create_user(Role::Guest).await;
    let doomed = cluster[1].login(&email, WINDOWS).await;
    let kept = cluster[1].login(&email, WINDOWS).await;
    for instance in &cluster.instances {
        assert_eq!(verdict(instance, &doomed).await, Verdict::Accepted);
        assert_eq!(verdict(instance, &kept).await, Verdict::Accepted);
    }
    (doomed, kept)
}

/// Longer than the bound with room to spare: every instance's feed has missed it.
/// `instance` ends `doomed` from `kept`'s device: a revocation answered 2xx.
async fn end_other_device(instance: &Instance, doomed: &Device, kept: &Device) {
    let ended = instance
        .delete(
            &format!("/api/v1/sessions/{}", doomed.session_id),
            &kept.access_token,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
}

/// Heals every link and waits until every instance has read the log on.
async fn heal_and_catch_up(cluster: &Cluster, doomed: &Device, kept: &Device) {
    cluster.heal().await;
    for instance in &cluster.instances {
        caught_up(instance, doomed, kept).await;
    }
}

/// Waits until `instance`, back in touch with PostgreSQL, has read the log on: it refuses
/// `doomed` and accepts `kept` again.
async fn caught_up(instance: &Instance, doomed: &Device, kept: &Device) {
    let deadline = Instant::now() + REVOCATION_BOUND * 5;
    while verdict(instance, doomed).await != Verdict::Refused
        || verdict(instance, kept).await != Verdict::Accepted
    {
        assert!(
            Instant::now() < deadline,
            "{} never caught up from the log",
            instance.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn past_the_bound() -> Duration {
    Duration::from_millis(u64::from(CONFIGURED_BOUND_MS) * 3)
}

/// Instance A is cut off from PostgreSQL (`fault`). Until a revocation is committed
/// elsewhere, the other instances' heartbeats vouch for A's caches and it keeps serving;
/// once B ends a session, A stops accepting it within the bound (it fails closed once a
/// heartbeat shows an entry it lacks: it cannot tell which sessions ended), and after the link is back it catches up from the
/// log: the session is refused as revoked and the live one accepted again.
async fn an_instance_cut_off_from_postgres_refuses_what_others_revoke(fault: Mode) {
    let cluster = Cluster::start(3).await;
    let (doomed, kept) = two_warm_sessions(&cluster).await;

    cluster[0].postgres.set_mode(fault);
    tokio::time::sleep(past_the_bound()).await;
    // Nothing was revoked: the outage signs nobody out on A.
    assert_eq!(verdict(&cluster[0], &kept).await, Verdict::Accepted);
    assert_eq!(verdict(&cluster[0], &doomed).await, Verdict::Accepted);
    assert_eq!(readiness(&cluster[0]).await, StatusCode::OK);

    end_other_device(&cluster[1], &doomed, &kept).await;
    let took = not_accepted_within(&cluster[0], &doomed, REVOCATION_BOUND).await;
    eprintln!("instance A stopped accepting the revoked session after {took:?}");
    for instance in &cluster.instances[1..] {
        assert_eq!(verdict(instance, &doomed).await, Verdict::Refused);
    }
    // B's tombstone may refuse it first; once B's heartbeat shows an entry that A lacks, A
    // cannot tell which session ended: it refuses every one within the bound, and says so.
    not_accepted_within(&cluster[0], &kept, REVOCATION_BOUND).await;
    assert_eq!(verdict(&cluster[0], &kept).await, Verdict::Unavailable);
    assert_eq!(
        readiness(&cluster[0]).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    for _ in 0..10 {
        assert_ne!(verdict(&cluster[0], &doomed).await, Verdict::Accepted);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    heal_and_catch_up(&cluster, &doomed, &kept).await;
    assert_eq!(readiness(&cluster[0]).await, StatusCode::OK);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_postgres_link_is_silently_blackholed_refuses_what_others_revoke() {
    an_instance_cut_off_from_postgres_refuses_what_others_revoke(Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_postgres_link_is_reset_refuses_what_others_revoke() {
    an_instance_cut_off_from_postgres_refuses_what_others_revoke(Mode::Reset).await;
}

/// PostgreSQL is away for every instance (an outage, a failover): nobody can revoke, so the
/// heartbeats vouch for every cache and validation goes on from them, for as long as it
/// lasts; sessions ended before the outage stay refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_instance_reaches_postgres_cached_sessions_keep_validating() {
    let cluster = Cluster::start(3).await;
    let (doomed, kept) = two_warm_sessions(&cluster).await;
    end_other_device(&cluster[2], &doomed, &kept).await;
    cluster
        .refused_within(
            &[&doomed.access_token],
            REVOCATION_BOUND,
            "before the outage",
        )
        .await;

    for instance in &cluster.instances {
        instance.postgres.set_mode(Mode::Blackhole);
    }
    let outage = Instant::now();
    while outage.elapsed() < past_the_bound() * 2 {
        for instance in &cluster.instances {
            assert_eq!(
                verdict(instance, &kept).await,
                Verdict::Accepted,
                "instance {} signed a live session out during the outage",
                instance.name
            );
            assert_ne!(verdict(instance, &doomed).await, Verdict::Accepted);
            assert_eq!(readiness(instance).await, StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back in touch: each feed reads on, and a session the caches miss is asked of
    // PostgreSQL again (while vouched, it was 503 rather than a wait on the dead link).
    heal_and_catch_up(&cluster, &doomed, &kept).await;
    cluster.stop().await;
}

/// Instance A's feed misses a revocation while its link is down and Redis is unreachable
/// too (no heartbeats): it must not serve from its near cache; when PostgreSQL comes back
/// it reads the log from where it stopped and refuses the session as revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_heartbeats_an_instance_cut_off_from_postgres_fails_closed() {
    let cluster = Cluster::start(2).await;
    let (doomed, kept) = two_warm_sessions(&cluster).await;
    cluster[0].postgres.set_mode(Mode::Reset);
    cluster[0].redis.set_mode(Mode::Reset);
    tokio::time::sleep(past_the_bound()).await;
    assert_eq!(verdict(&cluster[0], &kept).await, Verdict::Unavailable);
    assert_eq!(
        readiness(&cluster[0]).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    end_other_device(&cluster[1], &doomed, &kept).await;
    assert_eq!(verdict(&cluster[0], &doomed).await, Verdict::Unavailable);

    heal_and_catch_up(&cluster, &doomed, &kept).await;
    cluster.stop().await;
}

/// Two instances and two warm sessions; A (instance 0) cut off from PostgreSQL by a
/// blackhole, past the bound, and still accepting them: the heartbeats vouch for it.
async fn a_cut_off_and_vouched_for() -> (Cluster, Device, Device) {
    let cluster = Cluster::start(2).await;
    let (doomed, kept) = two_warm_sessions(&cluster).await;
    cluster[0].postgres.set_mode(Mode::Blackhole);
    tokio::time::sleep(past_the_bound()).await;
    assert_eq!(verdict(&cluster[0], &doomed).await, Verdict::Accepted);
    (cluster, doomed, kept)
}

/// The heartbeats vouch for what the instances have read, not for what has been committed:
/// when no feed reads a revocation (every instance slow on a loaded database, or, here, B's
/// feed held the moment the revocation's notification reaches it), no heartbeat shows it.
/// A, cut off from PostgreSQL and vouched for, must still refuse the session: B wrote a
/// tombstone to Redis before answering, and a vouched instance asks Redis, never its near
/// cache alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_that_no_feed_has_read_is_refused_by_a_vouched_instance() {
    let (cluster, doomed, kept) = a_cut_off_and_vouched_for().await;

    // B's feed hears of the revocation and is held there: its reads hang from then on.
    cluster[1]
        .postgres
        .hold_upstream_when_answered(b"sessiond_revocations");
    end_other_device(&cluster[1], &doomed, &kept).await;
    assert!(
        cluster[1]
            .postgres
            .wait_until_triggered(REVOCATION_BOUND)
            .await,
        "B's feed never heard of the revocation"
    );
    let took = not_accepted_within(&cluster[0], &doomed, REVOCATION_BOUND).await;
    eprintln!("A stopped accepting the revoked session after {took:?}");
    let watched = Instant::now();
    while watched.elapsed() < past_the_bound() * 2 {
        assert_ne!(
            verdict(&cluster[0], &doomed).await,
            Verdict::Accepted,
            "A accepted a session revoked {:?} ago",
            watched.elapsed() + took
        );
        // Nobody else can have revoked it: the vouch and Redis keep it validating.
        assert_eq!(verdict(&cluster[0], &kept).await, Verdict::Accepted);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    heal_and_catch_up(&cluster, &doomed, &kept).await;
    cluster.stop().await;
}

/// B is cut off from Redis: it can neither beat nor write tombstones, yet it revokes
/// through PostgreSQL. A, cut off from PostgreSQL, must not keep vouching on the strength of
/// B's old heartbeat: B falls silent half a bound after its last one, and A fails closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_falls_silent_in_the_heartbeats_withdraws_the_others_vouch() {
    let (cluster, doomed, kept) = a_cut_off_and_vouched_for().await;

    cluster[1].redis.set_mode(Mode::Reset);
    end_other_device(&cluster[1], &doomed, &kept).await;
    let took = not_accepted_within(&cluster[0], &doomed, REVOCATION_BOUND).await;
    eprintln!("A stopped accepting the revoked session after {took:?}");
    // A cannot tell which session ended: it refuses every one, and says so.
    not_accepted_within(&cluster[0], &kept, REVOCATION_BOUND).await;
    assert_eq!(verdict(&cluster[0], &kept).await, Verdict::Unavailable);
    assert_eq!(
        readiness(&cluster[0]).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    heal_and_catch_up(&cluster, &doomed, &kept).await;
    cluster.stop().await;
}

/// An instance that stops (a deploy) during a PostgreSQL outage says so in its final
/// heartbeat: the others do not count its silence against their vouch, and keep validating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_stops_during_an_outage_leaves_the_others_vouched_for() {
    let mut cluster = Cluster::start(3).await;
    let (_, kept) = two_warm_sessions(&cluster).await;
    for instance in &cluster.instances {
        instance.postgres.set_mode(Mode::Blackhole);
    }
    tokio::time::sleep(past_the_bound()).await;
    let stopped = cluster.instances.pop().expect("three instances");
    stopped.app.stop().await;
    let outage = Instant::now();
    while outage.elapsed() < past_the_bound() * 2 {
        for instance in &cluster.instances {
            assert_eq!(
                verdict(instance, &kept).await,
                Verdict::Accepted,
                "instance {} signed a live session out when another one stopped",
                instance.name
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.heal().await;
    cluster.stop().await;
}
