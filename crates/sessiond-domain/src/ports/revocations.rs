use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::Revocation;

/// A place in the revocation log, opaque to the domain: what to read from next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition(pub u64);

/// What one read of the revocation log returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationBatch {
    pub revocations: Vec<Revocation>,
    /// Where the next read starts.
    pub next: LogPosition,
    /// The position of the newest entry in `revocations`; `None` when there is none. An
    /// entry at or beyond a reader's `next` may not have been read by it yet: heartbeats
    /// compare the two ([`super::Heartbeats`]).
    pub newest: Option<LogPosition>,
}

/// The revocation log (SPEC §8): every session end other than expiry, committed by the
/// store in the same transaction as the end itself, and news of new entries.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait RevocationLog: Send + Sync {
    /// Every revocation committed since the read that returned `from` (the whole log when
    /// `None`); it may repeat some read before. No revocation committed after that read is
    /// ever skipped, whatever order concurrent transactions commit in. Entries are kept at
    /// least as long as any instance must remember them, so a reader that was away for
    /// longer loses nothing it still needs.
    ///
    /// # Errors
    /// [`StoreError`] when the log cannot be read.
    async fn read(&self, from: Option<LogPosition>) -> Result<RevocationBatch, StoreError>;

    /// Returns when a revocation may have been committed since the last call, or after
    /// `timeout` at the latest; never sooner than that when news cannot be received (the
    /// store is unreachable), so that a caller that reads in a loop does not spin. Returns
    /// the revocations the news named, if it named any: a head start on the next
    /// [`Self::read`], which stays the record (news can be lost, and may name none).
    async fn wait(&self, timeout: Duration) -> Vec<Revocation>;
}
