//! Signature checks in one pass over the token.
//!
//! Every authenticated request pays for this, so it does the least that is safe: the
//! header segment is compared byte for byte with the ones this service mints (no base64,
//! no JSON), the signature is checked against that key alone, and for HS256 the HMAC starts
//! from a state with the key already absorbed and is compared in constant time. A header
//! minted differently (another field order from a future `jsonwebtoken`) is parsed the slow
//! way, and must still name the one configured algorithm and a known `kid`, and no critical
//! extension (`crit`). One algorithm per verifier: an HS256 token "signed" with a public key
//! as its HMAC secret is refused by an ES256 or EdDSA verifier before any key is used.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, Header};
use p256::ecdsa::signature::Verifier as _;
use sha2::Sha256;

use crate::keys::{Public, UnusableKey};
use sessiond_domain::ports::TokenError;

type HmacSha256 = Hmac<Sha256>;

/// The header this service puts on the tokens `kid` signs with `algorithm`.
pub(crate) fn header(algorithm: Algorithm, kid: &str) -> Header {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    header
}

/// How a key checks a signature.
pub(crate) enum Check {
    /// HMAC state with the key absorbed; cloned per token instead of re-keyed.
    Hmac(HmacSha256),
    Public(Public),
}

impl Check {
    /// An HS256 key.
    pub(crate) fn hmac(kid: &str, secret: &[u8]) -> Result<Self, UnusableKey> {
        HmacSha256::new_from_slice(secret)
            .map(Self::Hmac)
            .map_err(|_| UnusableKey::Hmac {
                kid: kid.to_owned(),
            })
    }

    /// Whether `signature` (decoded) signs `signed` under this key.
    fn verifies(&self, signed: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Hmac(mac) => {
                let mut mac = mac.clone();
                mac.update(signed);
                mac.verify_slice(signature).is_ok()
            }
            Self::Public(Public::Es256(key)) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(signed, &signature).is_ok()),
            // Strict: no small-order key or non-canonical signature passes.
            Self::Public(Public::EdDsa(key)) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify_strict(signed, &signature).is_ok()),
        }
    }
}

struct VerifyingKey {
    kid: String,
    /// The first segment of every token this service signs with the key.
    header_segment: String,
    check: Check,
}

/// The keys tokens are checked against: the current one and the previous ones, all of one
/// algorithm.
pub(crate) struct Verifier {
    algorithm: Algorithm,
    keys: Vec<VerifyingKey>,
}

impl Verifier {
    /// # Errors
    /// [`UnusableKey::DuplicateKid`] when two keys share a `kid`.
    pub(crate) fn new(
        algorithm: Algorithm,
        keys: impl IntoIterator<Item = (String, Check)>,
    ) -> Result<Self, UnusableKey> {
        let mut verifying: Vec<VerifyingKey> = Vec::new();
        for (kid, check) in keys {
            if verifying.iter().any(|known| known.kid == kid) {
                return Err(UnusableKey::DuplicateKid { kid });
            }
            // A header is a few plain strings: serialising it cannot fail.
            let header_json = serde_json::to_vec(&header(algorithm, &kid)).unwrap_or_default();
            verifying.push(VerifyingKey {
                header_segment: URL_SAFE_NO_PAD.encode(header_json),
                kid,
                check,
            });
        }
        Ok(Self {
            algorithm,
            keys: verifying,
        })
    }

    /// The claims segment of `token`, decoded, once the signature checks out.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for anything but three segments, a known key of the
    /// configured algorithm and a matching signature.
    pub(crate) fn verified_claims(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let (header, claims) = signed.split_once('.').ok_or(TokenError::Invalid)?;
        let key = self.key_for(header, token)?;
        // Room for the 64 bytes of an ES256 or EdDSA signature (32 of HS256) with base64's
        // slack; a longer one fails to decode, one of the wrong length fails the check.
        let mut decoded = [0_u8; 72];
        let length = URL_SAFE_NO_PAD
            .decode_slice(signature, &mut decoded)
            .map_err(|_| TokenError::Invalid)?;
        if !key.check.verifies(signed.as_bytes(), &decoded[..length]) {
            return Err(TokenError::Invalid);
        }
        URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| TokenError::Invalid)
    }

    fn key_for(&self, header: &str, token: &str) -> Result<&VerifyingKey, TokenError> {
        if let Some(key) = self.keys.iter().find(|key| key.header_segment == header) {
            return Ok(key);
        }
        let parsed = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if parsed.alg != self.algorithm {
            return Err(TokenError::Invalid);
        }
        // RFC 7515 §4.1.11: a recipient must refuse critical extensions it does not
        // understand, and this one understands none.
        if parsed.crit.is_some() {
            return Err(TokenError::Invalid);
        }
        let kid = parsed.kid.ok_or(TokenError::Invalid)?;
        self.keys
            .iter()
            .find(|key| key.kid == kid)
            .ok_or(TokenError::Invalid)
    }

    /// Whether `header` is taken without parsing (tests).
    #[cfg(test)]
    pub(crate) fn knows_header_segment(&self, header: &str) -> bool {
        self.keys.iter().any(|key| key.header_segment == header)
    }
}
