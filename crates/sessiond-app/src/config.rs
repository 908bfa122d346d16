//! Configuration (SPEC §7): `config/default.toml`, then `config/<SESSIOND_ENV>.toml`, then
//! environment variables — the seed's names as they are, and `SESSIOND_<SECTION>__<KEY>` for
//! every other setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sessiond_domain::model::{
    LimitAction, Role, RolePolicies, RolePolicy, SessionPolicy, ThrottlePolicy,
};
use time::Duration;

/// The JWT secret `make run` uses in dev mode. Refused everywhere else.
pub const DEV_JWT_SECRET: &str = "sessiond-dev-secret-never-use-it-in-production";

/// The environment that allows development defaults.
pub const DEV_ENV: &str = "dev";

/// Every setting of the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `SESSIOND_ENV`: `dev` allows the built-in JWT secret; anything else requires one.
    pub env: String,
    /// `BIND_ADDR`.
    pub bind_addr: SocketAddr,
    /// `METRICS_ADDR`: `GET /metrics` is served here and nowhere else (SPEC §4); port 0
    /// picks a free port.
    pub metrics_addr: SocketAddr,
    /// `DATABASE_URL`: PostgreSQL; none means in-memory storage.
    pub database_url: Option<SecretString>,
    /// `REDIS_URL`: the live-session cache on one Redis server; none means no cache (or
    /// a cluster).
    pub redis_url: Option<SecretString>,
    /// `REDIS_CLUSTER_URLS`: the live-session cache on a Redis Cluster, comma-separated seed
    /// nodes (SPEC §8); exclusive with `REDIS_URL`. A secret: the URLs may carry a password.
    pub redis_cluster_urls: Option<SecretString>,
    /// `SESSIOND_ADMIN_EMAIL` + `SESSIOND_ADMIN_PASSWORD`: a `system_admin` created at
    /// start-up if missing.
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    pub log_format: LogFormat,
    pub jwt: JwtConfig,
    pub sessions: SessionsConfig,
    pub roles: RolesConfig,
    pub argon2: Argon2Config,
    pub http: HttpConfig,
    pub cleanup: CleanupConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            env: "production".into(),
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            database_url: None,
            redis_url: None,
            redis_cluster_urls: None,
            admin_email: None,
            admin_password: None,
            log_format: LogFormat::Human,
            jwt: JwtConfig::default(),
            sessions: SessionsConfig::default(),
            roles: RolesConfig::default(),
            argon2: Argon2Config::default(),
            http: HttpConfig::default(),
            cleanup: CleanupConfig::default(),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

/// Access-token signing (SPEC §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// `JWT_ALGORITHM`: HS256 (a shared secret), or ES256 / EdDSA (a private key signs,
    /// the public keys are published at `/.well-known/jwks.json`).
    pub algorithm: JwtAlgorithm,
    /// `JWT_SECRET`, HS256 only: at least 32 bytes outside dev mode.
    pub secret: Option<SecretString>,
    /// The `kid` of the current key: `secret`, or the private key.
    pub kid: String,
    /// HS256 secrets still accepted for verification after a rotation.
    pub previous_keys: Vec<PreviousKey>,
    /// `JWT_PRIVATE_KEY_FILE`, ES256 / EdDSA: a PKCS#8 PEM file holding the private key.
    pub private_key_file: Option<PathBuf>,
    /// `JWT_PRIVATE_KEY`, ES256 / EdDSA: the PKCS#8 PEM itself (instead of a file).
    pub private_key: Option<SecretString>,
    /// ES256 / EdDSA public keys still accepted, and published, after a rotation (or
    /// published ahead of one).
    pub previous_public_keys: Vec<PreviousPublicKey>,
    pub issuer: String,
    pub audience: String,
    /// `ACCESS_TOKEN_TTL`, seconds.
    pub access_token_ttl: u32,
    /// Clock skew tolerated on `exp`, seconds.
    pub leeway: u32,
}

impl Default for JwtConfig {
    fn default() -> Self {
        let policy = SessionPolicy::default();
        Self {
            algorithm: JwtAlgorithm::Hs256,
            secret: None,
            kid: "k1".into(),
            previous_keys: Vec::new(),
            private_key_file: None,
            private_key: None,
            previous_public_keys: Vec::new(),
            issuer: "sessiond".into(),
            audience: "sessiond".into(),
            access_token_ttl: seconds(policy.access_token_ttl),
            leeway: seconds(policy.token_leeway),
        }
    }
}

