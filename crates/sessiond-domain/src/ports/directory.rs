use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{User, UserFilter, UserPosition};

/// Finding users, for administrators: the search behind `GET /admin/users`.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// At most `limit` users that `filter` matches ([`UserFilter::matches`]: an e-mail
    /// prefix compares with the stored address, character for character), in the order
    /// of [`UserPosition::sort_key`] (newest first), starting strictly after `after` when
    /// given. Users created meanwhile with a later `created_at` never appear after a
    /// position, so a walk page by page neither repeats nor skips a user. Adapters keep
    /// the cost independent of the number of users (an index per filter).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn search(
        &self,
        filter: &UserFilter,
        after: Option<UserPosition>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError>;
}
