use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{SessionId, UserId};

/// What one cleanup pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupOutcome {
    /// Sessions that were active past `expires_at` and are now ended with `expired`.
    pub expired: Vec<(UserId, SessionId)>,
    /// Ended sessions deleted after the retention period.
    pub purged: u64,
}

/// Bulk maintenance of the session store (SPEC §5).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SessionCleanup: Send + Sync {
    /// Runs one pass unless another is running anywhere (then `Ok(None)`): ends every active
    /// session with `expires_at <= now` (reason `expired`, ended at its `expires_at`), and
    /// deletes sessions that ended before `purge_before`, both in batches of at most
    /// `batch_size` rows, with work proportional to the rows affected; and prunes the
    /// revocation log of entries made before `forget_revocations_before` (no instance needs
    /// to remember them any more). Idempotent: a second pass at the same `now` finds
    /// nothing.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; batches already committed stay committed.
    async fn run_pass(
        &self,
        now: OffsetDateTime,
        purge_before: OffsetDateTime,
        forget_revocations_before: OffsetDateTime,
        batch_size: u32,
    ) -> Result<Option<CleanupOutcome>, StoreError>;
}
