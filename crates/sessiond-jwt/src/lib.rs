//! Access tokens as JWTs (SPEC §2): HS256, a `kid` naming the key, the current key plus
//! previous keys accepted for rotation, and strict validation: an algorithm allow-list of
//! one, required `exp`/`iss`/`aud`/`sub`/`sid`, a leeway of seconds rather than the
//! library's minute.
//!
//! `jsonwebtoken` signs; verification, on every request, is the one pass of
//! `signature` and one parse of the claims.

mod signature;

use std::borrow::Cow;
use std::fmt;

use jsonwebtoken::EncodingKey;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sessiond_domain::model::{AccessClaims, Role, SessionId, UserId};
use sessiond_domain::ports::{TokenCodec, TokenError};
use time::OffsetDateTime;
use uuid::Uuid;

pub use signature::UnusableKey;
use signature::Verifier;

/// A signing key and the id it is published under.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: SecretString,
}

/// What the codec needs to know.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Signs new tokens and verifies them.
    pub current: SigningKey,
    /// Still verify tokens they signed, so that a key rotation signs nobody out.
    pub previous: Vec<SigningKey>,
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_seconds: u64,
}

/// The `TokenCodec` port.
pub struct JwtCodec {
    kid: String,
    encoding_key: EncodingKey,
    verifier: Verifier,
    issuer: String,
    audience: String,
    leeway_seconds: i64,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The claims on the wire; every one is required. `iss` and `aud` borrow from the decoded
/// claims when they hold no escapes.
#[derive(Debug, Serialize, Deserialize)]
struct WireClaims<'a> {
    sub: Uuid,
    sid: Uuid,
    role: Role,
    iat: i64,
    exp: i64,
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    jti: Uuid,
}

impl JwtCodec {
    /// # Errors
    /// [`UnusableKey`] when a key cannot key HMAC-SHA256 (none in practice: HMAC takes keys
    /// of any length).
    pub fn new(settings: JwtSettings) -> Result<Self, UnusableKey> {
        let verifier = Verifier::new(std::iter::once(&settings.current).chain(&settings.previous))?;
        Ok(Self {
            kid: settings.current.kid.clone(),
            encoding_key: EncodingKey::from_secret(
                settings.current.secret.expose_secret().as_bytes(),
            ),
            verifier,
            issuer: settings.issuer,
            audience: settings.audience,
            leeway_seconds: i64::try_from(settings.leeway_seconds).unwrap_or(i64::MAX),
        })
    }
}

impl TokenCodec for JwtCodec {
    fn encode(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let header = signature::header(&self.kid);
        let wire = WireClaims {
            sub: claims.user_id.as_uuid(),
            sid: claims.session_id.as_uuid(),
            role: claims.role,
            iat: claims.issued_at.unix_timestamp(),
            exp: claims.expires_at.unix_timestamp(),
            iss: Cow::Borrowed(&self.issuer),
            aud: Cow::Borrowed(&self.audience),
            jti: claims.token_id,
        };
        jsonwebtoken::encode(&header, &wire, &self.encoding_key).map_err(|_| TokenError::Invalid)
    }

    fn decode(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError> {
        let claims = self.verifier.verified_claims(token)?;
        let wire: WireClaims<'_> =
            serde_json::from_slice(&claims).map_err(|_| TokenError::Invalid)?;
        if wire.iss != self.issuer || wire.aud != self.audience {
            return Err(TokenError::Invalid);
        }
        if wire.exp.saturating_add(self.leeway_seconds) < now.unix_timestamp() {
            return Err(TokenError::Expired);
        }
        let instant =
            |seconds| OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| TokenError::Invalid);
        Ok(AccessClaims {
            user_id: UserId::from_uuid(wire.sub),
            session_id: SessionId::from_uuid(wire.sid),
            role: wire.role,
            issued_at: instant(wire.iat)?,
            expires_at: instant(wire.exp)?,
            token_id: wire.jti,
        })
    }
}

#[cfg(test)]
mod tests;
