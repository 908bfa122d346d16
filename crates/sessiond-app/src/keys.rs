//! The keys of the service, read once at start-up from the settings: the access tokens'
//! (HS256 secrets, or an ES256 / EdDSA private key and previous public keys from PEM files
//! or the environment) and the device tokens' keys, derived from them.

use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretSlice};
use sessiond_domain::model::DeviceKeys;
use sessiond_jwt::{JwtCodec, JwtSettings, PrivateKey, PublicKey, SigningKey, TokenKeys};

use crate::config::Settings;

/// The keys of the access tokens, PEM files read.
///
/// # Errors
/// When a key file cannot be read or holds no key of `jwt.algorithm`.
pub fn token_keys(settings: &Settings) -> anyhow::Result<TokenKeys> {
    let jwt = &settings.jwt;
    let Some(algorithm) = jwt.algorithm.asymmetric() else {
        return Ok(TokenKeys::Hs256 {
            current: SigningKey {
                kid: jwt.kid.clone(),
                secret: settings.jwt_secret(),
            },
            previous: jwt
                .previous_keys
                .iter()
                .map(|key| SigningKey {
                    kid: key.kid.clone(),
                    secret: key.secret.clone(),
                })
                .collect(),
        });
    };
    let current = match (&jwt.private_key_file, &jwt.private_key) {
        (Some(path), _) => {
            let pem = read_pem(path, "JWT_PRIVATE_KEY_FILE")?;
            PrivateKey::from_pem(&jwt.kid, algorithm, &pem)
                .with_context(|| format!("JWT_PRIVATE_KEY_FILE {}", path.display()))?
        }
        (None, Some(pem)) => PrivateKey::from_pem(&jwt.kid, algorithm, pem.expose_secret())
            .context("JWT_PRIVATE_KEY")?,
        (None, None) => anyhow::bail!("jwt.algorithm {algorithm} needs its private key"),
    };
    let previous = jwt
        .previous_public_keys
        .iter()
        .map(|key| {
            let pem = match (&key.public_key_file, &key.public_key) {
                (Some(path), _) => read_pem(path, "jwt.previous_public_keys")?,
                (None, Some(pem)) => pem.clone(),
                (None, None) => anyhow::bail!("previous public key {:?} has no key", key.kid),
            };
            PublicKey::from_pem(&key.kid, algorithm, &pem)
                .with_context(|| format!("previous public key {:?}", key.kid))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(TokenKeys::Asymmetric { current, previous })
}

fn read_pem(path: &Path, setting: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {setting} {}", path.display()))
}

/// The token codec with these keys.
///
/// # Errors
/// When two keys share a kid, or a previous key is of another algorithm.
pub fn jwt_codec(settings: &Settings, keys: TokenKeys) -> anyhow::Result<JwtCodec> {
    JwtCodec::new(JwtSettings {
        keys,
        issuer: settings.jwt.issuer.clone(),
        audience: settings.jwt.audience.clone(),
        leeway_seconds: u64::from(settings.jwt.leeway),
    })
    .context("the JWT signing keys")
}

/// The keys of device tokens, derived from the secret that signs access tokens: every
/// instance that signs the others' access tokens knows the others' devices too.
///
/// With HS256, from the JWT secrets: a secret kept as a previous key keeps its devices
/// known. With ES256 / EdDSA, from the private key's own 32 secret bytes (never from
/// anything published); previous keys are public and derive nothing, so a rotation of the
/// private key makes every device a stranger again until its next successful sign-in
/// (what that costs: its failed sign-ins count against the account's and the address's
/// limits meanwhile).
///
/// # Errors
/// Never in practice: HMAC takes keys of any length.
pub fn device_keys(keys: &TokenKeys) -> anyhow::Result<DeviceKeys> {
    let derived = match keys {
        TokenKeys::Hs256 { current, previous } => {
            let previous: Vec<&[u8]> = previous
                .iter()
                .map(|key| key.secret.expose_secret().as_bytes())
                .collect();
            DeviceKeys::derive(current.secret.expose_secret().as_bytes(), &previous)
        }
        TokenKeys::Asymmetric { current, .. } => {
            let secret: SecretSlice<u8> = current.secret_bytes();
            DeviceKeys::derive(secret.expose_secret(), &[])
        }
    };
    derived.context("the device-token keys")
}

#[cfg(test)]
mod tests;
