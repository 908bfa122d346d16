//! A real sessiond on a free port, and a client that speaks its API.

use actix_web::dev::ServerHandle;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use sessiond_app::config::Argon2Config;
use sessiond_app::storage::Storage;
use sessiond_app::{Application, Settings};
use sessiond_domain::model::{Email, Password, Role};
use sessiond_domain::service::{AccountService, CleanupService, NewAccount};
use sessiond_redis::{RedisClusterSettings, RedisSessionCache, RedisSettings};
use uuid::Uuid;

use crate::redis_cluster::shared_cluster_urls;

pub const PASSWORD: &str = "correct horse battery";

pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
pub const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";

/// Settings for a test instance: any free port, a fixed secret, a cheap password hash.
pub fn test_settings() -> Settings {
    let mut settings = Settings {
        env: "test".into(),
        bind_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Settings::default()
    };
    settings.jwt.secret = Some(SecretString::from(
        "integration-test-secret-of-32-bytes-or-more",
    ));
    settings.argon2 = Argon2Config {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
        ..Argon2Config::default()
    };
    settings.http.workers = 2;
    // Tests run cleanup when they mean to, never at a random moment in between.
    settings.cleanup.interval = 0;
    settings
}

/// A running sessiond.
#[derive(Debug)]
pub struct TestApp {
    pub base_url: String,
    /// The metrics listener's `http://127.0.0.1:<port>`: `GET /metrics` is served there only.
    pub metrics_url: String,
    pub client: reqwest::Client,
    pub accounts: AccountService,
    pub cleanup: CleanupService,
    server: ServerHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A signed-in device: its tokens and the session they belong to.
#[derive(Debug, Clone)]
pub struct Device {
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    pub body: Value,
}

impl Device {
    fn from_body(body: Value) -> Self {
        Self {
            access_token: body["access_token"].as_str().unwrap_or_default().into(),
            refresh_token: body["refresh_token"].as_str().unwrap_or_default().into(),
            session_id: body["session"]["id"].as_str().unwrap_or_default().into(),
            body,
        }
    }
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// The problem `code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// The storage a test app runs on. Every HTTP test runs on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    /// A fresh PostgreSQL database, no cache.
    Postgres,
    /// A fresh PostgreSQL database behind the shared Redis, under a key prefix of its own.
    PostgresRedis,
    /// A fresh PostgreSQL database behind the shared test Redis Cluster
    /// ([`shared_cluster_urls`]), under a key prefix of its own.
    PostgresRedisCluster,
}

impl Backend {
    /// Fresh storage of this kind.
    pub async fn storage(self) -> Storage {
        match self {
            Backend::Memory => Storage::in_memory(),
            Backend::Postgres => Storage::postgres(fresh_pool().await, None),
            Backend::PostgresRedis => {
                let cache = RedisSessionCache::connect(redis_settings(SHARED_REDIS_URL))
                    .await
                    .expect("the shared Redis");
                Storage::postgres(fresh_pool().await, Some(cache))
            }
            Backend::PostgresRedisCluster => {
                let cache = RedisSessionCache::connect_cluster(redis_cluster_settings(
                    shared_cluster_urls(),
                ))
                .await
                .expect("the shared test cluster");
                Storage::postgres(fresh_pool().await, Some(cache))
            }
        }
    }
}

/// The machine's shared Redis; tests stay under their own key prefix there.
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Cache settings for `url` under a key prefix no other test uses.
pub fn redis_settings(url: &str) -> RedisSettings {
    RedisSettings {
        url: url.to_owned(),
        key_prefix: format!("test:{}:", Uuid::new_v4().simple()),
        command_timeout: std::time::Duration::from_millis(500),
    }
}

/// Cluster cache settings for `seeds` under a key prefix no other test uses.
pub fn redis_cluster_settings(seeds: Vec<String>) -> RedisClusterSettings {
    RedisClusterSettings {
        seeds,
        key_prefix: format!("test:{}:", Uuid::new_v4().simple()),
        command_timeout: std::time::Duration::from_millis(500),
    }
}

async fn fresh_pool() -> sessiond_postgres::PgPool {
    sessiond_postgres::testing::fresh_pool()
        .await
        .expect("a fresh PostgreSQL test database")
}

impl TestApp {
    /// sessiond with in-memory storage and test settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// sessiond with in-memory storage and test settings changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_backend(Backend::Memory, configure).await
    }