/// The signing algorithm of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl JwtAlgorithm {
    /// The asymmetric algorithm, if this is one.
    pub fn asymmetric(self) -> Option<sessiond_jwt::AsymmetricAlgorithm> {
        match self {
            Self::Hs256 => None,
            Self::Es256 => Some(sessiond_jwt::AsymmetricAlgorithm::Es256),
            Self::EdDsa => Some(sessiond_jwt::AsymmetricAlgorithm::EdDsa),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    pub kid: String,
    pub secret: SecretString,
}

/// A public key of ES256 / EdDSA tokens other than the current one: in a PEM file, or the
/// PEM itself (one of the two).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousPublicKey {
    pub kid: String,
    pub public_key_file: Option<PathBuf>,
    pub public_key: Option<String>,
}

/// Session timings shared by all roles, in seconds unless named otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// `SESSION_REFRESH_THRESHOLD`.
    pub refresh_threshold: u32,
    pub activity_interval: u32,
    pub refresh_grace: u32,
    /// Ended sessions are listed in the history, then purged, after this many days.
    pub history_retention_days: u32,
    /// Failed sign-ins are counted in windows of this many seconds...
    pub throttle_window: u32,
    /// ...and refused for the rest of the window at these counts.
    pub max_failed_sign_ins_per_account: u32,
    pub max_failed_sign_ins_per_ip: u32,
    /// Registrations from one client address per throttle window; beyond, 429.
    pub max_registrations_per_ip: u32,
    /// Milliseconds: once a revocation is committed, every instance refuses the session
    /// within this bound (SPEC §8). The revocation log is read at least four times per
    /// bound even when no notification arrives.
    pub revocation_bound_ms: u32,
    /// Sessions kept in each instance's near cache (SPEC §8), entries; 0 turns it off. It
    /// only runs in front of Redis.
    pub near_cache_capacity: usize,
    /// Milliseconds between two batched writes of `last_activity` (SPEC §8).
    pub activity_flush_ms: u32,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        let policy = SessionPolicy::default();
        let throttle = policy.sign_in_throttle;
        Self {
            refresh_threshold: seconds(policy.refresh_threshold),
            activity_interval: seconds(policy.activity_interval),
            refresh_grace: seconds(policy.refresh_grace),
            history_retention_days: u32::try_from(policy.history_retention.whole_days())
                .unwrap_or(u32::MAX),
            throttle_window: seconds(throttle.window),
            max_failed_sign_ins_per_account: throttle.max_failures_per_account,
            max_failed_sign_ins_per_ip: throttle.max_failures_per_ip,
            max_registrations_per_ip: throttle.max_registrations_per_ip,
            revocation_bound_ms: 250,
            near_cache_capacity: 100_000,
            activity_flush_ms: 1_000,
        }
    }
}

/// One role's policy; seconds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub timeout: u32,
    pub absolute_lifetime: u32,
    pub max_sessions: u32,
    pub on_limit: OnLimit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    EvictOldest,
    Reject,
}

