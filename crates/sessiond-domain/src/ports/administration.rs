use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{Role, User, UserId};

/// What an administrator changes on a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserChange {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// Changing a user failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateUserError {
    #[error("no such user")]
    NotFound,
    /// The change would leave the platform without an active `system_admin`.
    #[error("the last active system_admin cannot be demoted or disabled")]
    LastActiveAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Administrative changes to user accounts.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait UserAdministration: Send + Sync {
    /// Applies `change` to the user and returns the user as stored, with `updated_at = at`.
    /// Atomically refuses a change that leaves no active `system_admin`, also when two such
    /// changes race on different admins.
    ///
    /// # Errors
    /// [`UpdateUserError::NotFound`], [`UpdateUserError::LastActiveAdmin`] (nothing is
    /// written), [`UpdateUserError::Store`].
    async fn update(
        &self,
        id: UserId,
        change: UserChange,
        at: OffsetDateTime,
    ) -> Result<User, UpdateUserError>;
}
