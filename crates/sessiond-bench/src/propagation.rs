//! Revocation propagation (SPEC §8, issues 12 and 13): how long after a revoke's 2xx every
//! instance refuses the session, at rest and under a validation load, with the near cache
//! on (its default capacity: nothing here sets `sessions.near_cache_capacity`), so that an
//! instance that validated the session holds it in its own memory and only the revocation
//! feed (or its own end) can take it out.
//!
//! Three `sessiond` processes (the release binary: `cargo build --release --bin sessiond`
//! is run first, unless `BENCH_SESSIOND_BIN` names a binary) serve the bench's database and
//! redis-server, each on a port of its own, with the default revocation bound (or
//! `SESSIOND_SESSIONS__REVOCATION_BOUND_MS` when set). `BENCH_PROPAGATION_REVOCATIONS`
//! (1 000) users `bench-prop-<n>@example.com` per phase (with the bulk users' cheap hash)
//! sign in through the API. Then, on a thread of its own (a current-thread runtime, so that
//! neither the load generator nor the servers delay a probe), for each session in turn:
//!
//! 1. its access token is validated on all three instances (each must answer 200: each
//!    now holds the live session, near cache and Redis included);
//! 2. `POST /api/v1/auth/logout` with it on instance 0; t0 is taken once the 2xx is read;
//! 3. the three instances are asked concurrently, each over a keep-alive connection of
//!    its own and back to back, `GET /api/v1/sessions/current` with the same token until
//!    each answers 401 (for at most [`PROBE_LIMIT`]). An instance's delay is t0 → the
//!    moment its first 401 is read: an upper bound, late by at most that last probe's
//!    round trip, which is reported as the resolution.
//!
//! The figure is the delay of the last of instances 1 and 2; instance 0, which revoked,
//! is reported beside it (any 200 it gives after its own 2xx is a broken invariant).
//! Under load, the bench's load generator validates the 10 000 bulk sessions on all
//! three instances (closed loop, [`LOAD_CONNECTIONS`] connections each) during the
//! whole phase. The processes are killed when the scenario ends, whatever its outcome.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::env::{BenchDatabase, RedisServer};
use crate::load::{self, GetWithAuth, Outcome, Plan, Stop};
use crate::modes::{Sampler, Samples};
use crate::report::{Report, Row};
use crate::{IPHONE, JWT_SECRET, Knobs, PASSWORD};

/// Revocations made and probed before the measured ones (connections, caches, the feed's
/// listener all warm).
const WARM_UP_REVOCATIONS: u64 = 50;
/// The load's connections per instance.
const LOAD_CONNECTIONS: usize = 8;
/// How long one instance is probed before the revocation counts as never refused.
const PROBE_LIMIT: Duration = Duration::from_secs(5);
/// A phase gives up after this many revocations that were never refused, or this long.
const MAX_UNREFUSED: u64 = 20;
const PHASE_LIMIT: Duration = Duration::from_secs(600);
/// SPEC §8's goal at rest, on one machine.
const GOAL_P99: Duration = Duration::from_millis(5);
const CURRENT: &str = "/api/v1/sessions/current";

/// Switches the validation load off.
static LOAD_ON: AtomicBool = AtomicBool::new(false);