    /// sessiond on fresh storage of `backend`, with test settings changed by `configure`.
    pub async fn spawn_backend(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings();
        configure(&mut settings);
        Self::spawn_on(settings, backend.storage().await).await
    }

    /// sessiond with the given settings and storage.
    pub async fn spawn_on(settings: Settings, storage: Storage) -> Self {
        let app = Application::build_with_storage(settings, storage)
            .await
            .expect("the app builds");
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let metrics_url = format!("http://127.0.0.1:{}", app.metrics_port());
        let accounts = app.accounts();
        let cleanup = app.cleanup();
        let server = app.handle();
        let running = tokio::spawn(app.run_until_stopped());
        Self {
            base_url,
            metrics_url,
            client: reqwest::Client::new(),
            accounts,
            cleanup,
            server,
            running,
        }
    }

    /// Stops the server gracefully, as SIGTERM would, and waits until the application has
    /// finished (its shutdown work, the last activity flush, included).
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.running.await;
    }

    /// What `GET /metrics` on the metrics listener shows now.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.metrics_url))
            .send()
            .await
            .expect("the metrics listener answers");
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        response.text().await.expect("the metrics")
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
    }

    /// Sends and reads a request; `token` becomes a Bearer header.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// A fresh e-mail address.
    pub fn email() -> String {
        format!("user-{}@example.com", Uuid::new_v4().simple())
    }

    /// Creates a user of `role` with [`PASSWORD`] and returns its e-mail.
    pub async fn create_user(&self, role: Role) -> String {
        self.create_account(role, None).await
    }

    /// Creates a user of `role` at `hotel_id` (or none) with [`PASSWORD`] and returns its
    /// e-mail.
    pub async fn create_account(&self, role: Role, hotel_id: Option<i64>) -> String {
        let email = Self::email();
        self.accounts
            .create(NewAccount {
                email: Email::parse(&email).expect("valid e-mail"),
                password: Password::presented(PASSWORD.into()).expect("valid password"),
                role,
                hotel_id,
            })
            .await
            .expect("user created");
        email
    }

    /// The id of the user signed in on `device`.
    pub async fn user_id(&self, device: &Device) -> String {
        let me = self
            .get("/api/v1/sessions/current", &device.access_token)
            .await;
        me.body["user"]["id"]
            .as_str()
            .expect("whoami names the user")
            .to_owned()
    }

    /// Signs `email` in from a device with `user_agent`.
    pub async fn login(&self, email: &str, user_agent: &str) -> Device {
        let reply = self.try_login(email, PASSWORD, user_agent).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login failed: {:?}",
            reply.body
        );
        Device::from_body(reply.body)
    }

    pub async fn try_login(&self, email: &str, password: &str, user_agent: &str) -> Reply {
        read(
            self.request(Method::POST, "/api/v1/auth/login")
                .header("user-agent", user_agent)
                .json(&json!({ "email": email, "password": password })),
        )
        .await
    }

    /// Signs `device` out (`POST /auth/logout`).
    pub async fn logout(&self, device: &Device) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&device.access_token),
            None,
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh_token })),
        )
        .await
    }

    /// Refreshes and expects success.
    pub async fn refreshed(&self, device: &Device) -> Device {
        let reply = self.refresh(&device.refresh_token).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "refresh failed: {:?}",
            reply.body
        );
        Device::from_body(reply.body)
    }
}

/// Sends a request and reads status, content type and JSON body (`Null` when empty).
pub async fn read(request: RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.bytes().await.expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        content_type,
        body,
    }
}

/// Generates, for each named `async fn name(backend: Backend)`, one `#[tokio::test]` per
/// backend: `memory::name`, `postgres::name`, `postgres_redis::name`,
/// `postgres_redis_cluster::name`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::app::Backend::Memory).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::app::Backend::Postgres).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::app::Backend::PostgresRedis).await;
                }
            )*
        }
        mod postgres_redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::app::Backend::PostgresRedisCluster).await;
                }
            )*
        }
    };
}
