//! Asymmetric keys: a private key signs (ES256 on P-256, or EdDSA on Ed25519), its public
//! half and the previous keys' verify, and every public key is published as a JWK
//! (RFC 7517, RFC 7518 §6.2, RFC 8037 §2) so that other services verify tokens offline
//! without being able to mint one.
//!
//! Keys are read from PEM: PKCS#8 (`-----BEGIN PRIVATE KEY-----`) for a private key,
//! SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`) for a public one, the forms
//! `openssl genpkey` and `openssl pkey -pubout` write.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use secrecy::SecretSlice;
use serde::Serialize;

/// The asymmetric algorithms an access token may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsymmetricAlgorithm {
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    Es256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl AsymmetricAlgorithm {
    /// The `alg` of the tokens and the JWKs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for AsymmetricAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key the codec cannot use, named by its `kid`.
#[derive(Debug, thiserror::Error)]
pub enum UnusableKey {
    /// HMAC takes keys of any length: this does not happen.
    #[error("the JWT key {kid:?} cannot key HMAC-SHA256")]
    Hmac { kid: String },
    #[error(
        "the JWT key {kid:?} is not an {algorithm} private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`)"
    )]
    PrivateKey {
        kid: String,
        algorithm: AsymmetricAlgorithm,
        #[source]
        source: p256::pkcs8::Error,
    },
    #[error(
        "the JWT key {kid:?} is not an {algorithm} public key in PEM (`-----BEGIN PUBLIC KEY-----`)"
    )]
    PublicKey {
        kid: String,
        algorithm: AsymmetricAlgorithm,
        #[source]
        source: p256::pkcs8::spki::Error,
    },
    /// The verifier allows one algorithm: a previous key of another would need a second.
    #[error("the JWT key {kid:?} is an {found} key, and the tokens are signed with {expected}")]
    OtherAlgorithm {
        kid: String,
        expected: AsymmetricAlgorithm,
        found: AsymmetricAlgorithm,
    },
    /// A `kid` must name one key, or the token could not say which one signed it.
    #[error("the key id {kid:?} names two JWT keys")]
    DuplicateKid { kid: String },
}

/// The private key that signs new access tokens. Never printed.
#[derive(Clone)]
pub struct PrivateKey {
    kid: String,
    /// Boxed: a signing key carries its public half, several times a kid's size.
    key: Box<Private>,
}

#[derive(Clone)]
enum Private {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// The `algorithm` key in PKCS#8 PEM `pem`, published under `kid`.
    ///
    /// # Errors
    /// [`UnusableKey::PrivateKey`] when `pem` holds no such key (another curve included).
    pub fn from_pem(
        kid: impl Into<String>,
        algorithm: AsymmetricAlgorithm,
        pem: &str,
    ) -> Result<Self, UnusableKey> {
        let kid = kid.into();
        let key = match algorithm {
            AsymmetricAlgorithm::Es256 => {
                p256::ecdsa::SigningKey::from_pkcs8_pem(pem).map(Private::Es256)
            }
            AsymmetricAlgorithm::EdDsa => {
                ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map(Private::EdDsa)
            }
        };
        let key = key.map_err(|source| UnusableKey::PrivateKey {
            kid: kid.clone(),
            algorithm,
            source,
        })?;
        Ok(Self {
            kid,
            key: Box::new(key),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> AsymmetricAlgorithm {
        match *self.key {
            Private::Es256(_) => AsymmetricAlgorithm::Es256,
            Private::EdDsa(_) => AsymmetricAlgorithm::EdDsa,
        }
    }

    /// Its public half, under the same `kid`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            key: match &*self.key {
                Private::Es256(key) => Public::Es256(*key.verifying_key()),
                Private::EdDsa(key) => Public::EdDsa(key.verifying_key()),
            },
        }
    }

    /// The raw secret (the P-256 scalar or the Ed25519 seed, 32 bytes): the same for every
    /// encoding of the key, so that a key derived from it is the same on every instance.
    pub fn secret_bytes(&self) -> SecretSlice<u8> {
        let bytes: Vec<u8> = match &*self.key {
            Private::Es256(key) => key.to_bytes().to_vec(),
            Private::EdDsa(key) => key.to_bytes().to_vec(),
        };
        SecretSlice::from(bytes)
    }

    /// The key as `jsonwebtoken` signs with it (PKCS#8 DER).
    pub(crate) fn encoding_key(&self) -> Result<EncodingKey, UnusableKey> {
        let der = match &*self.key {
            Private::Es256(key) => key.to_pkcs8_der(),
            Private::EdDsa(key) => key.to_pkcs8_der(),
        };
        let der = der.map_err(|source| UnusableKey::PrivateKey {
            kid: self.kid.clone(),
            algorithm: self.algorithm(),
            source,
        })?;
        Ok(match *self.key {
            Private::Es256(_) => EncodingKey::from_ec_der(der.as_bytes()),
            Private::EdDsa(_) => EncodingKey::from_ed_der(der.as_bytes()),
        })
    }
}

/// A key that verifies access tokens and is published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    kid: String,
    key: Public,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Public {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// The `algorithm` key in PEM `pem` (SubjectPublicKeyInfo), known as `kid`.
    ///
    /// # Errors
    /// [`UnusableKey::PublicKey`] when `pem` holds no such key (another curve included).
    pub fn from_pem(
        kid: impl Into<String>,
        algorithm: AsymmetricAlgorithm,
        pem: &str,
    ) -> Result<Self, UnusableKey> {
        let kid = kid.into();
        let key = match algorithm {
            AsymmetricAlgorithm::Es256 => {
                p256::ecdsa::VerifyingKey::from_public_key_pem(pem).map(Public::Es256)
            }
            AsymmetricAlgorithm::EdDsa => {
                ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map(Public::EdDsa)
            }
        };
        match key {
            Ok(key) => Ok(Self { kid, key }),
            Err(source) => Err(UnusableKey::PublicKey {
                kid,
                algorithm,
                source,
            }),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> AsymmetricAlgorithm {
        match self.key {
            Public::Es256(_) => AsymmetricAlgorithm::Es256,
            Public::EdDsa(_) => AsymmetricAlgorithm::EdDsa,
        }
    }

    pub(crate) fn key(&self) -> &Public {
        &self.key
    }

    /// The key as a JWK: `kty` `EC` with `crv` `P-256`, `x` and `y` (the uncompressed
    /// point's coordinates), or `kty` `OKP` with `crv` `Ed25519` and `x`.
    pub fn jwk(&self) -> PublicJwk {
        let (kty, crv, x, y) = match &self.key {
            Public::Es256(key) => {
                let point = key.to_encoded_point(false);
                (
                    "EC",
                    "P-256",
                    point.x().map(|x| URL_SAFE_NO_PAD.encode(x)),
                    point.y().map(|y| URL_SAFE_NO_PAD.encode(y)),
                )
            }
            Public::EdDsa(key) => (
                "OKP",
                "Ed25519",
                Some(URL_SAFE_NO_PAD.encode(key.as_bytes())),
                None,
            ),
        };
        PublicJwk {
            kid: self.kid.clone(),
            kty,
            crv,
            x: x.unwrap_or_default(),
            y,
            alg: self.algorithm().name(),
            key_use: "sig",
        }
    }
}

/// A public key as a JSON Web Key (RFC 7517 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kid: String,
    /// `EC` or `OKP`.
    pub kty: &'static str,
    /// `P-256` or `Ed25519`.
    pub crv: &'static str,
    /// Base64url, unpadded.
    pub x: String,
    /// P-256 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// `ES256` or `EdDSA`.
    pub alg: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
}
