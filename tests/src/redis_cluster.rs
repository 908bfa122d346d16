//! Redis Clusters for tests, started by `scripts/redis-cluster.sh`: 3 primaries and 3
//! replicas on free ports, no persistence.
//!
//! - [`RedisCluster::start`]: a cluster of a test's own, for tests that kill, pause or fail
//!   over nodes; dropping it stops every node and removes its directory.
//! - [`shared_cluster_urls`]: the cluster that tests which only read and write share, each
//!   under its own key prefix: `TEST_REDIS_CLUSTER_URLS` when set (`make test` starts one
//!   for the whole run), else one started on first use for this test process, which the
//!   script stops once the process has exited.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The script that starts and stops the clusters.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/redis-cluster.sh")
}

/// A cluster owned by a test (or, for the shared one, by the test process).
#[derive(Debug)]
pub struct RedisCluster {
    dir: PathBuf,
    ports: Vec<u16>,
    /// Stopped on drop; the process-wide shared cluster is stopped by the script's
    /// watchdog instead (statics are never dropped).
    stop_on_drop: bool,
}

impl RedisCluster {
    /// Starts a cluster of 3 primaries and 3 replicas and waits until it serves every slot
    /// and the replicas are in sync.
    pub fn start() -> Self {
        Self::start_inner(true)
    }

    fn start_inner(stop_on_drop: bool) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sessiond-redis-cluster-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let output = Command::new(script())
            .arg("start")
            .arg(&dir)
            .arg(std::process::id().to_string())
            .output()
            .expect("scripts/redis-cluster.sh runs");
        let cluster = Self {
            ports: String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect(),
            dir,
            stop_on_drop,
        };
        assert!(
            output.status.success() && cluster.ports.len() == 6,
            "the Redis Cluster did not start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        cluster
    }

    /// Every node's URL: the seed list for `REDIS_CLUSTER_URLS`.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// Every node's port, as started (primaries first; failovers change the roles).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `redis-cli -p <port> <args>`'s output (empty when the node does not answer).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The node that serves `key`'s slot now, as `node` sees it.
    pub fn primary_of_key(&self, node: u16, key: &str) -> u16 {
        let slot: u16 = self
            .cli(node, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        self.nodes(node)
            .into_iter()
            .find(|n| n.primary && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|n| n.port)
            .expect("a primary serves every slot")
    }

    /// The replica of `primary`, as `node` sees it.
    pub fn replica_of(&self, node: u16, primary: u16) -> u16 {
        let nodes = self.nodes(node);
        let id = nodes
            .iter()
            .find(|n| n.port == primary)
            .map(|n| n.id.clone())
            .expect("the primary is known");
        nodes
            .into_iter()
            .find(|n| n.replica_of.as_deref() == Some(id.as_str()))
            .map(|n| n.port)
            .expect("the primary has a replica")
    }

    /// Whether `port` is a primary serving slots, as `node` sees it.
    pub fn is_primary(&self, node: u16, port: u16) -> bool {
        self.nodes(node)
            .iter()
            .any(|n| n.port == port && n.primary && !n.failed && !n.slots.is_empty())
    }

    /// `CLUSTER NODES` as `node` sees it.
    fn nodes(&self, node: u16) -> Vec<Node> {
        self.cli(node, &["CLUSTER", "NODES"])
            .lines()
            .filter_map(Node::parse)
            .collect()
    }

    /// SIGKILLs the node on `port`: its data and scripts are gone.
    pub fn kill(&self, port: u16) {
        self.signal(port, "-KILL");
    }

    /// Freezes the node on `port` (SIGSTOP): its sockets stay open, nothing answers.
    pub fn pause(&self, port: u16) {
        self.signal(port, "-STOP");
    }

    /// Thaws a node frozen by [`Self::pause`].
    pub fn resume(&self, port: u16) {
        self.signal(port, "-CONT");
    }

    fn signal(&self, port: u16, signal: &str) {
        let pid = std::fs::read_to_string(self.dir.join(port.to_string()).join("pid"))
            .expect("the node's pid file");
        let status = Command::new("kill")
            .args([signal, pid.trim()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Waits until every node in `alive` says `cluster_state:ok` and `check` holds (as
    /// seen from the first of them), for up to `within`; returns how long it took.
    pub fn wait_until(
        &self,
        alive: &[u16],
        within: Duration,
        mut check: impl FnMut() -> bool,
    ) -> Duration {
        let started = Instant::now();
        while started.elapsed() < within {
            let ok = alive.iter().all(|port| {
                self.cli(*port, &["CLUSTER", "INFO"])
                    .lines()
                    .any(|line| line.trim() == "cluster_state:ok")
            });
            if ok && check() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster did not settle within {within:?}");
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        if self.stop_on_drop {
            let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
        }
    }
}

/// One line of `CLUSTER NODES`.
struct Node {
    id: String,
    port: u16,
    primary: bool,
    failed: bool,
    replica_of: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl Node {
    fn parse(line: &str) -> Option<Node> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?;
        let port = address
            .split('@')
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        let flags = fields.get(2)?;
        let slots = fields
            .iter()
            .skip(8)
            .filter(|range| !range.starts_with('['))
            .filter_map(|range| match range.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => range.parse().ok().map(|slot| (slot, slot)),
            })
            .collect();
        Some(Node {
            id: (*fields.first()?).to_owned(),
            port,
            primary: flags.contains("master"),
            failed: flags.contains("fail"),
            replica_of: Some(*fields.get(3)?)
                .filter(|master| *master != "-")
                .map(str::to_owned),
            slots,
        })
    }
}

/// The seed URLs of the cluster shared by the tests that only read and write (each under
/// a key prefix of its own): `TEST_REDIS_CLUSTER_URLS` (comma-separated) when set, else a
/// cluster started on first use in this process.
pub fn shared_cluster_urls() -> Vec<String> {
    static SHARED: OnceLock<Vec<String>> = OnceLock::new();
    SHARED
        .get_or_init(|| match std::env::var("TEST_REDIS_CLUSTER_URLS") {
            Ok(urls) if !urls.trim().is_empty() => urls
                .split(',')
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty())
                .collect(),
            // Not stopped on drop: the script stops it once this process exits, after
            // every test of the process had it.
            _ => RedisCluster::start_inner(false).urls(),
        })
        .clone()
}
