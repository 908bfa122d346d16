//! Fresh key pairs in PEM, as `openssl genpkey` would write them (feature `testing`: for
//! tests and the bench, which need keys no one else has, and no `openssl` on the machine).

use p256::pkcs8::spki::EncodePublicKey;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use rand::RngCore as _;
use rand::rngs::OsRng;

use crate::AsymmetricAlgorithm;

/// A private key (PKCS#8 PEM) and its public half (SubjectPublicKeyInfo PEM).
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

/// A new random key pair of `algorithm`.
///
/// # Errors
/// When PEM cannot be written (out of memory, in practice never).
pub fn key_pair(algorithm: AsymmetricAlgorithm) -> Result<KeyPair, p256::pkcs8::Error> {
    let (private_pem, public_pem) = match algorithm {
        AsymmetricAlgorithm::Es256 => {
            let key = p256::ecdsa::SigningKey::random(&mut OsRng);
            (
                key.to_pkcs8_pem(LineEnding::LF)?,
                key.verifying_key().to_public_key_pem(LineEnding::LF)?,
            )
        }
        AsymmetricAlgorithm::EdDsa => {
            let mut seed = ed25519_dalek::SecretKey::default();
            OsRng.fill_bytes(&mut seed);
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            (
                key.to_pkcs8_pem(LineEnding::LF)?,
                key.verifying_key().to_public_key_pem(LineEnding::LF)?,
            )
        }
    };
    Ok(KeyPair {
        private_pem: private_pem.to_string(),
        public_pem,
    })
}
