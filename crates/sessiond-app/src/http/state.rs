//! The state the handlers share, built from the composition root's services.

use std::sync::Arc;

use sessiond_domain::activity::ActivityBuffer;
use sessiond_domain::caching::NearSessions;
use sessiond_domain::feed::RevocationFeed;
use sessiond_domain::service::{AccountService, AdminService, AuthService, SessionService};
use sessiond_domain::trust::CacheTrust;

use actix_web::web;

use crate::config::HttpConfig;
use crate::http::routes;
use crate::probes::StoreProbes;
use crate::services::Services;

/// What every handler may use.
#[derive(Debug, Clone)]
pub struct AppState {
    pub auth: AuthService,
    pub sessions: SessionService,
    pub accounts: AccountService,
    pub admin: AdminService,
    pub http: HttpConfig,
    /// What readiness and metrics read of the stores.
    pub stores: StoreProbes,
    /// The revocation feed, for metrics; `None` when nothing is cached.
    pub feed: Option<Arc<RevocationFeed>>,
    /// Whether the caches may answer, for readiness and metrics; with the feed.
    pub trust: Option<Arc<CacheTrust>>,
    /// The near cache, for metrics.
    pub near: Option<Arc<NearSessions>>,
    /// The activity waiting for its write, for metrics.
    pub activity: Arc<ActivityBuffer>,
    /// The body of `GET /.well-known/jwks.json`, rendered once.
    pub jwks: web::Bytes,
}

impl AppState {
    /// The handlers' share of `services`.
    pub fn new(services: &Services, http: HttpConfig, stores: StoreProbes) -> Self {
        Self {
            auth: services.auth.clone(),
            sessions: services.sessions.clone(),
            accounts: services.accounts.clone(),
            admin: services.admin.clone(),
            http,
            stores,
            feed: services.feed.clone(),
            trust: services.trust.clone(),
            near: services.near.clone(),
            activity: Arc::clone(&services.activity),
            jwks: routes::keys::render(&services.public_keys),
        }
    }
}
