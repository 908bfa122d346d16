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
    /// unreachable, the pool is exhausted or shut down, the connection dropped, or the
    /// database is overloaded (a statement or lock timeout, a deadlock or serialization
    /// failure, a failover under way). Overload is a 503, never a 500 (SPEC §3 invariant 6).
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
            PgError::Query(error) => is_connection_lost(error) || is_overload(error),
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

/// How PostgreSQL words the errors of overload and failover. diesel-async passes on the
/// SQLSTATE of a few errors only (as a [`DatabaseErrorKind`]) and the message of the others,
/// so these are matched on PostgreSQL's own (untranslated) messages; every connection asks
/// for them (`lc_messages = 'C'`, where the role may set it).
const OVERLOAD_MESSAGES: [&str; 5] = [
    // 57014 statement timeout or cancel request, 55P03 lock timeout, 40001 conflict with
    // recovery on a standby.
    "canceling statement due to",
    // 55P03 with NOWAIT or SKIP LOCKED refused.
    "could not obtain lock on",
    // 40P01.
    "deadlock detected",
    // 57P01..57P05: an administrator or a failover ended the session.
    "terminating connection due to",
    // 57P03: starting up, shutting down, in recovery.
    "the database system is",
];

/// Whether `error` is the database saying it is too busy, or changing primaries, to do this
/// now: lock and statement timeouts, deadlocks and serialization failures (what is left of
/// them after any retry), a read-only primary during a failover.
fn is_overload(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            OVERLOAD_MESSAGES
                .iter()
                .any(|overload| message.starts_with(overload))
        }
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> PgError {
        PgError::Query(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn overload_and_failover_are_unavailable_and_client_mistakes_are_not() {
        for (kind, message) in [
            (
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout",
            ),
            (
                DatabaseErrorKind::Unknown,
                "canceling statement due to lock timeout",
            ),
            (
                DatabaseErrorKind::Unknown,
                "canceling statement due to user request",
            ),
            (
                DatabaseErrorKind::Unknown,
                "could not obtain lock on row in relation \"users\"",
            ),
            (DatabaseErrorKind::Unknown, "deadlock detected"),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            (
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
            (
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access due to concurrent update",
            ),
            (
                DatabaseErrorKind::ReadOnlyTransaction,
                "cannot execute UPDATE in a read-only transaction",
            ),
        ] {
            let error = database_error(kind, message);
            assert!(error.is_unavailable(), "{message}");
            assert!(
                matches!(StoreError::from(error), StoreError::Unavailable(_)),
                "{message}"
            );
        }
        for (kind, message) in [
            (
                DatabaseErrorKind::Unknown,
                "invalid byte sequence for encoding \"UTF8\": 0x00",
            ),
            (
                DatabaseErrorKind::CheckViolation,
                "new row violates check constraint",
            ),
            (DatabaseErrorKind::Unknown, "column \"x\" does not exist"),
        ] {
            let error = database_error(kind, message);
            assert!(!error.is_unavailable(), "{message}");
        }
    }
}
