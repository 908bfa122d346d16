//! Access tokens as JWTs (SPEC §2): HS256 by default, or ES256 / EdDSA (issue 17) so that
//! other services verify tokens offline with the published public keys and cannot mint
//! one; a `kid` naming the key, the current key plus previous keys accepted for rotation,
//! and strict validation: an algorithm allow-list of one, required
//! `exp`/`iss`/`aud`/`sub`/`sid`, a leeway of seconds rather than the library's minute.
//!
//! `jsonwebtoken` signs; verification, on every request, is the one pass of
//! `signature` and one parse of the claims. What it is not: a JWKS client, or a judge of
//! whether the token's session is live (the domain asks the session stores for that).

mod keys;
mod signature;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::borrow::Cow;
use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sessiond_domain::model::{AccessClaims, Role, SessionId, UserId};
use sessiond_domain::ports::{TokenCodec, TokenError};
use time::OffsetDateTime;
use uuid::Uuid;

pub use keys::{AsymmetricAlgorithm, PrivateKey, PublicJwk, PublicKey, UnusableKey};
use signature::{Check, Verifier};

/// An HS256 secret and the id it is known under.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: SecretString,
}

/// The keys of the tokens: the current one signs new tokens and verifies them; the previous
/// ones still verify tokens they signed, so that a key rotation signs nobody out.
#[derive(Debug, Clone)]
pub enum TokenKeys {
    /// HS256: shared secrets; whoever can verify a token can mint one.
    Hs256 {
        current: SigningKey,
        previous: Vec<SigningKey>,
    },
    /// ES256 or EdDSA (the private key's): only the private key mints, and the public keys,
    /// published, let anyone verify.
    Asymmetric {
        current: PrivateKey,
        previous: Vec<PublicKey>,
    },
}

/// What the codec needs to know.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub keys: TokenKeys,
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_seconds: u64,
}

/// The `TokenCodec` port.
pub struct JwtCodec {
    kid: String,
    algorithm: Algorithm,
    encoding_key: EncodingKey,
    verifier: Verifier,
    /// The verifying keys as published: none for HS256, whose keys are secrets.
    public_keys: Vec<PublicJwk>,
    issuer: String,
    audience: String,
    leeway_seconds: i64,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
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
    /// [`UnusableKey`] when two keys share a `kid`, a previous key is of another algorithm
    /// than the current one, or a key cannot be used (an HS256 key always can).
    pub fn new(settings: JwtSettings) -> Result<Self, UnusableKey> {
        let (kid, algorithm, encoding_key, verifier, public_keys) = match &settings.keys {
            TokenKeys::Hs256 { current, previous } => {
                let checks = std::iter::once(current)
                    .chain(previous)
                    .map(|key| {
                        Check::hmac(&key.kid, key.secret.expose_secret().as_bytes())
                            .map(|check| (key.kid.clone(), check))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (
                    current.kid.clone(),
                    Algorithm::HS256,
                    EncodingKey::from_secret(current.secret.expose_secret().as_bytes()),
                    Verifier::new(Algorithm::HS256, checks)?,
                    Vec::new(),
                )
            }
            TokenKeys::Asymmetric { current, previous } => {
                let expected = current.algorithm();
                let public: Vec<PublicKey> = std::iter::once(current.public_key())
                    .chain(previous.iter().cloned())
                    .collect();
                if let Some(other) = public.iter().find(|key| key.algorithm() != expected) {
                    return Err(UnusableKey::OtherAlgorithm {
                        kid: other.kid().to_owned(),
                        expected,
                        found: other.algorithm(),
                    });
                }
                let checks = public
                    .iter()
                    .map(|key| (key.kid().to_owned(), Check::Public(key.key().clone())));
                (
                    current.kid().to_owned(),
                    expected.jsonwebtoken(),
                    current.encoding_key()?,
                    Verifier::new(expected.jsonwebtoken(), checks)?,
                    public.iter().map(PublicKey::jwk).collect(),
                )
            }
        };
        Ok(Self {
            kid,
            algorithm,
            encoding_key,
            verifier,
            public_keys,
            issuer: settings.issuer,
            audience: settings.audience,
            leeway_seconds: i64::try_from(settings.leeway_seconds).unwrap_or(i64::MAX),
        })
    }

    /// The keys that verify this codec's tokens, as a JWKS publishes them (current first):
    /// empty for HS256, whose keys are secrets.
    pub fn public_keys(&self) -> &[PublicJwk] {
        &self.public_keys
    }
}

impl TokenCodec for JwtCodec {
    fn encode(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let header = signature::header(self.algorithm, &self.kid);
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
