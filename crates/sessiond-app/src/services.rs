//! The composition root of the use cases: the domain's services wired to the adapters, built
//! once and shared by `serve` and the operator commands.

use std::sync::Arc;

use anyhow::Context;
use sessiond_argon2::{Argon2Cost, Argon2Hasher};
use sessiond_domain::caching::CachedSessionRepository;
use sessiond_domain::feed::RevocationFeed;
use sessiond_domain::model::{RevocationMemory, SessionPolicy};
use sessiond_domain::ports::{Clock, SessionRepository};
use sessiond_domain::service::{
    AccountService, AdminService, AuthService, CleanupService, Ports, SessionService,
};
use sessiond_jwt::{JwtCodec, JwtSettings, SigningKey};
use sessiond_useragent::WootheeClassifier;

use crate::audit::AuditLog;
use crate::config::Settings;
use crate::storage::Storage;
use crate::system::{OsRandom, SystemClock};

/// The domain's services on one storage.
#[derive(Debug, Clone)]
pub struct Services {
    pub auth: AuthService,
    pub sessions: SessionService,
    pub accounts: AccountService,
    pub admin: AdminService,
    pub cleanup: CleanupService,
    /// The revocation feed, when sessions are cached in front of a shared store.
    pub feed: Option<Arc<RevocationFeed>>,
}

impl Services {
    /// Plugs the adapters into the domain's services.
    ///
    /// # Errors
    /// When a setting cannot be used (unusable JWT keys, an out-of-range argon2 cost).
    pub fn build(settings: &Settings, storage: &Storage) -> anyhow::Result<Self> {
        let policy = Arc::new(settings.session_policy());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (sessions, feed) = cached_sessions(storage, &policy, &clock);
        let tokens = jwt_codec(settings)?;
        let hasher = Argon2Hasher::new(Argon2Cost {
            memory_kib: settings.argon2.memory_kib,
            iterations: settings.argon2.iterations,
            parallelism: settings.argon2.parallelism,
        })?;
        let ports = Ports {
            users: Arc::clone(&storage.users),
            sessions,
            hasher: Arc::new(hasher),
            tokens: Arc::new(tokens),
            devices: Arc::new(WootheeClassifier::new()),
            clock,
            random: Arc::new(OsRandom),
            attempts: Arc::clone(&storage.attempts),
            events: Arc::new(AuditLog),
        };
        Ok(Self {
            auth: AuthService::new(ports.clone(), Arc::clone(&policy)),
            sessions: SessionService::new(ports.clone(), Arc::clone(&policy)),
            accounts: AccountService::new(ports.clone()),
            cleanup: CleanupService::new(
                ports.clone(),
                policy,
                Arc::clone(&storage.cleanup),
                storage.session_cache(),
            ),
            admin: AdminService::new(ports, Arc::clone(&storage.administration)),
            feed,
        })
    }
}

/// The token codec with the configured signing keys.
fn jwt_codec(settings: &Settings) -> anyhow::Result<JwtCodec> {
    JwtCodec::new(JwtSettings {
        current: SigningKey {
            kid: settings.jwt.kid.clone(),
            secret: settings.jwt_secret(),
        },
        previous: settings
            .jwt
            .previous_keys
            .iter()
            .map(|key| SigningKey {
                kid: key.kid.clone(),
                secret: key.secret.clone(),
            })
            .collect(),
        issuer: settings.jwt.issuer.clone(),
        audience: settings.jwt.audience.clone(),
        leeway_seconds: u64::from(settings.jwt.leeway),
    })
    .context("the JWT signing keys")
}

/// The session repository that validation reads: the durable one, or the cache in front of
/// it kept honest by this instance's memory of revocations and the feed that fills it.
fn cached_sessions(
    storage: &Storage,
    policy: &SessionPolicy,
    clock: &Arc<dyn Clock>,
) -> (Arc<dyn SessionRepository>, Option<Arc<RevocationFeed>>) {
    let Some(cache) = storage.session_cache() else {
        return (Arc::clone(&storage.sessions), None);
    };
    let memory = Arc::new(RevocationMemory::new(policy.revocation_memory()));
    let sessions = Arc::new(CachedSessionRepository::new(
        Arc::clone(&cache),
        Arc::clone(&storage.sessions),
        Arc::clone(&memory),
    ));
    let feed = storage.revocation_log.as_ref().map(|log| {
        Arc::new(RevocationFeed::new(
            Arc::clone(log),
            memory,
            Some(cache),
            Arc::clone(clock),
        ))
    });
    (sessions, feed)
}