/// Runs the scenario and writes its own section of `docs/BENCHMARKS.md`.
pub async fn run(
    clients: &Handle,
    redis: &RedisServer,
    database: &BenchDatabase,
    sql: &tokio_postgres::Client,
    load_tokens: Arc<Vec<HeaderValue>>,
    knobs: Knobs,
) -> anyhow::Result<()> {
    let revocations = crate::knob("BENCH_PROPAGATION_REVOCATIONS", 1_000).max(1);
    let bound_ms = std::env::var("SESSIOND_SESSIONS__REVOCATION_BOUND_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| {
            u64::from(
                sessiond_app::Settings::default()
                    .sessions
                    .revocation_bound_ms,
            )
        });
    let bound = Duration::from_millis(bound_ms);
    let binary = sessiond_binary().await?;

    // One user per revocation, signed in once.
    let users = WARM_UP_REVOCATIONS + 2 * revocations;
    sql.batch_execute(&format!(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT gen_random_uuid(), 'bench-prop-' || i || '@example.com', \
             (SELECT password_hash FROM users WHERE email = 'bench-0@example.com'), \
             'guest', now(), now() \
         FROM generate_series(0, {last}) AS i",
        last = users - 1
    ))
    .await?;

    let env = [
        ("DATABASE_URL", database.url.clone()),
        ("REDIS_URL", redis.url.clone()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("SESSIOND_HTTP__WORKERS", knobs.server_workers.to_string()),
        // The bulk users' cheap hash, as the in-process sessiond is configured.
        ("SESSIOND_ARGON2__MEMORY_KIB", "1024".to_owned()),
        ("SESSIOND_ARGON2__ITERATIONS", "1".to_owned()),
        ("SESSIOND_ARGON2__PARALLELISM", "1".to_owned()),
        ("SESSIOND_CLEANUP__INTERVAL", "0".to_owned()),
        // As for the in-process sessiond: no activity write falls due inside the run.
        ("SESSIOND_SESSIONS__ACTIVITY_INTERVAL", "600".to_owned()),
        (
            "SESSIOND_SESSIONS__REVOCATION_BOUND_MS",
            bound_ms.to_string(),
        ),
        // Every request is logged at `info`: that would be most of their work.
        ("RUST_LOG", "warn".to_owned()),
    ];
    // The deployment as it is: one Redis namespace. With the near cache on, instances 1
    // and 2 answer from it, and only the revocation feed removes an entry from it: the
    // figure is the feed's (Redis's tombstone serves only reads that miss the near cache).
    let mut instances = Instances::start(&binary, &env).await?;
    let addrs = instances.addrs();
    let metrics = instances.remote_metrics();
    let clients = clients.clone();
    let measured = on_own_thread(measure(
        addrs,
        metrics,
        clients.clone(),
        load_tokens,
        revocations,
    ))
    .await;
    instances.stop();
    let phases = measured?;

    let mut report = Report::propagation(format!(
        "3 sessiond processes ({}), {} actix workers each, the near cache on (`sessions.near_cache_capacity` = {}, the default), `sessions.revocation_bound_ms` = {bound_ms} (the log read every {} ms without notifications), on the bench's PostgreSQL database and redis-server; the probes on a thread of their own, the load generator on its own tokio runtime ({} threads); all on the same {} cores",
        binary.display(),
        knobs.server_workers,
        sessiond_app::Settings::default()
            .sessions
            .near_cache_capacity,
        bound_ms.max(4) / 4,
        knobs.client_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    for phase in &phases {
        phase.report(&mut report, bound);
    }
    report.note(
        "Measured: for each of the sessions (one per user, signed in through the API), validated on all three instances (200 from each), then `POST /api/v1/auth/logout` on instance 0; t0 = its 2xx read; then instances 0, 1 and 2 are asked `GET /api/v1/sessions/current` with the same token concurrently, each back to back on its own keep-alive connection, until each answers 401. The figure is t0 → the last 401 of instances 1 and 2 read, so it is late by at most one probe round trip (\"resolution\": that last probe's round trip). Sessions are revoked one at a time."
            .into(),
    );
    report.note(format!(
        "Under load: the bench's load generator validates the 10 000 bulk sessions (`GET {CURRENT}`, closed loop) on all three instances, {LOAD_CONNECTIONS} connections each, through the whole phase (1 s of it before the first revocation)."
    ));
    report.note(
        "Command: `BENCH_ONLY=propagation cargo run --release -p sessiond-bench` (this section alone; `make bench` runs it too, after everything else). Knobs: `BENCH_PROPAGATION_REVOCATIONS` (1 000 per phase), `BENCH_SESSIOND_BIN` (a sessiond binary instead of building one), `SESSIOND_SESSIONS__REVOCATION_BOUND_MS`."
            .into(),
    );
    report.note(
        "The bench's own in-process sessiond serves the same stores, idle: a fourth instance on the feed."
            .into(),
    );
    report.finish()
}

/// Runs `future` on a thread and current-thread runtime of its own, so that neither the
/// load generator nor the servers delay a probe.
async fn on_own_thread<T: Send + 'static>(
    future: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    let thread = std::thread::Builder::new()
        .name("bench-probe".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(future)
        })?;
    let result = tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the probe thread panicked"));
    LOAD_ON.store(false, Ordering::Relaxed);
    result?
}

