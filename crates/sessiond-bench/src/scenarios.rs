//! The stateful loads: sign-in (keeps the tokens it gets) and refresh (each rotation's new
//! refresh token replaces the one it used).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};

use hyper::header::HeaderValue;
use tokio::runtime::Handle;

use crate::load::{self, Plan, Scenario, Stop, post_json};
use crate::{IPHONE, PASSWORD};

/// Signs `email` in `times` times through the API, one after the other, and returns the
/// first session's `Authorization` header value.
pub async fn signed_in(
    clients: &Handle,
    addr: SocketAddr,
    email: &str,
    times: u64,
) -> anyhow::Result<HeaderValue> {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&tokens);
    let email = email.to_owned();
    let signed = load::run_on(
        clients,
        addr,
        Plan {
            connections: 1,
            warm_up: Duration::ZERO,
            stop: Stop::Requests(times),
        },
        move |_| SignIn::single(addr, &email, Arc::clone(&sink)),
    )
    .await?;
    anyhow::ensure!(signed.errors == 0, "could not sign in");
    let access = tokens.lock().unwrap()[0].clone();
    Ok(HeaderValue::from_str(&format!("Bearer {access}"))?)
}

/// Signs users `<prefix><n>@example.com` in, worker `w` of `workers` taking n = w, w +
/// workers, … (below `users`); keeps each answer's refresh token (or, for a single
/// address, its access token) in `sink`.
#[derive(Debug)]
pub struct SignIn {
    addr: SocketAddr,
    prefix: String,
    single: Option<String>,
    next: u64,
    step: u64,
    users: u64,
    sink: Arc<Mutex<Vec<String>>>,
}

impl SignIn {
    pub fn new(
        addr: SocketAddr,
        prefix: &str,
        worker: usize,
        workers: usize,
        users: u64,
        sink: Arc<Mutex<Vec<String>>>,
    ) -> Self {
        Self {
            addr,
            prefix: prefix.to_owned(),
            single: None,
            next: worker as u64,
            step: workers as u64,
            users,
            sink,
        }
    }

    /// Signs `email` in again and again, keeping the access tokens.
    pub fn single(addr: SocketAddr, email: &str, sink: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            addr,
            prefix: String::new(),
            single: Some(email.to_owned()),
            next: 0,
            step: 1,
            users: 1,
            sink,
        }
    }
}

impl Scenario for SignIn {
    fn request(&mut self) -> Request<Full<Bytes>> {
        let email = match &self.single {
            Some(email) => email.clone(),
            None => format!("{}{}@example.com", self.prefix, self.next),
        };
        self.next = (self.next + self.step) % self.users.max(1);
        post_json(
            self.addr,
            "/api/v1/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
            IPHONE,
        )
    }

    fn response(&mut self, status: u16, body: &Bytes) -> bool {
        if status != 200 {
            return false;
        }
        let field = if self.single.is_some() {
            "access_token"
        } else {
            "refresh_token"
        };
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return false;
        };
        match value[field].as_str() {
            Some(token) => {
                self.sink.lock().unwrap().push(token.to_owned());
                true
            }
            None => false,
        }
    }
}

/// Rotates its own refresh tokens round-robin.
#[derive(Debug)]
pub struct Refresh {
    addr: SocketAddr,
    tokens: Vec<String>,
    next: usize,
}

impl Refresh {
    pub fn new(addr: SocketAddr, tokens: Vec<String>) -> Self {
        Self {
            addr,
            tokens,
            next: 0,
        }
    }
}

impl Scenario for Refresh {
    fn request(&mut self) -> Request<Full<Bytes>> {
        post_json(
            self.addr,
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": self.tokens[self.next] }),
            IPHONE,
        )
    }

    fn response(&mut self, status: u16, body: &Bytes) -> bool {
        let fresh = (status == 200)
            .then(|| serde_json::from_slice::<Value>(body).ok())
            .flatten()
            .and_then(|v| v["refresh_token"].as_str().map(str::to_owned));
        let ok = match fresh {
            Some(token) => {
                self.tokens[self.next] = token;
                true
            }
            None => false,
        };
        self.next = (self.next + 1) % self.tokens.len();
        ok
    }
}