impl RoleConfig {
    fn default_for(role: Role) -> Self {
        let policy = RolePolicy::default_for(role);
        Self {
            timeout: seconds(policy.timeout),
            absolute_lifetime: seconds(policy.absolute_lifetime),
            max_sessions: policy.max_sessions,
            on_limit: match policy.on_limit {
                LimitAction::EvictOldest => OnLimit::EvictOldest,
                LimitAction::Reject => OnLimit::Reject,
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    pub guest: RoleConfig,
    pub hotel_employee: RoleConfig,
    pub vendor_admin: RoleConfig,
    pub system_admin: RoleConfig,
}

impl Default for RolesConfig {
    fn default() -> Self {
        Self {
            guest: RoleConfig::default_for(Role::Guest),
            hotel_employee: RoleConfig::default_for(Role::HotelEmployee),
            vendor_admin: RoleConfig::default_for(Role::VendorAdmin),
            system_admin: RoleConfig::default_for(Role::SystemAdmin),
        }
    }
}

impl RolesConfig {
    fn get(&self, role: Role) -> RoleConfig {
        match role {
            Role::Guest => self.guest,
            Role::HotelEmployee => self.hotel_employee,
            Role::VendorAdmin => self.vendor_admin,
            Role::SystemAdmin => self.system_admin,
        }
    }
}

/// Password hashing cost, and how many hashes may run and wait at once: each one holds
/// `memory_kib` while it runs, so the bound is the memory budget of sign-ins.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; 0 means one per core.
    pub max_concurrent: usize,
    /// Hashes waiting for a turn; beyond them, 503 with `Retry-After`.
    pub max_queued: usize,
}

impl Default for Argon2Config {
    fn default() -> Self {
        let cost = sessiond_argon2::Argon2Cost::default();
        Self {
            memory_kib: cost.memory_kib,
            iterations: cost.iterations,
            parallelism: cost.parallelism,
            max_concurrent: 0,
            max_queued: sessiond_argon2::HashingBounds::DEFAULT_MAX_QUEUED,
        }
    }
}

impl Argon2Config {
    /// The hashing bounds in force: `max_concurrent` 0 is the number of cores.
    pub fn bounds(&self) -> sessiond_argon2::HashingBounds {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        sessiond_argon2::HashingBounds {
            max_concurrent: if self.max_concurrent == 0 {
                cores
            } else {
                self.max_concurrent
            },
            max_queued: self.max_queued,
        }
    }
}

/// The HTTP edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest accepted JSON body, bytes.
    pub json_limit: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_allowed_origins: Vec<String>,
    /// Send `Strict-Transport-Security` (only behind HTTPS).
    pub hsts: bool,
    /// Longest accepted URL (path and query), bytes: 414 beyond.
    pub max_url_bytes: usize,
    /// Largest accepted header block, bytes: 431 beyond.
    pub max_header_bytes: usize,
    /// Longest time to receive a request body, ms, counted from the end of its head: 408
    /// beyond, and the connection is closed.
    pub body_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            json_limit: 4096,
            workers: 0,
            cors_allowed_origins: Vec::new(),
            hsts: false,
            max_url_bytes: 4096,
            max_header_bytes: 16 * 1024,
            body_timeout_ms: 10_000,
        }
    }
}

/// The cleanup job (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupConfig {
    /// Seconds between passes in `serve`; 0 turns the background job off.
    pub interval: u32,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self { interval: 3600 }
    }
}

/// PostgreSQL, when `DATABASE_URL` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: usize,
    /// How long a request waits for a pooled connection before answering 503, ms.
    pub acquire_timeout_ms: u64,
    /// `statement_timeout` of every connection, ms.
    pub statement_timeout_ms: u64,
    /// Apply pending migrations when `serve` starts (`sessiond migrate` always can).
    pub migrate_on_start: bool,
    /// Outside dev mode, serve on in-memory storage when `DATABASE_URL` is unset (a
    /// throwaway instance: every user and session vanishes at exit) instead of refusing.
    pub allow_in_memory: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout_ms: 2_000,
            statement_timeout_ms: 5_000,
            migrate_on_start: false,
            allow_in_memory: false,
        }
    }
}

/// Redis, when `REDIS_URL` or `REDIS_CLUSTER_URLS` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Every Redis command gives up after this long, ms: a hung Redis never hangs requests.
    pub command_timeout_ms: u64,
    /// Prepended to every key (to share one Redis between deployments or tests).
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            command_timeout_ms: 500,
            key_prefix: String::new(),
        }
    }
}

/// Whole seconds of a domain duration, for the settings' defaults. The session defaults are
/// the domain's (`SessionPolicy::default`, `RolePolicy::default_for`): the settings derive
/// theirs from it, and a test holds `config/default.toml` to it.
fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.whole_seconds()).unwrap_or(u32::MAX)
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value cannot be read: named as the user set it (the variable, or the file key).
    #[error("cannot read the configuration: {0}")]
    Load(String),
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// A figment error, naming the setting as the user wrote it: `ACCESS_TOKEN_TTL` rather
    /// than figment's `JWT.ACCESS_TOKEN_TTL`, `SESSIOND_HTTP__WORKERS` for a prefixed one,
    /// the file's key otherwise; one line per problem.
    fn unreadable(error: figment::Error) -> Self {
        let problems: Vec<String> = error
            .into_iter()
            .map(|problem| {
                let path = problem.path.join(".").to_ascii_lowercase();
                let named = setting_as_written(&path);
                format!("{named}: {}", problem.kind)
            })
            .collect();
        ConfigError::Load(problems.join("; "))
    }
}

