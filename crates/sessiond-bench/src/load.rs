//! The load generator: a fixed number of keep-alive HTTP/1.1 connections, one worker task
//! per connection sending one request at a time (closed loop), a warm-up that is not
//! recorded, then a measured period (a duration or a request count), latencies in an HDR
//! histogram (microseconds).
//!
//! It runs on a tokio runtime of its own (see `main`), so its threads are not the servers'.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Handle;

/// What one worker sends, and what it does with each answer (a refresh keeps the new token).
pub trait Scenario: Send + 'static {
    /// The next request of this worker.
    fn request(&mut self) -> Request<Full<Bytes>>;
    /// Called with every answer; returns whether it counts as a success.
    fn response(&mut self, status: u16, body: &Bytes) -> bool {
        let _ = body;
        (200..300).contains(&status)
    }
}

/// When the measured part stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many requests in all (workers take them from a shared counter).
    Requests(u64),
    /// After this many requests by each worker (a sweep that must cover every worker's
    /// share).
    Each(u64),
    /// While the flag is set (a background load that another measurement switches off),
    /// and never longer than this after the warm-up.
    While(&'static AtomicBool, Duration),
}

/// The shape of one run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub warm_up: Duration,
    pub stop: Stop,
}

/// What a run measured (the warm-up excluded).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub histogram: Histogram<u64>,
    /// Requests sent in all, the warm-up's included (what the server saw).
    pub sent: u64,
    /// Requests answered in each [`TICK`] of the measured period, in order.
    pub timeline: Vec<u64>,
    /// The failed requests by status (0: no answer), the warm-up's included.
    pub failures: BTreeMap<u16, u64>,
}

impl Outcome {
    /// Successful and failed requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Successful requests per second.
    pub fn ok_rate(&self) -> f64 {
        (self.requests - self.errors) as f64 / self.elapsed.as_secs_f64()
    }

