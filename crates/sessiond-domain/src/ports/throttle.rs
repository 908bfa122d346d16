use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;

/// Counts attempts per key in fixed windows: failed sign-ins per account, client address or
/// known device, wrong current passwords per user, registrations per client address. The
/// domain decides keys (prefixed by their kind: `account:`, `ip:`, `device:`, `password:`,
/// `register:`), windows and limits; the adapter only counts.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AttemptCounter: Send + Sync {
    /// Failures recorded for `key` in the window starting at `window_start`.
    ///
    /// # Errors
    /// [`StoreError`] when the counter store fails.
    async fn failures(&self, key: &str, window_start: OffsetDateTime) -> Result<u32, StoreError>;

    /// Records one failure for `key` in the window `[window_start, window_end)` and returns
    /// the new count. The count may be forgotten after `window_end`.
    ///
    /// # Errors
    /// [`StoreError`] when the counter store fails.
    async fn record_failure(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        window_end: OffsetDateTime,
    ) -> Result<u32, StoreError>;
}
