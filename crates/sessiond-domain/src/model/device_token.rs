//! Device tokens: how a device that has signed in before is told apart from strangers, so
//! that strangers' failed sign-ins cannot lock its owner out (OWASP's "device cookies").
//!
//! A device token is signed, not stored: an HMAC-SHA256, under a key derived from the JWT
//! signing secret (with ES256 / EdDSA access tokens, from the private key's), of the user
//! id, the time of issue, a random device id, and a digest of the user's password hash at
//! that time. So every instance can check one with no storage
//! and no migration; it names one account and works for no other; it lapses after
//! [`DeviceKeys::LIFETIME`]; and changing the password (or the signing secret) retires every
//! token issued before, which a stored design would need a table and a revocation for.
//! Binding to the password matters: whoever once knew it could have collected any number of
//! tokens, each with its own failure budget, to guess the new one with.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::User;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the random device id: 128 bits.
const DEVICE_ID_LEN: usize = 16;
/// User id, time of issue (Unix seconds, big-endian), device id.
const PAYLOAD_LEN: usize = 16 + 8 + DEVICE_ID_LEN;
const MAC_LEN: usize = 32;
/// Characters of a token: the payload and the MAC in unpadded URL-safe base64 (72 bytes,
/// a multiple of three: no partial group).
const TOKEN_CHARS: usize = (PAYLOAD_LEN + MAC_LEN) / 3 * 4;
const _: () = assert!((PAYLOAD_LEN + MAC_LEN).is_multiple_of(3));

/// What the MAC covers besides the payload, so that no other HMAC under this key (nor a
/// later version of the format) can pass for a device token.
const MAC_CONTEXT: &[u8] = b"sessiond device token v1";
/// The label under which a signing secret is turned into a device-token key.
const KEY_LABEL: &[u8] = b"sessiond device-token key v1";

/// A device token as a client presented or received it: opaque to the client. Never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken(String);

impl DeviceToken {
    /// The text a client sent back; whether it is valid is for [`DeviceKeys::verify`].
    pub fn presented(text: String) -> Self {
        Self(text)
    }

    /// The text to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn decode(&self) -> Option<[u8; PAYLOAD_LEN + MAC_LEN]> {
        if self.0.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(&self.0).ok()?;
        bytes.try_into().ok()
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken(..)")
    }
}

/// A device token that verified: the device it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownDevice {
    id: [u8; DEVICE_ID_LEN],
}

impl KnownDevice {
    /// The key its failed sign-ins are counted under: a digest of the device id, the same
    /// for every token the device was given.
    pub fn throttle_key(&self) -> String {
        use std::fmt::Write as _;
        let digest = Sha256::digest(self.id);
        let mut key = String::with_capacity(7 + 32);
        key.push_str("device:");
        for byte in &digest[..16] {
            let _ = write!(key, "{byte:02x}");
        }
        key
    }
}

/// A signing secret from which no device-token key can be made (HMAC takes any key: this
/// does not happen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no device-token key can be made from this secret")]
pub struct UnusableDeviceKey;

/// The keys that sign and check device tokens: the current one signs, every one checks (so
/// that a rotated JWT secret kept as a previous key keeps its devices known).
#[derive(Clone)]
pub struct DeviceKeys {
    current: HmacSha256,
    previous: Vec<HmacSha256>,
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKeys(..)")
    }
}

impl DeviceKeys {
    /// How long a device stays known after its last successful sign-in.
    pub const LIFETIME: Duration = Duration::days(365);
    /// A token issued this far in the future (a clock ahead on another instance) still
    /// counts.
    const CLOCK_SKEW: Duration = Duration::minutes(5);

    /// Keys derived from signing secrets (an HMAC of a fixed label under each, so that a
    /// device token is never signed with the JWT key itself): `current` signs, `previous`
    /// only check.
    ///
    /// # Errors
    /// [`UnusableDeviceKey`], which HMAC-SHA256 never gives.
    pub fn derive(current: &[u8], previous: &[&[u8]]) -> Result<Self, UnusableDeviceKey> {
        let derive = |secret: &[u8]| {
            let mut kdf = HmacSha256::new_from_slice(secret).map_err(|_| UnusableDeviceKey)?;
            kdf.update(KEY_LABEL);
            HmacSha256::new_from_slice(&kdf.finalize().into_bytes()).map_err(|_| UnusableDeviceKey)
        };
        Ok(Self {
            current: derive(current)?,
            previous: previous
                .iter()
                .map(|secret| derive(secret))
                .collect::<Result<_, _>>()?,
        })
    }

    /// A token for `user` on the device `device` (a fresh random id, or the id of the
    /// device's earlier token, so that it stays one device), issued at `now`.
    pub fn issue(
        &self,
        user: &User,
        device: DeviceId,
        now: OffsetDateTime,
    ) -> (DeviceToken, KnownDevice) {
        let mut token = [0_u8; PAYLOAD_LEN + MAC_LEN];
        token[..16].copy_from_slice(user.id.as_uuid().as_bytes());
        token[16..24].copy_from_slice(&now.unix_timestamp().to_be_bytes());
        token[24..PAYLOAD_LEN].copy_from_slice(&device.0);
        let mac = mac(&self.current, &token[..PAYLOAD_LEN], user);
        token[PAYLOAD_LEN..].copy_from_slice(&mac.finalize().into_bytes());
        (
            DeviceToken(URL_SAFE_NO_PAD.encode(token)),
            KnownDevice { id: device.0 },
        )
    }

