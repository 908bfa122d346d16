use async_trait::async_trait;

use crate::error::BoxError;
use crate::model::{Password, PasswordHash};

/// The hasher failed (not a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError(#[source] pub BoxError);

/// Slow, salted password hashing (argon2id in production).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A new salted hash of `password`.
    ///
    /// # Errors
    /// [`HashError`] when the hasher itself fails.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`. A hash this hasher cannot read is `Ok(false)`.
    ///
    /// # Errors
    /// [`HashError`] when the hasher itself fails.
    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, HashError>;

    /// Spends as long as [`Self::verify`] would, then forgets. Sign-in calls it for unknown
    /// e-mails so that response time does not tell which addresses have accounts.
    async fn verify_nothing(&self, password: &Password);
}
