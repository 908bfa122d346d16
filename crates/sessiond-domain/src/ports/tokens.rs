use time::OffsetDateTime;

use crate::model::AccessClaims;

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Well-formed and correctly signed, but past `exp`.
    #[error("token expired")]
    Expired,
    /// Anything else: bad signature, unknown key, wrong issuer or audience, garbage.
    #[error("token invalid")]
    Invalid,
}

/// Encodes and verifies access tokens (a JWT in production).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait TokenCodec: Send + Sync {
    /// The signed token for `claims`.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] when the claims cannot be encoded.
    fn encode(&self, claims: &AccessClaims) -> Result<String, TokenError>;

    /// The claims of a token this service issued, checked for signature, algorithm, key id,
    /// issuer, audience, and expiry at `now`.
    ///
    /// # Errors
    /// [`TokenError::Expired`] or [`TokenError::Invalid`].
    fn decode(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError>;
}