/// How the user wrote the setting at `path` (`jwt.access_token_ttl`): the environment
/// variable that set it, if one did, else the key in the TOML files.
fn setting_as_written(path: &str) -> String {
    let set = |name: &str| std::env::var_os(name).is_some();
    if let Some((name, _)) = SEED_ENV_VARS
        .iter()
        .find(|(name, seed)| *seed == path && set(name))
    {
        return (*name).to_owned();
    }
    let prefixed = format!("SESSIOND_{}", path.replace('.', "__").to_ascii_uppercase());
    if set(&prefixed) {
        return prefixed;
    }
    if path.is_empty() {
        "the configuration".to_owned()
    } else {
        path.to_owned()
    }
}

/// The seed's variable names (SPEC §1, §7), the asymmetric keys' (issue 17), and where they
/// land.
const SEED_ENV_VARS: [(&str, &str); 23] = [
    ("SESSION_TIMEOUT_GUEST", "roles.guest.timeout"),
    ("SESSION_TIMEOUT_EMPLOYEE", "roles.hotel_employee.timeout"),
    ("SESSION_TIMEOUT_VENDOR", "roles.vendor_admin.timeout"),
    ("SESSION_TIMEOUT_ADMIN", "roles.system_admin.timeout"),
    ("MAX_SESSIONS_GUEST", "roles.guest.max_sessions"),
    ("MAX_SESSIONS_EMPLOYEE", "roles.hotel_employee.max_sessions"),
    ("MAX_SESSIONS_VENDOR", "roles.vendor_admin.max_sessions"),
    ("MAX_SESSIONS_ADMIN", "roles.system_admin.max_sessions"),
    ("SESSION_REFRESH_THRESHOLD", "sessions.refresh_threshold"),
    ("DATABASE_URL", "database_url"),
    ("REDIS_URL", "redis_url"),
    ("REDIS_CLUSTER_URLS", "redis_cluster_urls"),
    ("JWT_SECRET", "jwt.secret"),
    ("JWT_ALGORITHM", "jwt.algorithm"),
    ("JWT_PRIVATE_KEY_FILE", "jwt.private_key_file"),
    ("JWT_PRIVATE_KEY", "jwt.private_key"),
    ("ACCESS_TOKEN_TTL", "jwt.access_token_ttl"),
    ("BIND_ADDR", "bind_addr"),
    ("METRICS_ADDR", "metrics_addr"),
    ("SESSIOND_ENV", "env"),
    ("SESSIOND_ADMIN_EMAIL", "admin_email"),
    ("SESSIOND_ADMIN_PASSWORD", "admin_password"),
    ("SESSIOND_LOG_FORMAT", "log_format"),
];

/// The setting a seed variable names, if it is one.
fn seed_path(variable: &str) -> Option<&'static str> {
    SEED_ENV_VARS
        .iter()
        .find(|(name, _)| variable.eq_ignore_ascii_case(name))
        .map(|(_, path)| *path)
}

/// Settings that are text whatever their value looks like (a secret of digits, a `kid` of
/// `1`): taken from the environment verbatim instead of parsed.
const TEXT_SETTINGS: [&str; 15] = [
    "env",
    "database_url",
    "redis_url",
    "redis_cluster_urls",
    "admin_email",
    "admin_password",
    "log_format",
    "jwt.secret",
    "jwt.algorithm",
    "jwt.private_key_file",
    "jwt.private_key",
    "jwt.kid",
    "jwt.issuer",
    "jwt.audience",
    "redis.key_prefix",
];

fn is_text_setting(path: &str) -> bool {
    TEXT_SETTINGS.contains(&path.to_ascii_lowercase().as_str())
}

