//! Access-token claims and refresh tokens.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Role, SessionId, UserId};

/// What an access token says, independent of its encoding (SPEC §2). Issuer and audience
/// are the codec's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub role: Role,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Unique per token (`jti`).
    pub token_id: Uuid,
}

/// Bytes of randomness in a refresh token: 256 bits (SPEC §2).
pub const REFRESH_SECRET_LEN: usize = 32;

/// An opaque refresh token as the client holds it: `<session id>.<secret>`.
///
/// Naming the session lets a refresh find its row by primary key and swap the hash in one
/// statement; the secret alone carries the 256 bits that make it unguessable.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    session_id: SessionId,
    secret: [u8; REFRESH_SECRET_LEN],
}

/// A string that is not a refresh token we could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed refresh token")]
pub struct MalformedRefreshToken;

impl RefreshToken {
    /// A new token for `session_id` from fresh random bytes.
    pub const fn new(session_id: SessionId, secret: [u8; REFRESH_SECRET_LEN]) -> Self {
        Self { session_id, secret }
    }

    /// Reads a token presented by a client: exactly the spelling [`Self::expose`] hands out
    /// (the session id hyphenated in lower case, the secret in unpadded URL-safe base64),
    /// so that one token has one spelling. The `uuid` crate would also take the id in upper
    /// case, without hyphens, braced or as a `urn:uuid:`; base64 already refuses padding and
    /// non-zero trailing bits.
    ///
    /// # Errors
    /// [`MalformedRefreshToken`] when it does not have our shape.
    pub fn parse(token: &str) -> Result<Self, MalformedRefreshToken> {
        let (id, secret) = token.split_once('.').ok_or(MalformedRefreshToken)?;
        let session_id: SessionId = id.parse().map_err(|_| MalformedRefreshToken)?;
        if *session_id
            .as_uuid()
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            != *id
        {
            return Err(MalformedRefreshToken);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(secret)
            .map_err(|_| MalformedRefreshToken)?;
        let secret = bytes.try_into().map_err(|_| MalformedRefreshToken)?;
        Ok(Self { session_id, secret })
    }

    /// The session this token belongs to.
    pub const fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// The string handed to the client, once. Never stored.
    pub fn expose(&self) -> String {
        format!(
            "{}.{}",
            self.session_id,
            URL_SAFE_NO_PAD.encode(self.secret)
        )
    }

    /// What storage keeps instead of the token.
    pub fn hash(&self) -> RefreshTokenHash {
        let mut digest = Sha256::new();
        digest.update(self.session_id.as_uuid().as_bytes());
        digest.update(self.secret);
        RefreshTokenHash(digest.finalize().into())
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a refresh token. A fast hash is right here: the token has 256 bits of
/// entropy, so there is nothing for a slow hash to protect against.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefreshTokenHash([u8; 32]);

impl RefreshTokenHash {
    /// Wraps a hash read from storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, for storage.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for RefreshTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshTokenHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> RefreshToken {
        RefreshToken::new(SessionId::from_random_bytes([7; 16]), [42; 32])
    }

    #[test]
    fn a_token_survives_the_round_trip_to_the_client() {
        let token = token();
        assert_eq!(RefreshToken::parse(&token.expose()), Ok(token));
    }

    #[test]
    fn tampered_or_foreign_strings_are_refused() {
        let exposed = token().expose();
        for bad in [
            "",
            ".",
            "not-a-uuid.AAAA",
            &exposed[..exposed.len() - 2],
            &format!("{exposed}AA"),
            &exposed.replace('.', ""),
        ] {
            assert_eq!(
                RefreshToken::parse(bad),
                Err(MalformedRefreshToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_session_id_has_only_the_issued_spelling() {
        // Hex letters in the id, so that its case shows.
        let token = RefreshToken::new(SessionId::from_random_bytes([0xab; 16]), [42; 32]);
        let exposed = token.expose();
        let (id, secret) = exposed.split_once('.').unwrap();
        let uuid = token.session_id().as_uuid();
        assert_eq!(id, uuid.hyphenated().to_string());
        for other in [
            id.to_uppercase(),
            uuid.simple().to_string(),
            uuid.braced().to_string(),
            uuid.urn().to_string(),
            // Mixed case: one upper-case hex digit is enough to be another spelling.
            id.replacen(|c: char| c.is_ascii_lowercase(), "A", 1),
            format!(" {id}"),
            format!("{id} "),
        ] {
            assert_ne!(other, id);
            assert_eq!(
                RefreshToken::parse(&format!("{other}.{secret}")),
                Err(MalformedRefreshToken),
                "{other}"
            );
        }
    }

    #[test]
    fn the_secret_has_only_the_issued_spelling() {
        let exposed = token().expose();
        let (id, secret) = exposed.split_once('.').unwrap();
        // Padding, and the standard alphabet's characters for the URL-safe ones.
        assert_eq!(
            RefreshToken::parse(&format!("{exposed}=")),
            Err(MalformedRefreshToken)
        );
        let other_alphabet = RefreshToken::new(token().session_id(), [0xfb; 32]).expose();
        assert!(other_alphabet.contains(['-', '_']));
        assert_eq!(
            RefreshToken::parse(&other_alphabet.replace('-', "+").replace('_', "/")),
            Err(MalformedRefreshToken)
        );
        // The last character carries 2 bits of the secret and 4 that must be zero: no other
        // last character decodes to the same secret.
        let (head, _) = secret.split_at(secret.len() - 1);
        for last in ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain(['-', '_'])
        {
            let spelling = format!("{id}.{head}{last}");
            if spelling != exposed {
                assert_ne!(RefreshToken::parse(&spelling), Ok(token()), "{spelling}");
            }
        }
    }

    #[test]
    fn the_hash_depends_on_every_part_of_the_token() {
        let a = token();
        let b = RefreshToken::new(a.session_id(), [43; 32]);
        let c = RefreshToken::new(SessionId::from_random_bytes([8; 16]), [42; 32]);
        assert_ne!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.hash(), token().hash());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let token = token();
        let exposed = token.expose();
        let secret = exposed.split_once('.').map(|(_, s)| s).unwrap_or_default();
        assert!(!format!("{token:?}").contains(secret));
    }
}