/// The three processes.
#[derive(Debug)]
struct Instances(Vec<Instance>);

impl Instances {
    /// Starts three instances and waits until each is ready.
    async fn start(binary: &Path, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut instances = Self(Vec::with_capacity(3));
        for index in 0..3 {
            instances.0.push(Instance::start(binary, index, env)?);
        }
        for instance in &mut instances.0 {
            instance.ready().await?;
        }
        eprintln!(
            "bench: propagation: 3 sessiond processes at {:?} (logs: {})",
            instances.addrs(),
            instances
                .0
                .iter()
                .map(|i| i.log.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(instances)
    }

    fn addrs(&self) -> [SocketAddr; 3] {
        [self.0[0].addr, self.0[1].addr, self.0[2].addr]
    }

    /// The metrics listeners of instances 1 and 2 (the ones that hear of the revocations).
    fn remote_metrics(&self) -> [SocketAddr; 2] {
        [self.0[1].metrics, self.0[2].metrics]
    }

    fn stop(&mut self) {
        for instance in &mut self.0 {
            instance.stop();
        }
    }
}

/// The release `sessiond`: built now (a no-op when it is up to date), next to this binary.
async fn sessiond_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("BENCH_SESSIOND_BIN") {
        return Ok(PathBuf::from(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: propagation: {cargo} build --release --bin sessiond");
    let status = tokio::process::Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "--bin", "sessiond"])
        .status()
        .await?;
    anyhow::ensure!(status.success(), "cargo build --bin sessiond failed");
    let dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("target/release"));
    let binary = dir.join("sessiond");
    anyhow::ensure!(binary.exists(), "no {}", binary.display());
    Ok(binary)
}

/// A `sessiond serve` child process, killed (by its own handle) when stopped or dropped.
#[derive(Debug)]
struct Instance {
    child: Option<Child>,
    addr: SocketAddr,
    /// Its metrics listener (each its own free port: three on one machine).
    metrics: SocketAddr,
    log: PathBuf,
}

impl Instance {
    fn start(binary: &Path, index: usize, env: &[(&str, String)]) -> anyhow::Result<Self> {
        // Both held until both are picked, so that they differ.
        let api = TcpListener::bind("127.0.0.1:0")?;
        let scrape = TcpListener::bind("127.0.0.1:0")?;
        let (addr, metrics) = (api.local_addr()?, scrape.local_addr()?);
        drop((api, scrape));
        let log = std::env::temp_dir().join(format!(
            "sessiond-bench-{}-instance-{index}.log",
            std::process::id()
        ));
        let out = File::create(&log)?;
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let child = Command::new(binary)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("SESSIOND_CONFIG_DIR", config)
            .env("BIND_ADDR", addr.to_string())
            .env("METRICS_ADDR", metrics.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", binary.display()))?;
        Ok(Self {
            child: Some(child),
            addr,
            metrics,
            log,
        })
    }

    /// Waits (at most 30 s) until `/health/ready` answers 200.
    async fn ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!(
                    "sessiond at {} exited ({status}); see {}",
                    self.addr,
                    self.log.display()
                );
            }
            if let Ok(mut conn) = Conn::open(self.addr).await
                && let Ok((200, _)) = conn.send(get(self.addr, "/health/ready", None)).await
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                anyhow::bail!(
                    "sessiond at {} not ready within 30 s; see {}",
                    self.addr,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One keep-alive connection, reopened after an error.
struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            sender: load::connect(addr).await?,
        })
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let answer = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        if answer.is_err() {
            self.sender = load::connect(self.addr).await?;
        }
        answer
    }
}