/// The text settings the environment sets, seed names first, then `SESSIOND_…__…` (which
/// override them, as with every other setting).
fn text_settings_from_env() -> Vec<(String, String)> {
    let variables: Vec<(String, String)> = std::env::vars().collect();
    let seeded = variables.iter().filter_map(|(name, value)| {
        let path = seed_path(name)?;
        is_text_setting(path).then(|| (path.to_owned(), value.clone()))
    });
    let prefixed = variables.iter().filter_map(|(name, value)| {
        let rest = name
            .get(..9)
            .filter(|prefix| prefix.eq_ignore_ascii_case("SESSIOND_"))
            .and_then(|_| name.get(9..))?;
        let path = rest.replace("__", ".").to_ascii_lowercase();
        (path.contains('.') && is_text_setting(&path)).then(|| (path, value.clone()))
    });
    let seeded: Vec<_> = seeded.collect();
    seeded.into_iter().chain(prefixed).collect()
}

/// Secrets published as examples (in this repository or commonly in tutorials): known to
/// everyone, so they sign nothing.
const KNOWN_SECRETS: [&str; 8] = [
    DEV_JWT_SECRET,
    "changeme",
    "secret",
    "password",
    "your-256-bit-secret",
    "your-secret-key",
    "supersecret",
    "jwt-secret",
];

/// The fewest distinct bytes a signing secret may have.
const MIN_DISTINCT_SECRET_BYTES: usize = 10;

/// The least entropy a signing secret may show, in bits: its length times the Shannon
/// entropy of its byte frequencies. A random 32-character hex string shows about 120.
const MIN_SECRET_ENTROPY_BITS: f64 = 100.0;

/// Why `secret` cannot sign tokens outside dev mode, if it cannot.
fn weak_secret(secret: &str) -> Option<&'static str> {
    let bytes = secret.as_bytes();
    if bytes.len() < 32 {
        return Some("must be at least 32 bytes");
    }
    let lowered = secret.to_ascii_lowercase();
    if KNOWN_SECRETS
        .iter()
        .any(|known| lowered == *known || repeats(lowered.as_bytes(), known.as_bytes()))
    {
        return Some("is a published example or the development default");
    }
    if (1..=bytes.len() / 2).any(|period| repeats(bytes, &bytes[..period])) {
        return Some("repeats a shorter string");
    }
    let mut counts = [0_usize; 256];
    for byte in bytes {
        counts[usize::from(*byte)] += 1;
    }
    if counts.iter().filter(|count| **count > 0).count() < MIN_DISTINCT_SECRET_BYTES {
        return Some("has too few distinct characters");
    }
    if shannon_bits(&counts, bytes.len()) < MIN_SECRET_ENTROPY_BITS {
        return Some("has too little entropy (use 32 random bytes, e.g. `openssl rand -hex 32`)");
    }
    None
}

/// Whether `text` is `unit` over and over (the last repetition may be cut short).
fn repeats(text: &[u8], unit: &[u8]) -> bool {
    !unit.is_empty()
        && text.len() > unit.len()
        && text
            .iter()
            .enumerate()
            .all(|(i, byte)| *byte == unit[i % unit.len()])
}

/// The Shannon entropy of these byte counts, times the length: an upper bound of what
/// the secret could hold, crude but enough to tell `aaaa…` and `abab…` from random.
#[expect(
    clippy::cast_precision_loss,
    reason = "counts of a secret's bytes are far below 2^52"
)]
fn shannon_bits(counts: &[usize; 256], length: usize) -> f64 {
    let total = length as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|count| **count > 0)
        .map(|count| {
            let p = *count as f64 / total;
            -p * p.log2()
        })
        .sum();
    per_byte * total
}

impl Settings {
    /// Reads the layered configuration from `config_dir` and the process environment, and
    /// checks it.
    ///
    /// # Errors
    /// [`ConfigError`] for unreadable or unsafe settings.
    pub fn load(config_dir: &Path) -> Result<Self, ConfigError> {
        let settings = Self::load_unchecked(config_dir)?;
        settings.validate()?;
        Ok(settings)
    }

    /// As [`Self::load`], for a command that signs nothing (`migrate`, `cleanup`, `user
    /// create`): everything is checked but the signing keys, which it does not need.
    ///
    /// # Errors
    /// [`ConfigError`] for unreadable or unsafe settings.
    pub fn load_for_command(config_dir: &Path) -> Result<Self, ConfigError> {
        let settings = Self::load_unchecked(config_dir)?;
        settings.validate_all_but_signing_keys()?;
        Ok(settings)
    }

