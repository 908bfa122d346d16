//! Sign-in and refresh through the API: sign-ins per second at the cheap and the default
//! argon2 cost, what sessiond adds to the hash, and refresh rotations per second.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessiond_argon2::Argon2Hasher;
use sessiond_domain::model::PasswordHash;
use sessiond_domain::ports::PasswordHasher;
use tokio::runtime::Handle;

use crate::fixture::Passwords;
use crate::load::{self, Plan, Stop};
use crate::report::{Report, Row};
use crate::{Knobs, scenarios};

/// Sign-ins through the API at the cheap cost (2 000, or one per bulk user if fewer) and at
/// the default cost (64), beside argon2 alone; returns the refresh tokens of the cheap
/// sign-ins.
pub async fn sign_ins(
    report: &mut Report,
    clients: &Handle,
    addr: SocketAddr,
    users: u64,
    passwords: &Passwords,
) -> anyhow::Result<Vec<String>> {
    let Passwords {
        password,
        cheap_hasher,
        default_hasher,
        cheap_hash,
        default_hash,
    } = passwords;
    // argon2 alone, one at a time (as one sign-in pays it) and on both cores at once.
    let time_verify = |hasher: &Argon2Hasher, hash: &PasswordHash, n| {
        let (hasher, hash, password) = (hasher.clone(), hash.clone(), password.clone());
        async move {
            let t = Instant::now();
            for _ in 0..n {
                assert!(hasher.verify(&password, &hash).await.unwrap());
            }
            t.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
        }
    };
    let cheap_ms = time_verify(cheap_hasher, cheap_hash, 200).await;
    let default_ms = time_verify(default_hasher, default_hash, 20).await;
    let t = Instant::now();
    let (a, b) = tokio::join!(
        time_verify(default_hasher, default_hash, 10),
        time_verify(default_hasher, default_hash, 10)
    );
    let _ = (a, b);
    let default_rate = 20.0 / t.elapsed().as_secs_f64();

    let sign_ins = 2_000u64.min(users);
    let collected = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&collected);
    let outcome = load::run_on(
        clients,
        addr,
        Plan {
            connections: 32,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(sign_ins),
        },
        move |w| scenarios::SignIn::new(addr, "bench-", w, 32, users, Arc::clone(&sink)),
    )
    .await?;
    let slow = load::run_on(
        clients,
        addr,
        Plan {
            connections: 2,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(64),
        },
        move |w| {
            scenarios::SignIn::new(
                addr,
                "bench-slow-",
                w,
                2,
                64,
                Arc::new(Mutex::new(Vec::new())),
            )
        },
    )
    .await?;
    let rate = outcome.rate();
    // Core-milliseconds per sign-in on this 2-core machine, minus the hash itself.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let core_ms = cores * 1000.0 / rate;
    report.row(Row::info(
        format!("sign-in/s, cheap argon2 (m=1024 KiB, t=1), 32 connections, {sign_ins} sign-ins"),
        format!(
            "{rate:.0}/s (p50 {:.1} ms, p99 {:.1} ms; errors {})",
            outcome.ms(0.5),
            outcome.ms(0.99),
            outcome.errors
        ),
    ));
    report.row(Row::info(
        "argon2 verify alone: cheap / default (m=19456 KiB, t=2, p=1)".into(),
        format!(
            "{cheap_ms:.2} ms / {default_ms:.1} ms each; default on {cores:.0} cores: {default_rate:.0}/s"
        ),
    ));
    report.row(Row::info(
        "sign-in minus hashing (what sessiond adds)".into(),
        format!(
            "{:.2} core-ms per sign-in ({core_ms:.2} core-ms per sign-in at {rate:.0}/s on {cores:.0} cores, minus {cheap_ms:.2} ms of cheap hash)",
            core_ms - cheap_ms
        ),
    ));
    report.row(Row::info(
        "sign-in/s at the default argon2 cost, 2 connections, 64 sign-ins".into(),
        format!(
            "{:.0}/s (p50 {:.0} ms; errors {}) — the hash is {:.0}% of it",
            slow.rate(),
            slow.ms(0.5),
            slow.errors,
            100.0 * (default_ms / 1000.0 * slow.rate() / cores).min(1.0)
        ),
    ));
    let tokens = collected.lock().unwrap().clone();
    Ok(tokens)
}

/// Refresh rotations through the API for `knobs.duration`, each of 32 connections rotating
/// its share of `tokens`.
pub async fn refreshes(
    report: &mut Report,
    clients: &Handle,
    addr: SocketAddr,
    tokens: Vec<String>,
    knobs: Knobs,
) -> anyhow::Result<()> {
    let connections = 32usize;
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); connections];
    for (i, token) in tokens.into_iter().enumerate() {
        shares[i % connections].push(token);
    }
    let shares = Arc::new(Mutex::new(shares));
    let outcome = load::run_on(
        clients,
        addr,
        Plan {
            connections,
            warm_up: Duration::from_secs(1),
            stop: Stop::After(knobs.duration),
        },
        move |w| {
            let mine = std::mem::take(&mut shares.lock().unwrap()[w]);
            scenarios::Refresh::new(addr, mine)
        },
    )
    .await?;
    report.row(Row::info(
        "refresh rotations/s, 32 connections".into(),
        format!(
            "{:.0}/s (p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms; errors {})",
            outcome.rate(),
            outcome.ms(0.5),
            outcome.ms(0.99),
            outcome.ms(0.999),
            outcome.errors
        ),
    ));
    Ok(())
}
