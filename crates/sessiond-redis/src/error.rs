//! The adapter's own errors, converted once into the port's [`StoreError`].

use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};
use sessiond_domain::StoreError;

use crate::codec::DecodeError;

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisCacheError {
    /// The URL (or another setting) is not usable; fix the configuration.
    #[error("invalid Redis settings")]
    Settings(#[source] RedisError),
    /// The connection pool could not be built.
    #[error("cannot build the Redis connection pool")]
    Build(#[source] deadpool_redis::BuildError),
    /// No connection could be opened.
    #[error("cannot connect to Redis")]
    Connect(#[source] deadpool_redis::PoolError),
    /// No seed node of the cluster answered, or none could tell the slot map.
    #[error("cannot connect to the Redis Cluster")]
    ConnectCluster(#[source] RedisError),
    /// A connection attempt failed moments ago; the next one waits a little.
    #[error("Redis is not connected (reconnecting)")]
    Reconnecting,
    /// Redis gave no answer within the command timeout.
    #[error("Redis gave no answer within {0:?}")]
    Timeout(Duration),
    /// Redis (or the connection to it) answered with an error.
    #[error("Redis command failed")]
    Command(#[source] RedisError),
    /// A cached value that this build cannot read.
    #[error("corrupt cached value")]
    Corrupt(#[source] DecodeError),
    /// `CLUSTER INFO` answered something this build cannot read.
    #[error("unreadable CLUSTER INFO: {0}")]
    ClusterInfo(String),
}

impl RedisCacheError {
    /// Whether this is "Redis is unreachable or not answering now", as opposed to a bug or a
    /// corrupt value: the former is an outage, degraded mode, and worth a retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            RedisCacheError::Connect(_)
            | RedisCacheError::ConnectCluster(_)
            | RedisCacheError::Reconnecting
            | RedisCacheError::Timeout(_) => true,
            RedisCacheError::Command(error) => is_unavailable(error),
            RedisCacheError::Settings(_)
            | RedisCacheError::Build(_)
            | RedisCacheError::Corrupt(_)
            | RedisCacheError::ClusterInfo(_) => false,
        }
    }
}

/// Connection-level failures and "busy, try later" replies; everything else (a wrong type,
/// a script error) is a bug.
pub(crate) fn is_unavailable(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Io
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
    ) || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

impl From<RedisCacheError> for StoreError {
    fn from(error: RedisCacheError) -> Self {
        if error.is_unavailable() {
            StoreError::Unavailable(Box::new(error))
        } else {
            StoreError::Internal(Box::new(error))
        }
    }
}