    fn load_unchecked(config_dir: &Path) -> Result<Self, ConfigError> {
        let env = std::env::var("SESSIOND_ENV").unwrap_or_else(|_| Settings::default().env);
        // Each role's defaults go in first, so that one variable (say MAX_SESSIONS_GUEST)
        // overrides one field and not the whole role.
        let mut figment = Figment::new()
            .merge(Serialized::default("roles", RolesConfig::default()))
            .merge(Toml::file(config_dir.join("default.toml")))
            .merge(Toml::file(config_dir.join(format!("{env}.toml"))))
            .merge(
                Env::raw()
                    .filter_map(|key| seed_path(key.as_str()).map(Into::into))
                    .filter(|path| !is_text_setting(path.as_str())),
            )
            .merge(
                Env::prefixed("SESSIOND_")
                    .split("__")
                    .filter(|path| path.as_str().contains('.') && !is_text_setting(path.as_str())),
            );
        // Text settings as they are: figment would read a secret of digits as a number.
        for (path, value) in text_settings_from_env() {
            figment = figment.merge(Serialized::default(&path, value));
        }
        figment.extract().map_err(ConfigError::unreadable)
    }

    /// Whether development defaults are allowed.
    pub fn is_dev(&self) -> bool {
        self.env == DEV_ENV
    }

    /// The HS256 secret in force: the configured one, or the dev secret in dev mode.
    pub fn jwt_secret(&self) -> SecretString {
        self.jwt
            .secret
            .clone()
            .unwrap_or_else(|| SecretString::from(DEV_JWT_SECRET))
    }

