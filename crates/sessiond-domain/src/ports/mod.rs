//! The ports: what the use cases need from the outside world, as small traits.
//!
//! Each method's documentation is the contract every adapter honours; the shared contract
//! suite in `tests/` checks the storage adapters against it.

mod cache;
mod clock;
mod device;
mod password;
mod random;
mod sessions;
mod tokens;
mod users;

pub use cache::SessionCache;
pub use clock::Clock;
pub use device::DeviceClassifier;
pub use password::{HashError, PasswordHasher};
pub use random::RandomSource;
pub use sessions::{CreateSessionError, SessionLimit, SessionRepository};
pub use tokens::{TokenCodec, TokenError};
pub use users::{CreateUserError, UserRepository};

#[cfg(any(test, feature = "mock"))]
pub use {
    cache::MockSessionCache, clock::MockClock, device::MockDeviceClassifier,
    password::MockPasswordHasher, random::MockRandomSource, sessions::MockSessionRepository,
    tokens::MockTokenCodec, users::MockUserRepository,
};
