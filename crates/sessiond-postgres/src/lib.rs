//! PostgreSQL adapters for the storage ports of `sessiond-domain`: the source of truth
//! (SPEC §3).
//!
//! [`PgUserRepository`] (`UserRepository`, `UserAdministration`, `UserDirectory`),
//! [`PgSessionRepository`] (`SessionRepository`), [`PgSessionCleanup`] (`SessionCleanup`),
//! [`PgAttemptCounter`] (`AttemptCounter`), [`PgSessionStatistics`] (`SessionStatistics`)
//! and [`PgRevocationLog`] (`RevocationLog`) implement the domain's ports
//! with diesel on diesel-async (tokio-postgres underneath: no libpq), all over one [`PgPool`]
//! (deadpool, with an acquire timeout and a per-connection `statement_timeout`); the
//! revocation log also holds one connection of its own, outside the pool, to `LISTEN`.
//! [`run_migrations`] applies the repository's top-level `migrations/`, embedded at compile
//! time.
//!
//! This crate holds no session rules: what "live" means and which sessions a sign-in evicts
//! are the domain's decisions; the SQL here only makes them atomic. Errors are [`PgError`],
//! converted once into the ports' errors: no connection (pool timeout, refused, closed) is
//! `StoreError::Unavailable`, anything else `StoreError::Internal`, a taken e-mail
//! `CreateUserError::EmailTaken`.

mod attempts;
pub mod cleanup;
pub mod directory;
mod error;
mod pool;
mod revocations;
mod rows;
mod schema;
mod sessions;
pub mod statistics;
mod users;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use attempts::PgAttemptCounter;
pub use cleanup::{CleanupBatch, PgSessionCleanup};
pub use error::PgError;
pub use pool::{MIGRATIONS, PgPool, PgSettings, run_migrations};
pub use revocations::{LISTENER_APPLICATION_NAME, PgRevocationLog, REVOCATIONS_CHANNEL};
pub use sessions::PgSessionRepository;
pub use statistics::PgSessionStatistics;
pub use users::PgUserRepository;

/// A boxed error kept as a source.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