fn get(addr: SocketAddr, path: &str, auth: Option<&HeaderValue>) -> Request<Full<Bytes>> {
    let mut request = Request::get(path).header(HOST, addr.to_string());
    if let Some(auth) = auth {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    request
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

fn logout(addr: SocketAddr, auth: &HeaderValue) -> Request<Full<Bytes>> {
    Request::post("/api/v1/auth/logout")
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, auth.clone())
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 60 s, 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, 60_000_000) as u64
}

/// What one phase measured.
#[derive(Debug)]
struct Phase {
    name: &'static str,
    /// t0 → the last of instances 1 and 2 refusing, µs.
    remote: Histogram<u64>,
    /// t0 → instance 0 (the revoking one) refusing, µs.
    own: Histogram<u64>,
    /// The round trip of the probe that found the last refusal, µs.
    resolution: Histogram<u64>,
    /// The lower bound: t0 → the send of the last probe instance 1 or 2 accepted (0 when
    /// both refused the first one), µs.
    lower: Histogram<u64>,
    /// The revoke itself (`POST /api/v1/auth/logout`), µs.
    logout: Histogram<u64>,
    /// Revocations whose every instance refused within [`PROBE_LIMIT`] / not.
    refused: u64,
    unrefused: u64,
    /// Revocations after whose 2xx instance 1 or 2 still accepted the token at least once.
    stale: u64,
    /// Revocations that instances 1 and 2 both refused at their first probe.
    first_probe: u64,
    /// 200s from instance 0 after its own 2xx (must be none).
    own_accepted: u64,
    /// Sessions not accepted everywhere before the revoke, revokes that failed, probes
    /// answered neither 200 nor 401.
    not_live: u64,
    failed_logouts: u64,
    odd_answers: u64,
    /// The statuses of the answers neither 200 nor 401, before the revoke and after it.
    odd_statuses: BTreeMap<u16, u64>,
    elapsed: Duration,
    load: Option<Outcome>,
    /// How instances 1 and 2 validated meanwhile.
    modes: Samples,
}