    /// Refuses settings that would run unsafely or not at all.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_signing_keys()?;
        self.validate_all_but_signing_keys()
    }

    /// Refuses missing, weak or published signing keys outside dev mode, and keys of
    /// another algorithm than `jwt.algorithm` anywhere. (Whether a PEM key can be read is
    /// for start-up, `crate::keys`: a check here would read the files twice.)
    fn validate_signing_keys(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        let jwt = &self.jwt;
        if let Some(algorithm) = jwt.algorithm.asymmetric() {
            // JWT_SECRET is no signing key here: set or not, weak or not, it is not used.
            match (&jwt.private_key_file, &jwt.private_key) {
                (None, None) => {
                    return invalid(format!(
                        "jwt.algorithm {algorithm} needs its private key: JWT_PRIVATE_KEY_FILE \
                         (a PKCS#8 PEM file) or JWT_PRIVATE_KEY (the PEM itself)"
                    ));
                }
                (Some(_), Some(_)) => {
                    return invalid(
                        "JWT_PRIVATE_KEY_FILE and JWT_PRIVATE_KEY are both set; keep one".into(),
                    );
                }
                _ => {}
            }
            if !jwt.previous_keys.is_empty() {
                return invalid(format!(
                    "jwt.previous_keys are HS256 secrets; with {algorithm}, list the previous \
                     public keys in jwt.previous_public_keys"
                ));
            }
            for key in &jwt.previous_public_keys {
                if key.public_key_file.is_some() == key.public_key.is_some() {
                    return invalid(format!(
                        "previous public key {:?}: set one of public_key_file and public_key",
                        key.kid
                    ));
                }
            }
            return Ok(());
        }
        if jwt.private_key_file.is_some()
            || jwt.private_key.is_some()
            || !jwt.previous_public_keys.is_empty()
        {
            return invalid(
                "JWT_PRIVATE_KEY_FILE, JWT_PRIVATE_KEY and jwt.previous_public_keys are for \
                 ES256 and EdDSA; set jwt.algorithm (JWT_ALGORITHM), or remove them"
                    .into(),
            );
        }
        if !self.is_dev() {
            let Some(secret) = &self.jwt.secret else {
                return invalid("JWT_SECRET is required outside dev mode".into());
            };
            if let Some(why) = weak_secret(secret.expose_secret()) {
                return invalid(format!("JWT_SECRET {why}"));
            }
            for key in &self.jwt.previous_keys {
                if let Some(why) = weak_secret(key.secret.expose_secret()) {
                    return invalid(format!("the secret of previous key {:?} {why}", key.kid));
                }
            }
        }
        Ok(())
    }

    fn validate_all_but_signing_keys(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        for role in Role::ALL {
            let config = self.roles.get(role);
            if config.timeout == 0 || config.max_sessions == 0 {
                return invalid(format!("{role}: timeout and max_sessions must be positive"));
            }
            if config.absolute_lifetime < config.timeout {
                return invalid(format!("{role}: absolute_lifetime is shorter than timeout"));
            }
        }
        if self.sessions.revocation_bound_ms < 20 {
            return invalid("sessions.revocation_bound_ms must be at least 20".into());
        }
        if self.sessions.throttle_window == 0 {
            return invalid("sessions.throttle_window must be positive".into());
        }
        if self.jwt.access_token_ttl == 0 {
            return invalid("ACCESS_TOKEN_TTL must be positive".into());
        }
        if self.redis_url.is_some() && self.redis_cluster_urls.is_some() {
            return invalid(
                "REDIS_URL and REDIS_CLUSTER_URLS are both set: sessiond caches in one Redis \
                 server or in one Redis Cluster; unset one of them"
                    .into(),
            );
        }
        if self.redis_cluster_urls.is_some() && self.redis_cluster_seeds().is_empty() {
            return invalid("REDIS_CLUSTER_URLS names no node (comma-separated URLs)".into());
        }
        for (variable, set) in [
            ("REDIS_URL", self.redis_url.is_some()),
            ("REDIS_CLUSTER_URLS", self.redis_cluster_urls.is_some()),
        ] {
            if set && self.database_url.is_none() {
                return invalid(format!(
                    "{variable} needs DATABASE_URL: Redis caches PostgreSQL, it is not a store of its own"
                ));
            }
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return invalid("SESSIOND_ADMIN_EMAIL and SESSIOND_ADMIN_PASSWORD go together".into());
        }
        Ok(())
    }

    /// The seed nodes of `REDIS_CLUSTER_URLS` (empty when unset): comma-separated, blanks
    /// around each ignored.
    pub fn redis_cluster_seeds(&self) -> Vec<String> {
        self.redis_cluster_urls
            .as_ref()
            .map(|urls| {
                urls.expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How often the revocation log is read when no notification arrives: four times per
    /// revocation bound, so a lost notification costs at most a quarter of it. Heartbeats
    /// go twice as often.
    pub fn revocation_poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.sessions.revocation_bound_ms.max(4) / 4))
    }

    /// The revocation bound.
    pub fn revocation_bound(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.sessions.revocation_bound_ms))
    }

    /// How often the activity noted by validation is written.
    pub fn activity_flush(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.sessions.activity_flush_ms.max(1)))
    }

    /// The domain's view of these settings.
    pub fn session_policy(&self) -> SessionPolicy {
        let seconds = |s: u32| Duration::seconds(i64::from(s));
        let mut roles = RolePolicies::default();
        for role in Role::ALL {
            let config = self.roles.get(role);
            roles.set(
                role,
                RolePolicy {
                    timeout: seconds(config.timeout),
                    absolute_lifetime: seconds(config.absolute_lifetime),
                    max_sessions: config.max_sessions,
                    on_limit: match config.on_limit {
                        OnLimit::EvictOldest => LimitAction::EvictOldest,
                        OnLimit::Reject => LimitAction::Reject,
                    },
                },
            );
        }
        SessionPolicy {
            roles,
            access_token_ttl: seconds(self.jwt.access_token_ttl),
            refresh_threshold: seconds(self.sessions.refresh_threshold),
            token_leeway: seconds(self.jwt.leeway),
            activity_interval: seconds(self.sessions.activity_interval),
            refresh_grace: seconds(self.sessions.refresh_grace),
            history_retention: Duration::days(i64::from(self.sessions.history_retention_days)),
            sign_in_throttle: ThrottlePolicy {
                window: seconds(self.sessions.throttle_window),
                max_failures_per_account: self.sessions.max_failed_sign_ins_per_account,
                max_failures_per_ip: self.sessions.max_failed_sign_ins_per_ip,
                max_registrations_per_ip: self.sessions.max_registrations_per_ip,
            },
        }
    }
}

#[cfg(test)]
mod tests;
