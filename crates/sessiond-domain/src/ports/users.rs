use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{Email, PasswordHash, User, UserId};

/// Creating a user failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Another account has this e-mail address.
    #[error("e-mail address already registered")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Durable storage of user accounts.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user.
    ///
    /// # Errors
    /// [`CreateUserError::EmailTaken`] when the (normalised) e-mail exists, also when two
    /// creations race; [`CreateUserError::Store`] otherwise.
    async fn create(&self, user: &User) -> Result<(), CreateUserError>;

    /// The user with this e-mail, `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// The user with this id, `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Replaces the password hash; returns `false` if the user does not exist.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
