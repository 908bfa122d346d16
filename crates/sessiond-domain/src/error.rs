//! What the use cases can answer besides success.

use crate::model::InvalidationReason;
use crate::model::user::InvalidInput;

/// A boxed error from an adapter, kept as the source of a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage port's failure that no caller can fix by changing its input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached now (connection refused, pool timeout); worth a retry.
    #[error("storage is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered, but not as its contract says (corrupt row, driver bug).
    #[error("storage failed")]
    Internal(#[source] BoxError),
}

/// Why a use case did not succeed. Each variant is one stable problem `code` at the edge.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("invalid input: {0}")]
    Validation(#[from] InvalidInput),
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    /// The current password given to confirm a change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error("the access token has expired")]
    TokenExpired,
    #[error("the access token is not valid")]
    TokenInvalid,
    #[error("the refresh token is not valid")]
    RefreshTokenInvalid,
    /// The refresh token was rotated moments ago (two tabs racing); nothing was revoked.
    #[error("the refresh token was already used")]
    RefreshTokenRotated,
    #[error("the session has ended ({0})")]
    SessionRevoked(InvalidationReason),
    #[error("the session has expired")]
    SessionExpired,
    /// Too many attempts (failed sign-ins, wrong current passwords, registrations from one
    /// address): try again in `retry_after_seconds`.
    #[error("too many attempts")]
    RateLimited { retry_after_seconds: u64 },
    /// The change would leave no active system administrator.
    #[error("the last active system_admin cannot be demoted or disabled")]
    LastActiveAdmin,
    #[error("the maximum number of sessions is reached")]
    MaxSessionsReached,
    #[error("not found")]
    NotFound,
    #[error("not allowed")]
    Forbidden,
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl From<crate::ports::HashError> for DomainError {
    fn from(error: crate::ports::HashError) -> Self {
        match error {
            // A full hashing queue is overload (SPEC §3 invariant 6): 503, not 500.
            crate::ports::HashError::Busy => DomainError::Unavailable(error.into()),
            crate::ports::HashError::Failed(_) => DomainError::Internal(error.into()),
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => DomainError::Unavailable(source),
            StoreError::Internal(source) => DomainError::Internal(source),
        }
    }
}

/// Shows an error with its causes, "outer: inner: innermost", for one log line.
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_hashing_queue_is_overload_and_a_failed_hash_a_bug() {
        use crate::ports::HashError;
        assert!(matches!(
            DomainError::from(HashError::Busy),
            DomainError::Unavailable(_)
        ));
        let failed = HashError::Failed(Box::new(std::io::Error::other("boom")));
        assert!(matches!(
            DomainError::from(failed),
            DomainError::Internal(_)
        ));
    }

    #[test]
    fn an_error_chain_shows_every_cause_once_in_order() {
        let innermost = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = DomainError::from(StoreError::Unavailable(Box::new(innermost)));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "a dependency is unavailable: refused"
        );
    }
}
