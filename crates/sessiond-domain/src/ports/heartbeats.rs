use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::LogPosition;
use crate::error::StoreError;

/// How far one instance has read the revocation log, as it tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The instance, random per process.
    pub instance: Uuid,
    /// Every revocation below this position has been read by the instance.
    pub position: LogPosition,
    /// The newest entry it has read, wherever it stands; `None` before it read any.
    pub newest: Option<LogPosition>,
}

/// A heartbeat as read back from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedHeartbeat {
    pub heartbeat: Heartbeat,
    /// How long before the exchange that read it its instance published it, by the store's
    /// clock (zero for the one just published).
    pub age: Duration,
    /// Its instance has stopped serving ([`Heartbeats::leave`]): it revokes nothing more.
    pub left: bool,
}

/// Where the instances publish their heartbeats and read each other's (SPEC §8): Redis, so
/// that an instance cut off from PostgreSQL can still learn whether another one has read a
/// revocation that it has not, or has fallen silent.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Heartbeats: Send + Sync {
    /// Publishes `own` and returns the heartbeats, `own`'s included, that their instances
    /// published within the last `keep_for` by the store's clock; older ones are dropped.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be reached.
    async fn exchange(
        &self,
        own: &Heartbeat,
        keep_for: Duration,
    ) -> Result<Vec<PublishedHeartbeat>, StoreError>;

    /// Publishes `last` as the instance's final heartbeat, marked as left: it has stopped
    /// serving, so the others need not wait to hear from it again.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be reached (the others then treat the
    /// instance as fallen silent, which only costs them their vouch for a while).
    async fn leave(&self, last: &Heartbeat, keep_for: Duration) -> Result<(), StoreError>;
}
