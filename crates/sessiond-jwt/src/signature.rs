//! HS256 signature checks in one pass over the token.
//!
//! Every authenticated request pays for this, so it does the least that is safe: the
//! header segment is compared byte for byte with the ones this service mints (no base64,
//! no JSON), the HMAC starts from a state with the key already absorbed, and the signature
//! is compared in constant time. A header minted differently (another field order from a
//! future `jsonwebtoken`) is parsed the slow way, and must still say HS256 and a known
//! `kid`, and name no critical extension (`crit`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, Header};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::SigningKey;
use sessiond_domain::ports::TokenError;

type HmacSha256 = Hmac<Sha256>;

/// A signing key that HMAC-SHA256 cannot take (none: HMAC takes keys of any length).
#[derive(Debug, thiserror::Error)]
#[error("the JWT key {kid:?} cannot key HMAC-SHA256")]
pub struct UnusableKey {
    pub kid: String,
}

/// The header this service puts on the tokens a key signs.
pub(crate) fn header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    header
}

struct VerifyingKey {
    kid: String,
    /// The first segment of every token this service signs with the key.
    header_segment: String,
    /// HMAC state with the key absorbed; cloned per token instead of re-keyed.
    mac: HmacSha256,
}

/// The keys tokens are checked against: the current one and the previous ones.
pub(crate) struct Verifier {
    keys: Vec<VerifyingKey>,
}

impl Verifier {
    pub(crate) fn new<'k>(
        keys: impl IntoIterator<Item = &'k SigningKey>,
    ) -> Result<Self, UnusableKey> {
        let keys = keys
            .into_iter()
            .map(|key| {
                let unusable = || UnusableKey {
                    kid: key.kid.clone(),
                };
                let header_json = serde_json::to_vec(&header(&key.kid)).map_err(|_| unusable())?;
                Ok(VerifyingKey {
                    kid: key.kid.clone(),
                    header_segment: URL_SAFE_NO_PAD.encode(header_json),
                    mac: HmacSha256::new_from_slice(key.secret.expose_secret().as_bytes())
                        .map_err(|_| unusable())?,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// The claims segment of `token`, decoded, once the signature checks out.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for anything but three segments, a known HS256 key and a
    /// matching signature.
    pub(crate) fn verified_claims(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let (header, claims) = signed.split_once('.').ok_or(TokenError::Invalid)?;
        let key = self.key_for(header, token)?;
        // Room for any signature HMAC-SHA256 could have made, with base64's slack; a longer
        // one fails to decode, a shorter one fails the length check of `verify_slice`.
        let mut decoded = [0_u8; 64];
        let length = URL_SAFE_NO_PAD
            .decode_slice(signature, &mut decoded)
            .map_err(|_| TokenError::Invalid)?;
        let mut mac = key.mac.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&decoded[..length])
            .map_err(|_| TokenError::Invalid)?;
        URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| TokenError::Invalid)
    }

    fn key_for(&self, header: &str, token: &str) -> Result<&VerifyingKey, TokenError> {
        if let Some(key) = self.keys.iter().find(|key| key.header_segment == header) {
            return Ok(key);
        }
        let parsed = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if parsed.alg != Algorithm::HS256 {
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
