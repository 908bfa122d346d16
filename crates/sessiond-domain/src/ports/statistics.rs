use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::StoredStatistics;

/// Counts kept for the administrators' statistics, so that reading them costs the same
/// however many sessions there are. Sessions opened and ended are counted by the store as
/// the sessions change (a store with triggers counts changes made by any path); failed
/// sign-ins are told by the domain.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SessionStatistics: Send + Sync {
    /// Counts one sign-in refused for a wrong e-mail or password, in the hour of `at`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; nothing is counted then.
    async fn record_failed_sign_in(&self, at: OffsetDateTime) -> Result<(), StoreError>;

    /// The sessions not ended now, by role, and the counts of every hour that starts at
    /// or after `since` (see [`StoredStatistics`]). Never scans the sessions: the cost
    /// stays flat as they grow.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn read(&self, since: OffsetDateTime) -> Result<StoredStatistics, StoreError>;

    /// Forgets the counts of hours that start before `before`, and compacts what it keeps.
    /// Safe to call from several instances at once (one does the work).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; what was committed stays committed.
    async fn forget_before(&self, before: OffsetDateTime) -> Result<(), StoreError>;
}
