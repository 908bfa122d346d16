//! The many-instance topology anyone can start (issue 14): `scripts/cluster-demo.sh` brings
//! up a Redis Cluster, three sessiond processes on it and on one database, and haproxy in
//! front (round robin, no stickiness). Through haproxy, a session is accepted by every
//! instance, and once revoked it is refused by every one within the bound; Ctrl-C stops
//! everything the script started.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sessiond_tests::app::PASSWORD;
use sessiond_tests::instances::REVOCATION_BOUND;

const INSTANCES: usize = 3;

/// The script, killed with its process group if the test fails before stopping it.
struct Demo {
    child: Child,
    url: String,
    /// The script's working directory, which it removes when it stops.
    dir: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGTERM: the script's trap stops what it started.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

impl Demo {
    fn start(database_url: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cluster-demo.sh");
        let mut child = Command::new(script)
            .env("DATABASE_URL", database_url)
            .env("DEMO_PORT", free_port().to_string())
            .env("DEMO_INSTANCES", INSTANCES.to_string())
            .env("SESSIOND_BIN", env!("CARGO_BIN_EXE_sessiond-process"))
            .env_remove("REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("scripts/cluster-demo.sh runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Self {
            child,
            url: String::new(),
            dir: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while demo.url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = received
                .recv_timeout(left)
                .expect("the demo printed its URL within 2 minutes");
            if let Some(log) = line.split("log ").nth(1) {
                demo.dir = log
                    .trim_end_matches(')')
                    .rsplit_once('/')
                    .unwrap()
                    .0
                    .to_owned();
            }
            if let Some(url) = line.strip_prefix("cluster-demo: http://") {
                let address = url.split('/').next().unwrap();
                demo.url = format!("http://{address}");
            }
        }
        demo
    }

    /// SIGINT, as Ctrl-C sends it; waits for the script to finish.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        self.child.wait().expect("the script exits")
    }
}

/// `GET /api/v1/sessions/current` through haproxy: the status and the instance that answered.
async fn validate(client: &reqwest::Client, demo: &Demo, token: &str) -> (StatusCode, String) {
    let response = client
        .get(format!("{}/api/v1/sessions/current", demo.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("haproxy answers");
    let served_by = response
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (response.status(), served_by)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_balances_over_every_instance_and_a_revocation_reaches_them_all() {
    let database_url = sessiond_postgres::testing::fresh_database_url()
        .await
        .expect("a fresh database");
    let mut demo = Demo::start(&database_url);
    // A new connection per request: haproxy balances connections' requests round robin,
    // and nothing ties a client to an instance.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let email = format!("demo-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = client
        .post(format!("{}/api/v1/auth/register", demo.url))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let signed_in: Value = client
        .post(format!("{}/api/v1/auth/login", demo.url))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_in["access_token"].as_str().expect("an access token");

    let mut served_by = std::collections::BTreeSet::new();
    for _ in 0..INSTANCES * 3 {
        let (status, instance) = validate(&client, &demo, token).await;
        assert_eq!(status, StatusCode::OK);
        served_by.insert(instance);
    }
    assert_eq!(served_by.len(), INSTANCES, "answered by {served_by:?}");

    let logout = client
        .post(format!("{}/api/v1/auth/logout", demo.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success(), "{}", logout.status());
    let revoked = Instant::now();
    let mut refused_by = std::collections::BTreeSet::new();
    while refused_by.len() < INSTANCES {
        let (status, instance) = validate(&client, &demo, token).await;
        if status == StatusCode::UNAUTHORIZED {
            refused_by.insert(instance);
        } else {
            assert_eq!(status, StatusCode::OK);
            assert!(
                revoked.elapsed() < REVOCATION_BOUND,
                "{instance} still accepts the session {:?} after its logout",
                revoked.elapsed()
            );
            assert!(
                !refused_by.contains(&instance),
                "{instance} accepted the session again after refusing it"
            );
        }
    }
    // Refused everywhere from then on.
    for _ in 0..INSTANCES * 2 {
        assert_eq!(
            validate(&client, &demo, token).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    let address = demo.url.trim_start_matches("http://").to_owned();
    let status = demo.interrupt();
    assert!(status.success(), "the demo stopped with {status}");
    assert!(
        TcpStream::connect(&address).is_err(),
        "haproxy still listens after Ctrl-C"
    );
    assert!(
        !std::path::Path::new(&demo.dir).exists(),
        "the demo left {} behind",
        demo.dir
    );
}
