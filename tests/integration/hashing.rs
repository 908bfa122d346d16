//! Password hashing has a memory budget (issue 15, item 3): each argon2id hash at the default
//! cost holds 19 MiB while it runs, so a burst of sign-ins must queue for a bounded number of
//! hashing slots, and be refused (503 with `Retry-After`) beyond a bounded queue, instead of
//! hashing all at once. Measured on a real `sessiond` process: its peak resident set
//! (`VmHWM`), which no in-process test could tell apart from the test's own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sessiond_tests::app::WINDOWS;

/// The peak resident set a burst of sign-ins may leave, bytes.
const BUDGET: u64 = 400 * 1024 * 1024;

/// A `sessiond serve` child process, killed (by its own handle) when dropped.
struct Process {
    child: Child,
    base_url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// `sessiond serve` on in-memory storage, at the default argon2 cost and hashing bounds,
    /// with `admin` / `password` as its bootstrap system administrator.
    fn start(admin: &str, password: &str) -> Self {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sessiond-process"))
            .arg("serve")
            .env_clear()
            .env("SESSIOND_CONFIG_DIR", config)
            // Production rules (no SESSIOND_ENV), on purpose in memory.
            .env("SESSIOND_DATABASE__ALLOW_IN_MEMORY", "true")
            .env("JWT_SECRET", "memory-budget-test-secret-3f9a1c77e2b04d6a")
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("SESSIOND_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("SESSIOND_ADMIN_EMAIL", admin)
            .env("SESSIOND_ADMIN_PASSWORD", password)
            // The burst comes from one address and tries many unknown e-mails: the throttle
            // must not be what keeps the hashing down.
            .env("SESSIOND_SESSIONS__MAX_FAILED_SIGN_INS_PER_IP", "1000000")
            .env("SESSIOND_CLEANUP__INTERVAL", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sessiond starts");
        // The port it bound, from its "sessiond is listening" log line.
        let stdout = child.stdout.take().expect("its standard output");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sent {
                    continue; // keep draining, so the process never blocks on a full pipe
                }
                let event: Value = serde_json::from_str(&line).unwrap_or_default();
                if event["fields"]["message"] == "sessiond is listening"
                    && let Some(port) = event["fields"]["port"].as_u64()
                {
                    let _ = sender.send(port);
                    sent = true;
                }
            }
        });
        let port = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("sessiond logs the port it listens on");
        Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A line of `/proc/<pid>/status`, in bytes (`VmHWM`: the peak resident set).
    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"));
        kib * 1024
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sign_ins_at_the_default_cost_stays_within_the_memory_budget() {
    let admin = "budget-admin@example.com";
    let password = "budget admin password 7c41";
    let process = Process::start(admin, password);
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let live = client
            .get(format!("{}/health/live", process.base_url))
            .send()
            .await;
        if live.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = process.status_bytes("VmRSS");

    // 200 at once: half the administrator with the right password, half unknown e-mails
    // (which cost a hash too, so that timing tells nothing).
    let attempts = (0..200).map(|i| {
        let client = client.clone();
        let url = format!("{}/api/v1/auth/login", process.base_url);
        let body = if i % 2 == 0 {
            json!({ "email": admin, "password": password })
        } else {
            json!({ "email": format!("nobody-{i}@example.com"), "password": password })
        };
        async move {
            let response = client
                .post(url)
                .header("user-agent", WINDOWS)
                .json(&body)
                .send()
                .await
                .expect("an answer");
            let retry_after = response.headers().contains_key("retry-after");
            (response.status(), retry_after)
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let peak = process.status_bytes("VmHWM");
    let count = |status: StatusCode| answers.iter().filter(|(s, _)| *s == status).count();
    let (ok, refused, busy) = (
        count(StatusCode::OK),
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::SERVICE_UNAVAILABLE),
    );
    eprintln!(
        "memory budget: resident {} MiB before, peak {} MiB after 200 concurrent sign-ins \
         ({ok} signed in, {refused} refused, {busy} told to retry)",
        before / (1024 * 1024),
        peak / (1024 * 1024),
    );
    assert!(
        peak < BUDGET,
        "peak resident set {} MiB, over the {} MiB budget",
        peak / (1024 * 1024),
        BUDGET / (1024 * 1024)
    );
    assert_eq!(
        ok + refused + busy,
        200,
        "only 200, 401 and 503 may answer: {answers:?}"
    );
    assert!(
        answers.iter().all(
            |(status, retry_after)| *status != StatusCode::SERVICE_UNAVAILABLE || *retry_after
        ),
        "a 503 without Retry-After"
    );
    assert!(
        ok > 0 && refused > 0,
        "the queue served nobody: {answers:?}"
    );
}