    /// The device `token` names when it was issued by these keys to `user`, under the
    /// password `user` has now, and has not lapsed at `now`.
    pub fn verify(
        &self,
        token: &DeviceToken,
        user: &User,
        now: OffsetDateTime,
    ) -> Option<KnownDevice> {
        let bytes = token.decode()?;
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        if payload[..16] != *user.id.as_uuid().as_bytes() {
            return None;
        }
        let issued = i64::from_be_bytes(payload[16..24].try_into().ok()?);
        let issued = OffsetDateTime::from_unix_timestamp(issued).ok()?;
        if issued > now + Self::CLOCK_SKEW || now >= issued + Self::LIFETIME {
            return None;
        }
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|key| mac(key, payload, user).verify_slice(tag).is_ok())
            .then(|| KnownDevice {
                id: payload[24..].try_into().unwrap_or_default(),
            })
    }
}

/// The id a new device token carries: fresh random bytes, or a known device's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceId([u8; DEVICE_ID_LEN]);

impl DeviceId {
    /// A new device, from random bytes.
    pub fn from_random_bytes(bytes: [u8; DEVICE_ID_LEN]) -> Self {
        Self(bytes)
    }
}

impl From<KnownDevice> for DeviceId {
    fn from(device: KnownDevice) -> Self {
        Self(device.id)
    }
}

/// The MAC of a token's payload for `user`, bound to the user's current password hash.
fn mac(key: &HmacSha256, payload: &[u8], user: &User) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(MAC_CONTEXT);
    mac.update(payload);
    mac.update(&Sha256::digest(user.password_hash.as_str().as_bytes()));
    mac
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::model::{Email, PasswordHash, Role, UserId};

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn user(byte: u8, hash: &str) -> User {
        User {
            id: UserId::from_random_bytes([byte; 16]),
            email: Email::parse("alice@example.com").unwrap(),
            password_hash: PasswordHash::new(hash.into()),
            role: Role::Guest,
            hotel_id: None,
            is_active: true,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn keys() -> DeviceKeys {
        DeviceKeys::derive(b"current secret", &[b"previous secret"]).unwrap()
    }

    #[test]
    fn a_token_names_its_device_for_its_user_only() {
        let alice = user(1, "$argon2id$alice");
        let device = DeviceId::from_random_bytes([7; 16]);
        let (token, known) = keys().issue(&alice, device, NOW);
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        assert_eq!(keys().verify(&token, &alice, NOW), Some(known));
        assert!(known.throttle_key().starts_with("device:"));
        assert_eq!(known.throttle_key().len(), "device:".len() + 32);
        // Another user, even with the same password hash, is not named by it.
        assert_eq!(
            keys().verify(&token, &user(2, "$argon2id$alice"), NOW),
            None
        );
        // The same device id re-issued later is the same device, counted under one key.
        let later = NOW + Duration::days(30);
        let (again, same) = keys().issue(&alice, DeviceId::from(known), later);
        assert_ne!(again, token);
        assert_eq!(same.throttle_key(), known.throttle_key());
        // Different devices are counted apart.
        let (_, other) = keys().issue(&alice, DeviceId::from_random_bytes([8; 16]), NOW);
        assert_ne!(other.throttle_key(), known.throttle_key());
    }

    #[test]
    fn a_password_change_a_lapse_or_another_key_retires_a_token() {
        let alice = user(1, "$argon2id$alice");
        let (token, _) = keys().issue(&alice, DeviceId::from_random_bytes([7; 16]), NOW);
        let changed = user(1, "$argon2id$changed");
        assert_eq!(keys().verify(&token, &changed, NOW), None);
        let lapse = NOW + DeviceKeys::LIFETIME;
        assert!(
            keys()
                .verify(&token, &alice, lapse - Duration::seconds(1))
                .is_some()
        );
        assert_eq!(keys().verify(&token, &alice, lapse), None);
        assert_eq!(
            keys().verify(&token, &alice, NOW - Duration::hours(1)),
            None,
            "issued in the future"
        );
        let other = DeviceKeys::derive(b"another secret", &[]).unwrap();
        assert_eq!(other.verify(&token, &alice, NOW), None);
        // A token signed with a key now kept as a previous one still checks.
        let old = DeviceKeys::derive(b"previous secret", &[]).unwrap();
        let (old_token, _) = old.issue(&alice, DeviceId::from_random_bytes([9; 16]), NOW);
        assert!(keys().verify(&old_token, &alice, NOW).is_some());
    }

    #[test]
    fn tampered_or_malformed_tokens_name_no_device() {
        let alice = user(1, "$argon2id$alice");
        let (token, _) = keys().issue(&alice, DeviceId::from_random_bytes([7; 16]), NOW);
        let mut chars: Vec<char> = token.expose().chars().collect();
        chars[40] = if chars[40] == 'A' { 'B' } else { 'A' };
        let tampered = DeviceToken::presented(chars.into_iter().collect());
        assert_eq!(keys().verify(&tampered, &alice, NOW), None);
        for text in [
            "",
            "x",
            &"A".repeat(TOKEN_CHARS),
            &format!("{}=", token.expose()),
        ] {
            let presented = DeviceToken::presented(text.to_owned());
            assert_eq!(keys().verify(&presented, &alice, NOW), None, "{text:?}");
        }
        assert_eq!(format!("{token:?}"), "DeviceToken(..)");
    }
}
