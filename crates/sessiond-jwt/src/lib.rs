//! Access tokens as JWTs (SPEC §2): HS256, a `kid` naming the key, the current key plus
//! previous keys accepted for rotation, and strict validation: an algorithm allow-list of
//! one, required `exp`/`iss`/`aud`/`sub`/`sid`, a leeway of seconds rather than the
//! library's minute.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sessiond_domain::model::{AccessClaims, Role, SessionId, UserId};
use sessiond_domain::ports::{TokenCodec, TokenError};
use time::OffsetDateTime;
use uuid::Uuid;

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

/// The `TokenCodec` port on `jsonwebtoken`.
pub struct JwtCodec {
    kid: String,
    encoding_key: EncodingKey,
    decoding_keys: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The claims on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    sub: Uuid,
    sid: Uuid,
    role: Role,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
    jti: Uuid,
}

impl JwtCodec {
    pub fn new(settings: JwtSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = settings.leeway_seconds;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);

        let decoding_keys = std::iter::once(&settings.current)
            .chain(&settings.previous)
            .map(|key| {
                let secret = key.secret.expose_secret().as_bytes();
                (key.kid.clone(), DecodingKey::from_secret(secret))
            })
            .collect();
        Self {
            kid: settings.current.kid.clone(),
            encoding_key: EncodingKey::from_secret(
                settings.current.secret.expose_secret().as_bytes(),
            ),
            decoding_keys,
            validation,
            issuer: settings.issuer,
            audience: settings.audience,
        }
    }
}

impl TokenCodec for JwtCodec {
    fn encode(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let wire = WireClaims {
            sub: claims.user_id.as_uuid(),
            sid: claims.session_id.as_uuid(),
            role: claims.role,
            iat: claims.issued_at.unix_timestamp(),
            exp: claims.expires_at.unix_timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: claims.token_id,
        };
        jsonwebtoken::encode(&header, &wire, &self.encoding_key).map_err(|_| TokenError::Invalid)
    }

    fn decode(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let key = header
            .kid
            .as_ref()
            .and_then(|kid| self.decoding_keys.get(kid))
            .ok_or(TokenError::Invalid)?;
        let data = jsonwebtoken::decode::<WireClaims>(token, key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )?;
        let wire = data.claims;
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
