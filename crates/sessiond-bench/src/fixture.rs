//! What the figures are measured on: sessiond (release build, in-process) on the bench's
//! stores, 10 000 users with one session each inserted in bulk, an access token minted
//! for each session with the app's JWT settings, and then the cache filled through the API
//! (which also checks that every minted token is accepted).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use deadpool_redis::redis;
use hyper::header::HeaderValue;
use secrecy::SecretString;
use sessiond_app::Application;
use sessiond_app::storage::Storage;
use sessiond_argon2::{Argon2Cost, Argon2Hasher};
use sessiond_domain::model::{
    AccessClaims, DeviceClass, DeviceInfo, Email, Password, PasswordHash, RefreshState,
    RefreshTokenHash, Role, Session, SessionId, SessionStatus, User, UserId,
};
use sessiond_domain::ports::{PasswordHasher, SessionLimit, SignInCheck, TokenCodec};
use sessiond_jwt::{JwtCodec, JwtSettings, SigningKey, TokenKeys};
use sessiond_postgres::{PgPool, PgSettings, run_migrations};
use sessiond_redis::{RedisClusterSettings, RedisSessionCache, RedisSettings};

use crate::env::{self, BenchDatabase, RedisServer, rows};
use crate::load::{self, GetWithAuth, Plan, Stop};
use crate::report::Report;
use crate::{IPHONE, JWT_SECRET, Knobs, PASSWORD, now};

/// sessiond with its bulk sessions, and the bench's own way into its database.
pub struct Fixture {
    pub addr: SocketAddr,
    /// Its metrics listener (`modes.rs` reads it).
    pub metrics: SocketAddr,
    pub pool: PgPool,
    pub sql: tokio_postgres::Client,
    /// (user, session) of the 10 000 bulk sessions, in order.
    pub sessions: Vec<(UserId, SessionId)>,
    pub tokens: Arc<Vec<HeaderValue>>,
    pub passwords: Passwords,
}

/// The password of every bench user, and its hash at two costs: the cheap one of the bulk
/// users (and of sessiond's settings here) and argon2's default one (the `bench-slow-`
/// users).
pub struct Passwords {
    pub password: Password,
    pub cheap_hasher: Argon2Hasher,
    pub default_hasher: Argon2Hasher,
    pub cheap_hash: PasswordHash,
    pub default_hash: PasswordHash,
}

/// What filling the cache left in Redis.
#[derive(Debug, Clone, Copy)]
pub struct Filled {
    /// Session keys in Redis.
    pub cached: u64,
    /// Growth of `used_memory` while filling.
    pub memory_delta: u64,
}

