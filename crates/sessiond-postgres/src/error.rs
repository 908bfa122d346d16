//! The adapter's own error, converted once into the ports' errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ConnectionPoolError;
use diesel_async::pooled_connection::deadpool::{BuildError, PoolError};
use sessiond_domain::StoreError;
use sessiond_domain::ports::{CreateSessionError, CreateUserError, UpdateUserError};

use crate::BoxError;

/// Everything that can go wrong talking to PostgreSQL. Each variant keeps its source.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The pool could not be built from the settings.
    #[error("invalid PostgreSQL pool settings")]
    Config(#[source] BuildError),
    /// No connection could be had: pool wait timeout, connection refused, pool closed.
    #[error("no PostgreSQL connection available")]
    Pool(#[source] PoolError),
    /// Opening a connection outside the pool failed.
    #[error("connecting to PostgreSQL failed")]
    Connect(#[from] diesel::ConnectionError),
    /// A statement failed.
    #[error("PostgreSQL query failed")]
    Query(#[from] DieselError),
    /// Applying the embedded migrations failed.
    #[error("running the database migrations failed")]
    Migration(#[source] BoxError),
    /// A stored row violates what the domain allows (should be impossible given the CHECKs).
    #[error("corrupt row in {table}: {problem}")]
    CorruptRow {
        table: &'static str,
        problem: String,
    },
}

impl From<PoolError> for PgError {
    fn from(error: PoolError) -> Self {
        PgError::Pool(error)
    }
}

impl PgError {
    /// Whether a retry later may succeed without anyone changing anything: the database is
    /// unreachable, the pool is exhausted or shut down, or the connection dropped.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PgError::Pool(pool) => match pool {
                PoolError::Timeout(_) | PoolError::Closed => true,
                // Creating a connection failed (refused, DNS, auth) or a recycled connection
                // did not answer its ping.
                PoolError::Backend(
                    ConnectionPoolError::ConnectionError(_) | ConnectionPoolError::QueryError(_),
                ) => true,
                PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => false,
            },
            PgError::Connect(_) => true,
            PgError::Query(error) => is_connection_lost(error),
            PgError::Config(_) | PgError::Migration(_) | PgError::CorruptRow { .. } => false,
        }
    }

    /// The name of the unique constraint this error violated, if that is what it is.
    pub(crate) fn unique_violation(&self) -> Option<&str> {
        match self {
            PgError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                info,
            )) => Some(info.constraint_name().unwrap_or_default()),
            _ => None,
        }
    }

    pub(crate) fn corrupt(table: &'static str, problem: impl Into<String>) -> Self {
        PgError::CorruptRow {
            table,
            problem: problem.into(),
        }
    }
}

fn is_connection_lost(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        )
    )
}

impl From<PgError> for StoreError {
    fn from(error: PgError) -> Self {
        if error.is_unavailable() {
            StoreError::Unavailable(Box::new(error))
        } else {
            StoreError::Internal(Box::new(error))
        }
    }
}

impl From<PgError> for CreateSessionError {
    fn from(error: PgError) -> Self {
        CreateSessionError::Store(error.into())
    }
}

impl From<PgError> for UpdateUserError {
    fn from(error: PgError) -> Self {
        UpdateUserError::Store(error.into())
    }
}

/// The two unique constraints of `users`: a taken e-mail, or (astronomically unlikely with
/// random ids) a taken id, which the memory adapter also reports as a conflict.
const USER_UNIQUE_CONSTRAINTS: [&str; 2] = ["users_email_key", "users_pkey"];

impl From<PgError> for CreateUserError {
    fn from(error: PgError) -> Self {
        match error.unique_violation() {
            Some(constraint) if USER_UNIQUE_CONSTRAINTS.contains(&constraint) => {
                CreateUserError::EmailTaken
            }
            _ => CreateUserError::Store(error.into()),
        }
    }
}