    /// The failures as `status ×count`, for a message.
    pub fn failures(&self) -> String {
        self.failures
            .iter()
            .map(|(status, n)| format!("{status} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The lowest rate over any `window` of whole ticks of the measured period (the
    /// whole period's rate when it is shorter), requests per second.
    pub fn worst_rate(&self, window: Duration) -> f64 {
        let ticks = ((window.as_millis() / TICK.as_millis()) as usize).max(1);
        if self.timeline.len() < ticks {
            return self.rate();
        }
        let per_second = 1.0 / (ticks as f64 * TICK.as_secs_f64());
        self.timeline
            .windows(ticks)
            .map(|w| w.iter().sum::<u64>() as f64 * per_second)
            .fold(f64::INFINITY, f64::min)
    }
}

/// The resolution of [`Outcome::timeline`].
pub const TICK: Duration = Duration::from_millis(100);

/// Adds `from` into `into`, tick by tick.
fn add_timeline(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (total, n) in into.iter_mut().zip(from) {
        *total += n;
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 60 s, 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs `plan` against `addr` on the load generator's runtime (`clients`), so that the
/// servers' runtime schedules none of its tasks.
pub async fn run_on<S: Scenario>(
    clients: &Handle,
    addr: SocketAddr,
    plan: Plan,
    scenario: impl Fn(usize) -> S + Send + 'static,
) -> anyhow::Result<Outcome> {
    clients
        .spawn(async move { run(addr, plan, scenario).await })
        .await?
}

/// Runs `plan` against `addr`; `scenario(worker)` builds each worker's scenario.
pub async fn run<S: Scenario>(
    addr: SocketAddr,
    plan: Plan,
    scenario: impl Fn(usize) -> S,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let measure_from = started + plan.warm_up;
    let budget = Arc::new(AtomicU64::new(match plan.stop {
        Stop::Requests(n) => n,
        Stop::After(_) | Stop::Each(_) | Stop::While(..) => u64::MAX,
    }));
    let deadline = match plan.stop {
        Stop::After(duration) | Stop::While(_, duration) => Some(measure_from + duration),
        Stop::Requests(_) | Stop::Each(_) => None,
    };
    let flag = match plan.stop {
        Stop::While(flag, _) => Some(flag),
        _ => None,
    };
    let each = match plan.stop {
        Stop::Each(n) => n,
        _ => u64::MAX,
    };
    let mut workers = Vec::with_capacity(plan.connections);
    for worker in 0..plan.connections {
        let scenario = scenario(worker);
        let budget = Arc::clone(&budget);
        workers.push(tokio::spawn(drive(
            addr,
            scenario,
            measure_from,
            deadline,
            budget,
            each,
            flag,
        )));
    }
    let mut total = Outcome {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        histogram: histogram(),
        sent: 0,
        timeline: Vec::new(),
        failures: BTreeMap::new(),
    };
    let mut last_end = measure_from;
    for worker in workers {
        let driven = worker.await??;
        total.requests += driven.requests;
        total.errors += driven.errors;
        total.sent += driven.sent;
        total.histogram.add(&driven.histogram)?;
        add_timeline(&mut total.timeline, &driven.timeline);
        for (status, n) in driven.failures {
            *total.failures.entry(status).or_default() += n;
        }
        last_end = last_end.max(driven.ended);
    }
    // A last tick cut short by the end of the period would read as a drop.
    if let Stop::After(duration) = plan.stop {
        let whole = (duration.as_millis() / TICK.as_millis()) as usize;
        total.timeline.truncate(whole);
    }
    total.elapsed = match (plan.stop, deadline) {
        (Stop::After(_), Some(deadline)) => deadline.saturating_duration_since(measure_from),
        _ => last_end.saturating_duration_since(measure_from),
    };
    Ok(total)
}

/// One keep-alive HTTP/1.1 connection to `addr`.
pub async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// What one worker measured.
struct Driven {
    requests: u64,
    errors: u64,
    sent: u64,
    histogram: Histogram<u64>,
    timeline: Vec<u64>,
    failures: BTreeMap<u16, u64>,
    ended: Instant,
}

async fn drive<S: Scenario>(
    addr: SocketAddr,
    mut scenario: S,
    measure_from: Instant,
    deadline: Option<Instant>,
    budget: Arc<AtomicU64>,
    each: u64,
    flag: Option<&'static AtomicBool>,
) -> anyhow::Result<Driven> {
    let mut sender = connect(addr).await?;
    let mut hist = histogram();
    let (mut requests, mut errors, mut sent_in_all) = (0u64, 0u64, 0u64);
    let mut timeline: Vec<u64> = Vec::new();
    let mut failures: BTreeMap<u16, u64> = BTreeMap::new();
    let mut ended = Instant::now();
    loop {
        if flag.is_some_and(|on| !on.load(Ordering::Relaxed)) {
            break;
        }
        let now = Instant::now();
        let measuring = now >= measure_from;
        if measuring {
            if deadline.is_some_and(|d| now >= d) || requests >= each {
                break;
            }
            if deadline.is_none()
                && budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                        left.checked_sub(1)
                    })
                    .is_err()
            {
                break;
            }
        }
        let request = scenario.request();
        let sent = Instant::now();
        let answer = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        let latency = sent.elapsed();
        sent_in_all += 1;
        let (ok, status) = match answer {
            Ok((status, body)) => (scenario.response(status, &body), status),
            Err(_) => {
                // A closed connection: open another one and count the failure.
                sender = connect(addr).await?;
                (false, 0)
            }
        };
        if !ok {
            *failures.entry(status).or_default() += 1;
        }
        if measuring {
            requests += 1;
            if !ok {
                errors += 1;
            }
            hist.saturating_record(latency.as_micros().max(1) as u64);
            ended = Instant::now();
            let tick = (ended.saturating_duration_since(measure_from).as_millis()
                / TICK.as_millis()) as usize;
            if timeline.len() <= tick {
                timeline.resize(tick + 1, 0);
            }
            timeline[tick] += 1;
        }
    }
    Ok(Driven {
        requests,
        errors,
        sent: sent_in_all,
        histogram: hist,
        timeline,
        failures,
        ended,
    })
}

/// A GET with a fixed `authorization` header value, from a shared list spread over workers.
#[derive(Debug)]
pub struct GetWithAuth {
    pub uri: hyper::Uri,
    pub host: hyper::header::HeaderValue,
    pub headers: Arc<Vec<hyper::header::HeaderValue>>,
    pub next: usize,
    pub step: usize,
}

impl GetWithAuth {
    /// Worker `worker` of `workers` takes headers `worker`, `worker + workers`, … so that the
    /// connections together sweep the whole list.
    pub fn new(
        addr: SocketAddr,
        path: &str,
        headers: Arc<Vec<hyper::header::HeaderValue>>,
        worker: usize,
        workers: usize,
    ) -> Self {
        Self {
            uri: path.parse().expect("a valid path"),
            host: hyper::header::HeaderValue::from_str(&addr.to_string()).expect("a host"),
            next: worker % headers.len().max(1),
            step: workers.max(1),
            headers,
        }
    }
}

impl Scenario for GetWithAuth {
    fn request(&mut self) -> Request<Full<Bytes>> {
        let header = self.headers[self.next].clone();
        self.next = (self.next + self.step) % self.headers.len();
        Request::get(self.uri.clone())
            .header(hyper::header::HOST, self.host.clone())
            .header(hyper::header::AUTHORIZATION, header)
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    }
}

/// A JSON POST.
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    user_agent: &str,
) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, user_agent)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid request")
}
