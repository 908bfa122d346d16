use async_trait::async_trait;

use crate::error::BoxError;
use crate::model::{Password, PasswordHash};

/// The hasher did not answer (not a wrong password: that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot and every place in the queue is taken: overload, refused before
    /// any hashing memory is taken; worth a retry shortly.
    #[error("password hashing is at capacity")]
    Busy,
    /// The hasher itself failed.
    #[error("password hashing failed")]
    Failed(#[source] BoxError),
}

/// Slow, salted password hashing (argon2id in production).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A new salted hash of `password`.
    ///
    /// # Errors
    /// [`HashError::Busy`] under overload, [`HashError::Failed`] when the hasher fails.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`. A hash this hasher cannot read is `Ok(false)`.
    ///
    /// # Errors
    /// [`HashError::Busy`] under overload, [`HashError::Failed`] when the hasher fails.
    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, HashError>;

    /// Spends as long as [`Self::verify`] would, then forgets. Sign-in calls it for unknown
    /// e-mails so that response time does not tell which addresses have accounts; under
    /// overload it is refused like a real check, for the same reason.
    ///
    /// # Errors
    /// [`HashError::Busy`] under overload, [`HashError::Failed`] when the hasher fails.
    async fn verify_nothing(&self, password: &Password) -> Result<(), HashError>;
}