impl Phase {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            remote: histogram(),
            own: histogram(),
            resolution: histogram(),
            lower: histogram(),
            logout: histogram(),
            refused: 0,
            unrefused: 0,
            stale: 0,
            first_probe: 0,
            own_accepted: 0,
            not_live: 0,
            failed_logouts: 0,
            odd_answers: 0,
            odd_statuses: BTreeMap::new(),
            elapsed: Duration::ZERO,
            load: None,
            modes: Samples::default(),
        }
    }

    fn report(&self, report: &mut Report, bound: Duration) {
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let max = |h: &Histogram<u64>| h.max() as f64 / 1000.0;
        let share = |limit: Duration| {
            let n = self.remote.len().max(1) as f64;
            100.0 * self.remote.count_between(0, micros(limit)) as f64 / n
        };
        let poll = bound / 4;
        let p99 = Duration::from_micros(self.remote.value_at_quantile(0.99));
        let worst = Duration::from_micros(self.remote.max());
        let complete = self.unrefused == 0 && self.refused > 0;
        let result = format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} revocations; ≤ 1 ms: {:.1} %, ≤ 5 ms: {:.1} %, ≤ {} ms (one log poll): {:.1} %; not refused within {} s: {}; resolution: last probe's round trip p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; lower bound, the last accepted probe's send: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} refused by both at the first probe)",
            ms(&self.remote, 0.5),
            ms(&self.remote, 0.99),
            max(&self.remote),
            self.refused,
            share(Duration::from_millis(1)),
            share(Duration::from_millis(5)),
            poll.as_millis(),
            share(poll),
            PROBE_LIMIT.as_secs(),
            self.unrefused,
            ms(&self.resolution, 0.5),
            ms(&self.resolution, 0.99),
            max(&self.resolution),
            ms(&self.lower, 0.5),
            ms(&self.lower, 0.99),
            max(&self.lower),
            self.first_probe,
        );
        let what = format!(
            "propagation, {}: revoke's 2xx on instance 0 → instances 1 and 2 both refuse",
            self.name
        );
        if self.load.is_none() {
            report.row(Row::target(
                what,
                result,
                &format!(
                    "p99 ≤ {} ms (SPEC §8 goal), max ≤ {} ms (the bound)",
                    GOAL_P99.as_millis(),
                    bound.as_millis()
                ),
                complete && p99 <= GOAL_P99 && worst <= bound,
            ));
        } else {
            report.row(Row::target(
                what,
                result,
                &format!("max ≤ {} ms (the bound)", bound.as_millis()),
                complete && worst <= bound,
            ));
        }
        let latest = Duration::from_micros(self.lower.max());
        report.row(Row::target(
            format!(
                "propagation, {}: instance 1 or 2 still accepting later than the bound after the 2xx",
                self.name
            ),
            format!(
                "latest accepted probe sent {:.2} ms after t0 (a refusal is proven late only when a probe sent after the bound is accepted)",
                latest.as_secs_f64() * 1000.0
            ),
            "never",
            complete && latest <= bound,
        ));
        report.row(Row::target(
            format!(
                "propagation, {}: instance 0 (the revoking one) refuses after its own 2xx",
                self.name
            ),
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; accepted after its 2xx: {} times",
                ms(&self.own, 0.5),
                ms(&self.own, 0.99),
                max(&self.own),
                self.own_accepted
            ),
            "never accepts after its 2xx",
            self.own_accepted == 0 && complete,
        ));
        report.row(Row::info(
            format!("propagation, {}: the revoke and the rest", self.name),
            format!(
                "logout p50 {:.2} ms, p99 {:.2} ms; {} of {} revocations still accepted on instance 1 or 2 after the 2xx; not live everywhere before: {}, failed logouts: {}, answers neither 200 nor 401: {}{}; {:.0} s",
                ms(&self.logout, 0.5),
                ms(&self.logout, 0.99),
                self.stale,
                self.refused + self.unrefused,
                self.not_live,
                self.failed_logouts,
                self.odd_answers,
                if self.odd_statuses.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (statuses, before and after the revoke: {})",
                        self.odd_statuses
                            .iter()
                            .map(|(status, n)| format!("{status} ×{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                self.elapsed.as_secs_f64()
            ),
        ));
        report.row(Row::info(
            format!(
                "propagation, {}: how instances 1 and 2 validated meanwhile",
                self.name
            ),
            self.modes.describe(),
        ));
        if let Some(load) = &self.load {
            report.row(Row::info(
                format!(
                    "propagation, {}: the validation load, 3 × {LOAD_CONNECTIONS} connections",
                    self.name
                ),
                format!(
                    "{:.0} req/s in all, p50 {:.2} ms, p99 {:.2} ms ({} requests, {} errors{})",
                    load.rate(),
                    load.ms(0.5),
                    load.ms(0.99),
                    load.requests,
                    load.errors,
                    if load.failures.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", load.failures())
                    }
                ),
            ));
        }
    }
}

/// What probing one instance after a revoke found.
#[derive(Debug)]
struct Probe {
    refused: Option<Duration>,
    last_round_trip: Duration,
    /// t0 → the send of the last probe answered 200.
    last_accepted: Option<Duration>,
    accepted: u64,
    odd: u64,
    odd_statuses: BTreeMap<u16, u64>,
}

