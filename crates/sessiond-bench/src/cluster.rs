//! Validation on a Redis Cluster against the one-node figures, in one run (issue 14): a local
//! cluster of 3 primaries and 3 replicas (`scripts/redis-cluster.sh`, the tests' script), and
//! two more in-process sessiond instances on the bench's database, one with its cache on the
//! bench's redis-server and one on the cluster. Each validates the bulk sessions with the
//! near cache off (every validation one Redis `GET`: the cluster's own cost) and on (the
//! default: no Redis command in steady state), alternating, `BENCH_ROUNDS` rounds at 32
//! connections; the ratios are each round's, and their median.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use hyper::header::HeaderValue;
use tokio::runtime::Handle;

use crate::Knobs;
use crate::env::{BenchDatabase, RedisServer};
use crate::fixture::{self, CacheOn, Fixture, Instance};
use crate::load::{self, GetWithAuth, Plan, Stop};
use crate::report::{Report, Row};
use crate::validation::{Ratios, sweep};

const CONNECTIONS: usize = 32;
const CURRENT: &str = "/api/v1/sessions/current";

/// A Redis Cluster started by `scripts/redis-cluster.sh`, stopped when dropped.
struct LocalCluster {
    dir: PathBuf,
    seeds: Vec<String>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/redis-cluster.sh")
}

impl LocalCluster {
    fn start() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("sessiond-bench-cluster-{}", std::process::id()));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .arg(std::process::id().to_string())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "the Redis Cluster did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seeds = std::fs::read_to_string(dir.join("urls"))?
            .trim()
            .split(',')
            .map(str::to_owned)
            .collect();
        Ok(Self { dir, seeds })
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

/// Runs the comparison and writes its section of docs/BENCHMARKS.md.
pub async fn against_one_node(
    clients: &Handle,
    redis: &RedisServer,
    database: &BenchDatabase,
    fixture: &Fixture,
    knobs: Knobs,
) -> anyhow::Result<()> {
    let cluster = LocalCluster::start()?;
    eprintln!("bench: cluster: 6 nodes, seeds {}", cluster.seeds.join(","));
    let capacity = sessiond_app::Settings::default()
        .sessions
        .near_cache_capacity;
    // The four instances, by what the report calls them.
    let mut targets: Vec<(&str, Instance)> = Vec::new();
    for (name, on, near) in [
        ("one node, near cache off", CacheOn::Server(redis), 0),
        (
            "cluster, near cache off",
            CacheOn::Cluster(&cluster.seeds),
            0,
        ),
        ("one node, near cache on", CacheOn::Server(redis), capacity),
        (
            "cluster, near cache on",
            CacheOn::Cluster(&cluster.seeds),
            capacity,
        ),
    ] {
        let instance = fixture::start_instance_on(knobs, on, database, near).await?;
        // Every session read once: the cluster's cache filled from PostgreSQL, the near
        // caches filled.
        sweep(clients, instance.addr, &fixture.tokens).await?;
        targets.push((name, instance));
    }

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut best = vec![None; targets.len()];
    for round in 0..knobs.rounds {
        for (index, (name, instance)) in targets.iter().enumerate() {
            let outcome = run(clients, instance.addr, &fixture.tokens, knobs).await?;
            eprintln!(
                "bench: cluster round {round} {name}: {:.0} req/s ({:.0} answered 2xx), p99 {:.2} ms, errors {}",
                outcome.rate(),
                outcome.ok_rate(),
                outcome.ms(0.99),
                outcome.errors
            );
            rates[index].push(outcome.ok_rate());
            let better = best[index]
                .as_ref()
                .is_none_or(|b: &load::Outcome| outcome.ok_rate() > b.ok_rate());
            if better {
                best[index] = Some(outcome);
            }
        }
    }

    let mut report = Report::cluster(format!(
        "a local Redis Cluster (3 primaries, 3 replicas, `scripts/redis-cluster.sh`) beside the bench's redis-server; four in-process sessiond instances on the bench's database ({} actix workers each), one per row; {CONNECTIONS} connections, {} rounds of {} s, alternating; all on the same cores",
        knobs.server_workers,
        knobs.rounds,
        knobs.duration.as_secs()
    ));
    for ((name, _), outcome) in targets.iter().zip(&best) {
        if let Some(outcome) = outcome {
            report.throughput(&format!("validate, {name}"), CONNECTIONS, outcome);
        }
    }
    let off = Ratios::of(&rates[1], &rates[0]);
    report.row(Row::info(
        "cluster / one node, near cache off (every validation one Redis GET)".into(),
        off.describe(),
    ));
    let on = Ratios::of(&rates[3], &rates[2]);
    report.row(Row::info(
        "cluster / one node, near cache on (the default)".into(),
        on.describe(),
    ));
    for (_, instance) in targets {
        instance.stop().await;
    }
    drop(cluster);
    report.finish()
}

async fn run(
    clients: &Handle,
    addr: std::net::SocketAddr,
    tokens: &Arc<Vec<HeaderValue>>,
    knobs: Knobs,
) -> anyhow::Result<load::Outcome> {
    let headers = Arc::clone(tokens);
    load::run_on(
        clients,
        addr,
        Plan {
            connections: CONNECTIONS,
            warm_up: knobs.warm_up,
            stop: Stop::After(knobs.duration),
        },
        move |w| GetWithAuth::new(addr, CURRENT, headers.clone(), w, CONNECTIONS),
    )
    .await
}
