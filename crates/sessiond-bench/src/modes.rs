//! How a sessiond validated while a load ran (SPEC §8): its `/metrics` (on its own
//! listener) sampled every [`EVERY`]: `sessiond_validation_mode` (computed at the scrape:
//! `cached` when the near cache and Redis may answer, `store_only` when the revocation feed
//! is behind its bound and PostgreSQL answers alone, `vouched`, `closed`) and
//! `sessiond_revocation_feed_lag_seconds`. The in-process sessionds share one metrics
//! recorder, but each scrape computes these two from the scraped instance's own feed and
//! trust, so they are that instance's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::load;

/// How often the metrics are read.
const EVERY: Duration = Duration::from_millis(50);

/// What the samples showed.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    /// Samples per validation mode.
    pub modes: BTreeMap<String, u64>,
    /// The largest feed lag seen, seconds.
    pub max_lag: f64,
}

impl Samples {
    /// Adds `other`'s samples to these.
    pub fn merge(&mut self, other: &Samples) {
        for (mode, n) in &other.modes {
            *self.modes.entry(mode.clone()).or_default() += n;
        }
        self.max_lag = self.max_lag.max(other.max_lag);
    }

    /// "cached 99.1 %, store_only 0.9 % of 240 samples; feed lag max 312 ms".
    pub fn describe(&self) -> String {
        let total: u64 = self.modes.values().sum();
        if total == 0 {
            return "no sample".into();
        }
        let modes = self
            .modes
            .iter()
            .map(|(mode, n)| format!("{mode} {:.1} %", 100.0 * *n as f64 / total as f64))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{modes} of {total} samples of sessiond_validation_mode every {} ms; feed lag max {:.0} ms",
            EVERY.as_millis(),
            self.max_lag * 1000.0
        )
    }
}

/// A sampling task, stopped by [`Sampler::stop`].
pub struct Sampler {
    on: Arc<AtomicBool>,
    task: JoinHandle<Samples>,
}

impl Sampler {
    /// Starts sampling the metrics listener at `metrics` on the `clients` runtime.
    pub fn start(clients: &Handle, metrics: SocketAddr) -> Self {
        let on = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&on);
        let task = clients.spawn(async move {
            let mut samples = Samples::default();
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while running.load(Ordering::Relaxed) {
                ticks.tick().await;
                if let Ok(text) = scrape(metrics).await {
                    read(&text, &mut samples);
                }
            }
            samples
        });
        Self { on, task }
    }

    /// Stops sampling; what it saw.
    pub async fn stop(self) -> Samples {
        self.on.store(false, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// One `GET /metrics`, on a connection of its own.
async fn scrape(metrics: SocketAddr) -> anyhow::Result<String> {
    let mut sender = load::connect(metrics).await?;
    let request = Request::get("/metrics")
        .header(hyper::header::HOST, metrics.to_string())
        .body(Full::new(Bytes::new()))?;
    let response = sender.send_request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Adds one scrape's mode and lag to `samples`.
fn read(text: &str, samples: &mut Samples) {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("sessiond_validation_mode{mode=\"")
            && let Some((mode, value)) = rest.split_once("\"} ")
            && value.trim() == "1"
        {
            *samples.modes.entry(mode.to_owned()).or_default() += 1;
        } else if let Some(value) = line.strip_prefix("sessiond_revocation_feed_lag_seconds ")
            && let Ok(lag) = value.trim().parse::<f64>()
        {
            samples.max_lag = samples.max_lag.max(lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_gives_its_mode_and_lag() {
        let mut samples = Samples::default();
        read(
            "# TYPE x gauge\nsessiond_validation_mode{mode=\"cached\"} 0\n\
             sessiond_validation_mode{mode=\"store_only\"} 1\n\
             sessiond_revocation_feed_lag_seconds 0.312\n",
            &mut samples,
        );
        assert_eq!(samples.modes.get("store_only"), Some(&1));
        assert_eq!(samples.modes.get("cached"), None);
        assert!((samples.max_lag - 0.312).abs() < 1e-9);
    }
}