/// Asks `conn` with `auth` back to back until it answers 401 (or [`PROBE_LIMIT`] passes).
async fn until_refused(conn: &mut Conn, auth: &HeaderValue, t0: Instant) -> anyhow::Result<Probe> {
    let mut probe = Probe {
        refused: None,
        last_round_trip: Duration::ZERO,
        last_accepted: None,
        accepted: 0,
        odd: 0,
        odd_statuses: BTreeMap::new(),
    };
    while t0.elapsed() < PROBE_LIMIT {
        let sent = Instant::now();
        let (status, _) = conn.send(get(conn.addr, CURRENT, Some(auth))).await?;
        let read = Instant::now();
        probe.last_round_trip = read - sent;
        match status {
            401 => {
                probe.refused = Some(read - t0);
                break;
            }
            200 => {
                probe.accepted += 1;
                probe.last_accepted = Some(sent.saturating_duration_since(t0));
            }
            _ => {
                probe.odd += 1;
                *probe.odd_statuses.entry(status).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    Ok(probe)
}

/// Signs every user in (round robin over the instances); their access tokens.
async fn sign_in(conns: &mut [Conn; 3], users: u64) -> anyhow::Result<Vec<HeaderValue>> {
    let mut tokens = Vec::with_capacity(users as usize);
    for n in 0..users {
        let conn = &mut conns[(n % 3) as usize];
        let request = load::post_json(
            conn.addr,
            "/api/v1/auth/login",
            &json!({ "email": format!("bench-prop-{n}@example.com"), "password": PASSWORD }),
            IPHONE,
        );
        let (status, body) = conn.send(request).await?;
        anyhow::ensure!(status == 200, "sign-in of bench-prop-{n}: {status}");
        let value: Value = serde_json::from_slice(&body)?;
        let token = value["access_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no access_token in the sign-in answer"))?;
        tokens.push(HeaderValue::from_str(&format!("Bearer {token}"))?);
    }
    Ok(tokens)
}

/// Revokes and probes each of `tokens` in turn.
async fn phase(
    conns: &mut [Conn; 3],
    tokens: &[HeaderValue],
    into: &mut Phase,
) -> anyhow::Result<()> {
    let started = Instant::now();
    'sessions: for auth in tokens {
        if into.unrefused >= MAX_UNREFUSED || started.elapsed() > PHASE_LIMIT {
            eprintln!(
                "bench: propagation, {}: stopped after {} revocations ({} never refused, {:.0} s)",
                into.name,
                into.refused + into.unrefused,
                into.unrefused,
                started.elapsed().as_secs_f64()
            );
            break;
        }
        for conn in conns.iter_mut() {
            let (status, _) = conn.send(get(conn.addr, CURRENT, Some(auth))).await?;
            if status != 200 {
                into.not_live += 1;
                *into.odd_statuses.entry(status).or_default() += 1;
                continue 'sessions;
            }
        }
        let revoker = conns[0].addr;
        let sent = Instant::now();
        let (status, _) = conns[0].send(logout(revoker, auth)).await?;
        let t0 = Instant::now();
        if !(200..300).contains(&status) {
            into.failed_logouts += 1;
            continue;
        }
        into.logout.saturating_record(micros(t0 - sent));
        let [zero, one, two] = &mut *conns;
        let (own, a, b) = tokio::join!(
            until_refused(zero, auth, t0),
            until_refused(one, auth, t0),
            until_refused(two, auth, t0)
        );
        let (own, a, b) = (own?, a?, b?);
        into.own_accepted += own.accepted;
        into.odd_answers += own.odd + a.odd + b.odd;
        for probe in [&own, &a, &b] {
            for (status, n) in &probe.odd_statuses {
                *into.odd_statuses.entry(*status).or_default() += n;
            }
        }
        if a.accepted + b.accepted > 0 {
            into.stale += 1;
        }
        match (own.refused, a.refused, b.refused) {
            (Some(own_delay), Some(da), Some(db)) => {
                into.refused += 1;
                if a.accepted + b.accepted == 0 {
                    into.first_probe += 1;
                }
                into.own.saturating_record(micros(own_delay));
                let (last, round_trip) = if da >= db {
                    (da, a.last_round_trip)
                } else {
                    (db, b.last_round_trip)
                };
                into.remote.saturating_record(micros(last));
                into.resolution.saturating_record(micros(round_trip));
                let lower = a.last_accepted.max(b.last_accepted).unwrap_or_default();
                into.lower.saturating_record(micros(lower));
            }
            _ => into.unrefused += 1,
        }
    }
    into.elapsed = started.elapsed();
    Ok(())
}

/// Everything that talks to the instances: sign-ins, the phase at rest, the phase under
/// load.
async fn measure(
    addrs: [SocketAddr; 3],
    metrics: [SocketAddr; 2],
    clients: Handle,
    load_tokens: Arc<Vec<HeaderValue>>,
    revocations: u64,
) -> anyhow::Result<Vec<Phase>> {
    let mut conns = [
        Conn::open(addrs[0]).await?,
        Conn::open(addrs[1]).await?,
        Conn::open(addrs[2]).await?,
    ];
    let t = Instant::now();
    let tokens = sign_in(&mut conns, WARM_UP_REVOCATIONS + 2 * revocations).await?;
    eprintln!(
        "bench: propagation: {} sessions signed in in {:.1?}",
        tokens.len(),
        t.elapsed()
    );
    let (warm, rest) = tokens.split_at(WARM_UP_REVOCATIONS as usize);
    let (at_rest, rest) = rest.split_at(revocations as usize);
    let loaded = &rest[..revocations as usize];

    let mut warm_up = Phase::new("warm-up");
    phase(&mut conns, warm, &mut warm_up).await?;

    let mut quiet = Phase::new("at rest");
    let sampling = Sampling::start(&clients, metrics);
    phase(&mut conns, at_rest, &mut quiet).await?;
    quiet.modes = sampling.stop().await;

    LOAD_ON.store(true, Ordering::Relaxed);
    let plan = Plan {
        connections: LOAD_CONNECTIONS,
        warm_up: Duration::from_secs(1),
        stop: Stop::While(&LOAD_ON, PHASE_LIMIT + PROBE_LIMIT),
    };
    let loads: Vec<_> = addrs
        .into_iter()
        .map(|addr| {
            let headers = Arc::clone(&load_tokens);
            clients.spawn(load::run(addr, plan, move |w| {
                GetWithAuth::new(addr, CURRENT, headers.clone(), w, LOAD_CONNECTIONS)
            }))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut busy = Phase::new("under validation load");
    let sampling = Sampling::start(&clients, metrics);
    let measured = phase(&mut conns, loaded, &mut busy).await;
    busy.modes = sampling.stop().await;
    LOAD_ON.store(false, Ordering::Relaxed);
    let mut total: Option<Outcome> = None;
    for handle in loads {
        let outcome = handle.await??;
        total = Some(match total {
            None => outcome,
            Some(mut sum) => {
                // The three ran side by side: rates add up, latencies merge.
                sum.requests += outcome.requests;
                sum.errors += outcome.errors;
                sum.sent += outcome.sent;
                for (status, n) in outcome.failures {
                    *sum.failures.entry(status).or_default() += n;
                }
                sum.elapsed = sum.elapsed.max(outcome.elapsed);
                sum.histogram.add(&outcome.histogram)?;
                sum
            }
        });
    }
    measured?;
    busy.load = total;
    Ok(vec![quiet, busy])
}

/// The validation modes of instances 1 and 2 while a phase runs.
struct Sampling([Sampler; 2]);

impl Sampling {
    fn start(clients: &Handle, metrics: [SocketAddr; 2]) -> Self {
        Self(metrics.map(|at| Sampler::start(clients, at)))
    }

    async fn stop(self) -> Samples {
        let mut all = Samples::default();
        for sampler in self.0 {
            all.merge(&sampler.stop().await);
        }
        all
    }
}
