//! What verifying an access token costs, per algorithm (issue 17): `JwtCodec::decode` (the
//! one-pass signature check and the claims' parse, what every authenticated request pays)
//! and `JwtCodec::encode` (what a sign-in or a refresh pays), for HS256, ES256 and EdDSA side
//! by side on one thread, with their ratios to HS256. CPU only: no server, no store; run
//! alone with `BENCH_ONLY=token-verify`, and in `make bench` while the servers are idle.
//!
//! Each algorithm gets a codec as sessiond builds it (a current key and a previous one, so
//! the verifier has a choice to make), 1 024 distinct tokens, a warm-up, then as many
//! decodes (and encodes) as fit in `BENCH_TOKEN_MS` milliseconds (1 000), the best of
//! `BENCH_ROUNDS` rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sessiond_domain::model::{AccessClaims, Role, SessionId, UserId};
use sessiond_domain::ports::TokenCodec;
use sessiond_jwt::testing::key_pair;
use sessiond_jwt::{
    AsymmetricAlgorithm, JwtCodec, JwtSettings, PrivateKey, PublicKey, SigningKey, TokenKeys,
};

use crate::report::{Report, Row};
use crate::{JWT_SECRET, knob, now};

const TOKENS: usize = 1_024;

/// Nanoseconds per call of each operation, for one algorithm.
#[derive(Debug, Clone, Copy)]
struct Cost {
    verify_ns: f64,
    sign_ns: f64,
}

/// Measures and writes the section (blocking: run it on a blocking thread or before the
/// runtimes start).
pub fn run() -> anyhow::Result<()> {
    let budget = Duration::from_millis(knob("BENCH_TOKEN_MS", 1_000).max(50));
    let rounds = knob("BENCH_ROUNDS", 3).max(1);
    let mut report = Report::tokens(format!(
        "one thread, `JwtCodec` as sessiond builds it (current key + one previous), {TOKENS} distinct tokens, the best of {rounds} rounds of {} ms per operation; {} build",
        budget.as_millis(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    ));
    let algorithms: [(&str, Option<AsymmetricAlgorithm>); 3] = [
        ("HS256", None),
        ("ES256", Some(AsymmetricAlgorithm::Es256)),
        ("EdDSA", Some(AsymmetricAlgorithm::EdDsa)),
    ];
    let mut costs = Vec::new();
    for (name, algorithm) in algorithms {
        let codec = codec(algorithm)?;
        let cost = (0..rounds)
            .map(|_| measure(&codec, budget))
            .collect::<anyhow::Result<Vec<Cost>>>()?
            .into_iter()
            .reduce(|best, round| Cost {
                verify_ns: best.verify_ns.min(round.verify_ns),
                sign_ns: best.sign_ns.min(round.sign_ns),
            })
            .unwrap_or(Cost {
                verify_ns: f64::NAN,
                sign_ns: f64::NAN,
            });
        costs.push((name, cost));
    }
    let hs256 = costs[0].1;
    for (name, cost) in &costs {
        report.row(Row::info(
            format!("access token, {name}: verify (`decode`) and sign (`encode`), one thread"),
            format!(
                "verify {} ({:.0} k/s; {:.1} × HS256), sign {} ({:.0} k/s; {:.1} × HS256)",
                micros(cost.verify_ns),
                1e6 / cost.verify_ns,
                cost.verify_ns / hs256.verify_ns,
                micros(cost.sign_ns),
                1e6 / cost.sign_ns,
                cost.sign_ns / hs256.sign_ns,
            ),
        ));
    }
    report.note(
        "Command: `BENCH_ONLY=token-verify cargo run --release -p sessiond-bench` (this section alone; `make bench` runs it too). Knobs: `BENCH_TOKEN_MS`, `BENCH_ROUNDS`. Code: `crates/sessiond-bench/src/token_verify.rs`.".into(),
    );
    report.finish()
}

fn micros(ns: f64) -> String {
    format!("{:.2} µs", ns / 1_000.0)
}

/// A codec of `algorithm` (HS256 when `None`) with a current and a previous key.
fn codec(algorithm: Option<AsymmetricAlgorithm>) -> anyhow::Result<JwtCodec> {
    let keys = match algorithm {
        None => TokenKeys::Hs256 {
            current: SigningKey {
                kid: "k2".into(),
                secret: SecretString::from(JWT_SECRET),
            },
            previous: vec![SigningKey {
                kid: "k1".into(),
                secret: SecretString::from(format!("{JWT_SECRET}-previous")),
            }],
        },
        Some(algorithm) => TokenKeys::Asymmetric {
            current: PrivateKey::from_pem("k2", algorithm, &key_pair(algorithm)?.private_pem)?,
            previous: vec![PublicKey::from_pem(
                "k1",
                algorithm,
                &key_pair(algorithm)?.public_pem,
            )?],
        },
    };
    Ok(JwtCodec::new(JwtSettings {
        keys,
        issuer: "sessiond".into(),
        audience: "sessiond".into(),
        leeway_seconds: 5,
    })?)
}

/// One round: decodes, then encodes, each for `budget`.
fn measure(codec: &JwtCodec, budget: Duration) -> anyhow::Result<Cost> {
    let at = now();
    let claims: Vec<AccessClaims> = (0..TOKENS)
        .map(|_| AccessClaims {
            user_id: UserId::from_uuid(uuid::Uuid::new_v4()),
            session_id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            role: Role::Guest,
            issued_at: at,
            expires_at: at + time::Duration::minutes(15),
            token_id: uuid::Uuid::new_v4(),
        })
        .collect();
    let tokens = claims
        .iter()
        .map(|claims| codec.encode(claims))
        .collect::<Result<Vec<String>, _>>()?;
    // Every token must verify, or the figure would time a refusal.
    for token in &tokens {
        codec.decode(token, at)?;
    }
    let verify_ns = timed(budget, tokens.len(), |i| {
        black_box(codec.decode(black_box(&tokens[i]), at)).is_ok()
    });
    let sign_ns = timed(budget, claims.len(), |i| {
        black_box(codec.encode(black_box(&claims[i]))).is_ok()
    });
    Ok(Cost { verify_ns, sign_ns })
}

/// Nanoseconds per call of `call` over indexes `0..count`, round robin, for `budget` (after
/// a tenth of it to warm up).
fn timed(budget: Duration, count: usize, call: impl Fn(usize) -> bool) -> f64 {
    let run = |budget: Duration| {
        let started = Instant::now();
        let mut calls = 0_u64;
        let mut failures = 0_u64;
        while started.elapsed() < budget {
            // The clock is read once per 64 calls: HS256 takes about a microsecond.
            for _ in 0..64 {
                if !call(calls as usize % count) {
                    failures += 1;
                }
                calls += 1;
            }
        }
        assert_eq!(failures, 0, "every call succeeds");
        started.elapsed().as_nanos() as f64 / calls as f64
    };
    run(budget / 10);
    run(budget)
}
