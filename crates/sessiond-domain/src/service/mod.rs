//! The use cases, written against the ports.
//!
//! Three services share one set of ports: [`AuthService`] signs users in and validates
//! their requests, [`SessionService`] lets users see and end their sessions, and
//! [`AccountService`] manages accounts.

mod account;
mod admin;
mod auth;
mod cleanup;
mod sessions;
mod throttle;

use std::fmt;
use std::sync::Arc;

pub use account::{AccountService, NewAccount};
pub use admin::{AdminService, HISTORY_SHOWN, UserDetail};
pub use auth::{AuthService, SignIn, SignedIn};
pub use cleanup::{CLEANUP_BATCH_SIZE, CleanupReport, CleanupService};
pub use sessions::SessionService;

use crate::model::{Role, SessionSummary, UserId};
use crate::ports::{
    AttemptCounter, Clock, DeviceClassifier, PasswordHasher, RandomSource, SessionEvents,
    SessionRepository, SessionStatistics, TokenCodec, UserRepository,
};

/// The adapters a deployment plugs in, shared by every service.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenCodec>,
    pub devices: Arc<dyn DeviceClassifier>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub attempts: Arc<dyn AttemptCounter>,
    /// Told of every session opened and ended.
    pub events: Arc<dyn SessionEvents>,
    /// The counts behind the administrators' statistics.
    pub statistics: Arc<dyn SessionStatistics>,
}

impl fmt::Debug for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

impl Ports {
    /// 16 random bytes for a version-4 id.
    fn random_id_bytes(&self) -> [u8; 16] {
        let mut id = [0; 16];
        id.copy_from_slice(&self.random.bytes32()[..16]);
        id
    }
}

/// The authenticated caller of a request: a live session of an active user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    /// Shared with the near cache: validating a request copies nothing.
    pub session: Arc<SessionSummary>,
}

#[cfg(test)]
mod fixtures;
