//! The composition root of the use cases: the domain's services wired to the adapters, built
//! once and shared by `serve` and the operator commands.

use std::sync::Arc;

use sessiond_argon2::{Argon2Cost, Argon2Hasher};
use sessiond_domain::activity::ActivityBuffer;
use sessiond_domain::caching::{CachedSessionRepository, NearSessions};
use sessiond_domain::feed::RevocationFeed;
use sessiond_domain::model::{RevocationMemory, SessionPolicy};
use sessiond_domain::ports::{Clock, SessionRepository};
use sessiond_domain::service::{
    AccountService, AdminService, AuthService, CleanupService, Ports, SessionService,
};
use sessiond_domain::trust::CacheTrust;
use sessiond_jwt::PublicJwk;
use sessiond_memory::QuickNearCache;
use sessiond_useragent::WootheeClassifier;

use crate::audit::AuditLog;
use crate::config::Settings;
use crate::keys;
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
    /// Whether the caches may answer now; with the feed.
    pub trust: Option<Arc<CacheTrust>>,
    /// The in-process near cache, when it runs.
    pub near: Option<Arc<NearSessions>>,
    /// The activity validation noted, waiting for its batched write (to the durable
    /// sessions: the caches keep no activity of their own).
    pub activity: Arc<ActivityBuffer>,
    /// The keys that verify access tokens, as `/.well-known/jwks.json` publishes them (none
    /// with HS256).
    pub public_keys: Arc<[PublicJwk]>,
}

impl Services {
    /// Plugs the adapters into the domain's services.
    ///
    /// # Errors
    /// When a setting cannot be used (unusable JWT keys, an out-of-range argon2 cost).
    pub fn build(settings: &Settings, storage: &Storage) -> anyhow::Result<Self> {
        let policy = Arc::new(settings.session_policy());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let caching = Caching::build(settings, storage, &policy, &clock);
        let keys = keys::token_keys(settings)?;
        let device_keys = keys::device_keys(&keys)?;
        let tokens = keys::jwt_codec(settings, keys)?;
        let public_keys: Arc<[PublicJwk]> = tokens.public_keys().into();
        let hasher = Argon2Hasher::with_bounds(
            Argon2Cost {
                memory_kib: settings.argon2.memory_kib,
                iterations: settings.argon2.iterations,
                parallelism: settings.argon2.parallelism,
            },
            settings.argon2.bounds(),
        )?;
        let ports = Ports {
            users: Arc::clone(&storage.users),
            sessions: Arc::clone(&caching.sessions),
            hasher: Arc::new(hasher),
            tokens: Arc::new(tokens),
            devices: Arc::new(WootheeClassifier::new()),
            clock,
            random: Arc::new(OsRandom),
            attempts: Arc::clone(&storage.attempts),
            events: Arc::new(AuditLog),
            statistics: Arc::clone(&storage.statistics),
        };
        let activity = Arc::new(ActivityBuffer::new(ActivityBuffer::DEFAULT_CAPACITY));
        let mut auth = AuthService::new(ports.clone(), Arc::clone(&policy))
            .with_activity_buffer(Arc::clone(&activity))
            .with_device_keys(device_keys);
        if let Some(near) = &caching.near {
            auth = auth.with_near_cache(Arc::clone(near));
        }
        Ok(Self {
            auth,
            sessions: SessionService::new(ports.clone(), Arc::clone(&policy)),
            accounts: AccountService::new(ports.clone()).with_throttle(policy.sign_in_throttle),
            cleanup: CleanupService::new(
                ports.clone(),
                Arc::clone(&policy),
                Arc::clone(&storage.cleanup),
                storage.session_cache(),
            ),
            admin: AdminService::new(
                ports,
                policy,
                Arc::clone(&storage.administration),
                Arc::clone(&storage.directory),
            ),
            feed: caching.feed,
            trust: caching.trust,
            near: caching.near,
            activity,
            public_keys,
        })
    }
}

/// What stands between validation and the durable sessions: the near cache and Redis, the
/// memory of revocations and the feed that fills it, and the trust that decides when the
/// caches may answer (SPEC §8). Without Redis, validation reads the durable store alone.
struct Caching {
    sessions: Arc<dyn SessionRepository>,
    feed: Option<Arc<RevocationFeed>>,
    trust: Option<Arc<CacheTrust>>,
    near: Option<Arc<NearSessions>>,
}

impl Caching {
    fn build(
        settings: &Settings,
        storage: &Storage,
        policy: &SessionPolicy,
        clock: &Arc<dyn Clock>,
    ) -> Self {
        let Some(cache) = storage.session_cache() else {
            return Self {
                sessions: Arc::clone(&storage.sessions),
                feed: None,
                trust: None,
                near: None,
            };
        };
        let memory = Arc::new(RevocationMemory::new(policy.revocation_memory()));
        // Trust needs the feed: a cache with no revocation log (a test wiring) is trusted.
        let trust = storage.revocation_log.as_ref().map(|_| {
            let bound =
                time::Duration::milliseconds(i64::from(settings.sessions.revocation_bound_ms));
            Arc::new(CacheTrust::new(bound))
        });
        let near = (settings.sessions.near_cache_capacity > 0).then(|| {
            Arc::new(NearSessions::new(
                Arc::new(QuickNearCache::new(settings.sessions.near_cache_capacity)),
                Arc::clone(&memory),
                trust.clone(),
            ))
        });
        let mut sessions = CachedSessionRepository::new(
            Arc::clone(&cache),
            Arc::clone(&storage.sessions),
            Arc::clone(&memory),
        );
        if let Some(near) = &near {
            sessions = sessions.with_near_cache(Arc::clone(near));
        }
        if let Some(trust) = &trust {
            sessions = sessions.with_trust(Arc::clone(trust));
        }
        let feed = storage.revocation_log.as_ref().map(|log| {
            let mut feed =
                RevocationFeed::new(Arc::clone(log), memory, Some(cache), Arc::clone(clock));
            if let Some(near) = &near {
                feed = feed.with_near_cache(near.cache());
            }
            if let Some(trust) = &trust {
                feed = feed.with_trust(Arc::clone(trust), uuid::Uuid::new_v4());
            }
            Arc::new(feed)
        });
        Self {
            sessions: Arc::new(sessions),
            feed,
            trust,
            near,
        }
    }
}