/// Cheap hashing for the bulk sign-ins; the real default cost is measured on its own.
const CHEAP: Argon2Cost = Argon2Cost {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// Starts sessiond on the bench's stores and gives it its bulk users and sessions.
pub async fn set_up(
    knobs: Knobs,
    redis: &RedisServer,
    database: &BenchDatabase,
) -> anyhow::Result<Fixture> {
    let settings = bench_settings(knobs)?;
    let (storage, pool) = postgres_storage(redis, database).await?;
    let sessiond = Instance::serve(settings.clone(), storage).await?;
    let (addr, metrics) = (sessiond.addr, sessiond.metrics);
    let sql = env::connect(&database.url).await?;
    let passwords = Passwords::hash().await?;
    let t = Instant::now();
    let sessions = insert_users_and_sessions(&sql, knobs.users, &passwords).await?;
    let tokens = mint_access_tokens(&settings, &sessions);
    eprintln!(
        "bench: {} users and sessions in {:.1?} (bulk SQL; tokens minted with the app's JWT settings)",
        sessions.len(),
        t.elapsed()
    );
    Ok(Fixture {
        addr,
        metrics,
        pool,
        sql,
        sessions,
        tokens: Arc::new(tokens),
        passwords,
    })
}

/// The settings every in-process sessiond of the bench runs with: the app's defaults, the
/// bench's JWT secret, the bulk users' cheap hashing, no cleanup job (the bench runs passes
/// itself), `knobs.server_workers` actix workers, and an `activity_interval` of 600 s.
pub fn bench_settings(knobs: Knobs) -> anyhow::Result<sessiond_app::Settings> {
    let mut settings = sessiond_app::Settings {
        env: "bench".into(),
        bind_addr: "127.0.0.1:0".parse()?,
        // Several in-process instances: each its own metrics port.
        metrics_addr: "127.0.0.1:0".parse()?,
        ..sessiond_app::Settings::default()
    };
    settings.jwt.secret = Some(SecretString::from(JWT_SECRET));
    settings.argon2.memory_kib = CHEAP.memory_kib;
    settings.argon2.iterations = CHEAP.iterations;
    settings.argon2.parallelism = CHEAP.parallelism;
    settings.http.workers = knobs.server_workers;
    settings.cleanup.interval = 0; // the bench runs cleanup passes itself
    // The 10 000 bulk sessions share one `last_activity`, so at the default 60 s they would
    // all fall due together, once a minute, in the middle of some measurement: a burst of
    // 10 000 activity notes and one batched write of 10 000 rows that no real population
    // (activity spread over the interval) has. Past the bench's length instead: the
    // throughput figures are validation alone. `activity.rs` measures that burst on
    // purpose, with the default interval.
    settings.sessions.activity_interval = 600;
    Ok(settings)
}

/// PostgreSQL (a pool of its own, migrated) with Redis in front, as `serve` wires them.
async fn postgres_storage(
    redis: &RedisServer,
    database: &BenchDatabase,
) -> anyhow::Result<(Storage, PgPool)> {
    let pool = postgres_pool(database).await?;
    let cache = RedisSessionCache::connect(RedisSettings {
        url: redis.url.clone(),
        key_prefix: String::new(),
        command_timeout: REDIS_COMMAND_TIMEOUT,
    })
    .await?;
    Ok((Storage::postgres(pool.clone(), Some(cache)), pool))
}

/// The bench's instances' Redis command timeout.
const REDIS_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// A pool of its own on the bench's database, migrated.
async fn postgres_pool(database: &BenchDatabase) -> anyhow::Result<PgPool> {
    let pg_defaults = sessiond_app::Settings::default().database;
    let pool = PgPool::connect(&PgSettings {
        url: database.url.clone(),
        max_connections: pg_defaults.max_connections,
        acquire_timeout: Duration::from_millis(pg_defaults.acquire_timeout_ms),
        statement_timeout: Duration::from_secs(120),
    })
    .await?;
    run_migrations(&pool).await?;
    Ok(pool)
}

/// Where an extra instance keeps its cache.
#[derive(Debug, Clone, Copy)]
pub enum CacheOn<'a> {
    /// The bench's redis-server.
    Server(&'a RedisServer),
    /// A Redis Cluster, by its seed nodes.
    Cluster(&'a [String]),
}

/// Another sessiond on the bench's database with its cache `on` a Redis server or cluster
/// and a near cache of `near_cache_capacity` entries (0: none, so that every validation
/// reads Redis).
pub async fn start_instance_on(
    knobs: Knobs,
    on: CacheOn<'_>,
    database: &BenchDatabase,
    near_cache_capacity: usize,
) -> anyhow::Result<Instance> {
    let mut settings = bench_settings(knobs)?;
    settings.sessions.near_cache_capacity = near_cache_capacity;
    let pool = postgres_pool(database).await?;
    let cache = match on {
        CacheOn::Server(redis) => {
            RedisSessionCache::connect(RedisSettings {
                url: redis.url.clone(),
                key_prefix: String::new(),
                command_timeout: REDIS_COMMAND_TIMEOUT,
            })
            .await?
        }
        CacheOn::Cluster(seeds) => {
            RedisSessionCache::connect_cluster(RedisClusterSettings {
                seeds: seeds.to_vec(),
                key_prefix: String::new(),
                command_timeout: REDIS_COMMAND_TIMEOUT,
            })
            .await?
        }
    };
    Instance::serve(settings, Storage::postgres(pool, Some(cache))).await
}

/// A sessiond running in this process, stopped by [`Instance::stop`].
pub struct Instance {
    pub addr: SocketAddr,
    /// Its metrics listener.
    pub metrics: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Instance {
    /// Builds and starts sessiond on `storage`.
    async fn serve(settings: sessiond_app::Settings, storage: Storage) -> anyhow::Result<Self> {
        let app = Application::build_with_storage(settings, storage).await?;
        let addr: SocketAddr = ([127, 0, 0, 1], app.port()).into();
        let metrics: SocketAddr = ([127, 0, 0, 1], app.metrics_port()).into();
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        Ok(Self {
            addr,
            metrics,
            handle,
            task,
        })
    }

    /// Stops it gracefully (its background jobs end, its activity is flushed).
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

/// Another sessiond on the bench's PostgreSQL database and redis-server, with the bench's
/// settings except `activity_interval` (seconds): a second instance on the same stores,
/// with a near cache of its own.
pub async fn start_postgres_instance(
    knobs: Knobs,
    redis: &RedisServer,
    database: &BenchDatabase,
    activity_interval: u32,
) -> anyhow::Result<Instance> {
    let mut settings = bench_settings(knobs)?;
    settings.sessions.activity_interval = activity_interval;
    let (storage, _) = postgres_storage(redis, database).await?;
    Instance::serve(settings, storage).await
}

/// A refresh-token hash nobody holds the token of (the bench never refreshes these).
fn random_refresh_hash() -> RefreshTokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    RefreshTokenHash::from_bytes(bytes)
}

/// sessiond's own ceiling: a sessiond with the bench's settings on the in-memory store
/// (`Storage::in_memory()`: no Redis, no near cache, no feed), with `users` users and one
/// live session each written through its repositories (the same rows as the bulk ones:
/// iPhone user agent, an address), and a token minted for each with the app's JWT settings.
pub async fn start_in_memory(
    knobs: Knobs,
    users: u64,
    passwords: &Passwords,
) -> anyhow::Result<(Instance, Arc<Vec<HeaderValue>>)> {
    let settings = bench_settings(knobs)?;
    let storage = Storage::in_memory();
    let policy = settings.session_policy();
    let role = policy.roles.get(Role::Guest);
    let limit = SessionLimit {
        max_sessions: role.max_sessions,
        on_limit: role.on_limit,
    };
    let check = SignInCheck {
        password_hash: passwords.cheap_hash.clone(),
    };
    let at = now();
    let mut sessions = Vec::with_capacity(users as usize);
    for n in 0..users {
        let user = User {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            email: Email::parse(&format!("bench-{n}@example.com"))?,
            password_hash: passwords.cheap_hash.clone(),
            role: Role::Guest,
            hotel_id: None,
            is_active: true,
            created_at: at,
            updated_at: at,
        };
        storage.users.create(&user).await?;
        let session = Session {
            id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            user_id: user.id,
            role: Role::Guest,
            hotel_id: None,
            device: DeviceInfo {
                class: DeviceClass::IPhone,
                browser: Some("Safari".into()),
            },
            device_name: None,
            ip_address: Some(IpAddr::from([203, 0, 113, (n % 250) as u8])),
            user_agent: Some(IPHONE.into()),
            created_at: at,
            last_activity: at,
            expires_at: role.expiry(at, at),
            status: SessionStatus::Active,
            refresh: RefreshState {
                current: random_refresh_hash(),
                previous: None,
                rotated_at: None,
            },
            ended_by: None,
            version: 1,
        };
        storage
            .sessions
            .create_within_limit(&session, limit, &check, at)
            .await?;
        sessions.push((user.id, session.id));
    }
    let tokens = mint_access_tokens(&settings, &sessions);
    let instance = Instance::serve(settings, storage).await?;
    Ok((instance, Arc::new(tokens)))
}

impl Passwords {
    async fn hash() -> anyhow::Result<Passwords> {
        let cheap_hasher = Argon2Hasher::new(CHEAP)?;
        let default_hasher = Argon2Hasher::new(Argon2Cost::default())?;
        let password = Password::presented(PASSWORD.into())?;
        let cheap_hash = cheap_hasher.hash(&password).await?;
        let default_hash = default_hasher.hash(&password).await?;
        Ok(Passwords {
            password,
            cheap_hasher,
            default_hasher,
            cheap_hash,
            default_hash,
        })
    }
}

/// `users` users `bench-<n>@example.com` with one live session each, 64 users
/// `bench-slow-<n>` at the default hashing cost, and the listing user (no session yet), in
/// bulk SQL; returns the bulk sessions in e-mail order.
async fn insert_users_and_sessions(
    sql: &tokio_postgres::Client,
    users: u64,
    passwords: &Passwords,
) -> anyhow::Result<Vec<(UserId, SessionId)>> {
    sql.batch_execute(&format!(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT gen_random_uuid(), 'bench-' || i || '@example.com', '{cheap}', 'guest', now(), now() \
         FROM generate_series(0, {last}) AS i; \
         INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         SELECT gen_random_uuid(), 'bench-slow-' || i || '@example.com', '{slow}', 'guest', now(), now() \
         FROM generate_series(0, 63) AS i; \
         INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'bench-list@example.com', '{cheap}', 'guest', now(), now()); \
         INSERT INTO user_sessions (id, user_id, device_info, ip_address, user_agent, created_at, \
             last_activity, expires_at, is_active, role, browser, refresh_token_hash) \
         SELECT gen_random_uuid(), id, 'iPhone', '203.0.113.' || (random() * 250)::int, '{IPHONE}', \
             now(), now(), now() + interval '24 hours', true, 'guest', 'Safari', \
             sha256(convert_to(gen_random_uuid()::text, 'UTF8')) \
         FROM users WHERE email LIKE 'bench-%' AND email NOT LIKE 'bench-slow-%' \
             AND email <> 'bench-list@example.com'; \
         ANALYZE",
        cheap = passwords.cheap_hash.as_str(),
        slow = passwords.default_hash.as_str(),
        last = users - 1,
    ))
    .await?;
    Ok(rows(
        sql,
        "SELECT s.user_id, s.id FROM user_sessions s JOIN users u ON u.id = s.user_id \
         ORDER BY u.email",
    )
    .await?
    .into_iter()
    .map(|row| {
        (
            UserId::from_uuid(row[0].parse().unwrap()),
            SessionId::from_uuid(row[1].parse().unwrap()),
        )
    })
    .collect())
}

/// `Bearer <access token>` for each session, minted as sessiond would at sign-in.
fn mint_access_tokens(
    settings: &sessiond_app::Settings,
    sessions: &[(UserId, SessionId)],
) -> Vec<HeaderValue> {
    let jwt = JwtCodec::new(JwtSettings {
        keys: TokenKeys::Hs256 {
            current: SigningKey {
                kid: settings.jwt.kid.clone(),
                secret: settings.jwt_secret(),
            },
            previous: Vec::new(),
        },
        issuer: settings.jwt.issuer.clone(),
        audience: settings.jwt.audience.clone(),
        leeway_seconds: u64::from(settings.jwt.leeway),
    })
    .unwrap();
    let policy = settings.session_policy();
    let issued = now();
    sessions
        .iter()
        .map(|&(user_id, session_id)| {
            let claims = AccessClaims {
                user_id,
                session_id,
                role: Role::Guest,
                issued_at: issued,
                expires_at: policy.access_token_expiry(issued, issued + time::Duration::days(1)),
                token_id: uuid::Uuid::new_v4(),
            };
            let token = jwt.encode(&claims).unwrap();
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
        })
        .collect()
}

/// Sweeps at most this many times.
const MAX_SWEEPS: u32 = 5;

/// Validates every bulk session through the API (cold: a PostgreSQL read and a Redis refill
/// each), which fills the caches, sweeping again while Redis lacks any of them; fails unless
/// every minted token was accepted.
pub async fn fill_cache(
    report: &mut Report,
    clients: &tokio::runtime::Handle,
    rconn: &mut redis::aio::MultiplexedConnection,
    fixture: &Fixture,
) -> anyhow::Result<Filled> {
    let addr = fixture.addr;
    let memory_before = env::used_memory(rconn).await?;
    let mut sweeps = 0;
    let mut cached = 0;
    let mut unavailable = 0;
    // While the revocation feed is behind its bound (a start-up, or a machine this busy),
    // sessiond reads PostgreSQL alone and fills neither cache, and a pool that cannot keep
    // up answers 503: sweep again (each sweep only refills what is missing) until Redis
    // holds every session.
    while sweeps < MAX_SWEEPS && cached < fixture.sessions.len() as u64 {
        let tokens = Arc::clone(&fixture.tokens);
        let sweep = load::run_on(
            clients,
            addr,
            Plan {
                connections: 32,
                warm_up: Duration::ZERO,
                stop: Stop::Each((tokens.len() as u64).div_ceil(32)),
            },
            move |w| GetWithAuth::new(addr, "/api/v1/sessions/current", tokens.clone(), w, 32),
        )
        .await?;
        let busy = sweep.failures.get(&503).copied().unwrap_or(0);
        anyhow::ensure!(
            sweep.errors == busy,
            "{} of {} validations failed ({}): the minted tokens are not accepted",
            sweep.errors,
            sweep.requests,
            sweep.failures()
        );
        unavailable += busy;
        sweeps += 1;
        cached = env::count_keys(rconn, "session:*").await?;
    }
    anyhow::ensure!(
        cached == fixture.sessions.len() as u64,
        "only {cached} of {} sessions in Redis after {sweeps} sweeps",
        fixture.sessions.len()
    );
    let memory_after = env::used_memory(rconn).await?;
    report.note(format!(
        "Validation: all {} bulk sessions validated through the API (cold: PostgreSQL read + Redis refill), {} now cached in Redis ({} sweep{} of every token{}).",
        fixture.sessions.len(),
        cached,
        sweeps,
        if sweeps == 1 { "" } else { "s" },
        if sweeps == 1 {
            String::new()
        } else {
            format!(
                ": while the revocation feed is behind its bound sessiond reads PostgreSQL alone and fills no cache; {unavailable} answers were 503"
            )
        }
    ));
    Ok(Filled {
        cached,
        memory_delta: memory_after.saturating_sub(memory_before),
    })
}
