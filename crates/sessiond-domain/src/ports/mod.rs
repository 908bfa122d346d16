//! The ports: what the use cases need from the outside world, as small traits.
//!
//! Each method's documentation is the contract every adapter honours; the shared contract
//! suite in `tests/` checks the storage adapters against it.

mod administration;
mod cache;
mod cleanup;
mod clock;
mod device;
mod directory;
mod events;
mod heartbeats;
mod near_cache;
mod password;
mod random;
mod revocations;
mod sessions;
mod statistics;
mod throttle;
mod tokens;
mod users;

pub use administration::{UpdateUserError, UserAdministration, UserChange};
pub use cache::SessionCache;
pub use cleanup::{CleanupOutcome, SessionCleanup};
pub use clock::Clock;
pub use device::DeviceClassifier;
pub use directory::UserDirectory;
pub use events::SessionEvents;
pub use heartbeats::{Heartbeat, Heartbeats, PublishedHeartbeat};
pub use near_cache::NearCache;
pub use password::{HashError, PasswordHasher};
pub use random::RandomSource;
pub use revocations::{LogPosition, RevocationBatch, RevocationLog};
pub use sessions::{CreateSessionError, SessionLimit, SessionRepository, SignInCheck};
pub use statistics::SessionStatistics;
pub use throttle::AttemptCounter;
pub use tokens::{TokenCodec, TokenError};
pub use users::{CreateUserError, UserRepository};

#[cfg(any(test, feature = "mock"))]
pub use {
    administration::MockUserAdministration, cache::MockSessionCache, cleanup::MockSessionCleanup,
    clock::MockClock, device::MockDeviceClassifier, directory::MockUserDirectory,
    events::MockSessionEvents, heartbeats::MockHeartbeats, near_cache::MockNearCache,
    password::MockPasswordHasher, random::MockRandomSource, revocations::MockRevocationLog,
    sessions::MockSessionRepository, statistics::MockSessionStatistics,
    throttle::MockAttemptCounter, tokens::MockTokenCodec, users::MockUserRepository,
};
