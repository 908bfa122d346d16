use secrecy::SecretString;
use sessiond_domain::model::{DeviceId, Email, PasswordHash, Role, User, UserId};
use sessiond_domain::ports::TokenCodec as _;
use sessiond_jwt::AsymmetricAlgorithm;
use sessiond_jwt::testing::{KeyPair, key_pair};
use time::macros::datetime;

use super::*;
use crate::config::{JwtAlgorithm, PreviousPublicKey};

const NOW: time::OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn pair(algorithm: AsymmetricAlgorithm) -> KeyPair {
    key_pair(algorithm).unwrap()
}

/// Production settings signing with `private` (inline PEM), no JWT secret.
fn es256(private: &KeyPair) -> Settings {
    let mut settings = Settings::default();
    settings.jwt.algorithm = JwtAlgorithm::Es256;
    settings.jwt.kid = "k2".into();
    settings.jwt.private_key = Some(SecretString::from(private.private_pem.clone()));
    settings.validate().unwrap();
    settings
}

/// A file holding `text`, unique to this test process.
fn file(name: &str, text: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("sessiond-keys-{}-{name}.pem", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn user() -> User {
    User {
        id: UserId::from_random_bytes([3; 16]),
        email: Email::parse("alice@example.com").unwrap(),
        password_hash: PasswordHash::new("$argon2id$alice".into()),
        role: Role::Guest,
        hotel_id: None,
        is_active: true,
        created_at: NOW,
        updated_at: NOW,
    }
}

#[test]
fn keys_come_from_files_or_pem_text_and_previous_ones_are_published() {
    let (old, new) = (
        pair(AsymmetricAlgorithm::Es256),
        pair(AsymmetricAlgorithm::Es256),
    );
    let mut settings = es256(&new);
    settings.jwt.private_key = None;
    settings.jwt.private_key_file = Some(file("current", &new.private_pem));
    settings.jwt.previous_public_keys = vec![
        PreviousPublicKey {
            kid: "k1".into(),
            public_key_file: Some(file("previous", &old.public_pem)),
            public_key: None,
        },
        // A key published ahead of the rotation that will make it sign.
        PreviousPublicKey {
            kid: "k3".into(),
            public_key_file: None,
            public_key: Some(pair(AsymmetricAlgorithm::Es256).public_pem),
        },
    ];
    let codec = jwt_codec(&settings, token_keys(&settings).unwrap()).unwrap();
    let kids: Vec<&str> = codec
        .public_keys()
        .iter()
        .map(|key| key.kid.as_str())
        .collect();
    assert_eq!(kids, ["k2", "k1", "k3"]);
    assert!(codec.public_keys().iter().all(|key| key.alg == "ES256"));

    let old_codec = jwt_codec(&settings, {
        let mut previous = es256(&old);
        previous.jwt.kid = "k1".into();
        token_keys(&previous).unwrap()
    })
    .unwrap();
    let claims = sessiond_domain::model::AccessClaims {
        user_id: UserId::from_random_bytes([1; 16]),
        session_id: sessiond_domain::model::SessionId::from_random_bytes([2; 16]),
        role: Role::Guest,
        issued_at: NOW,
        expires_at: NOW + time::Duration::minutes(15),
        token_id: uuid::Uuid::from_bytes([4; 16]),
    };
    let token = old_codec.encode(&claims).unwrap();
    assert_eq!(codec.decode(&token, NOW), Ok(claims));
}

#[test]
fn an_unreadable_or_foreign_key_stops_start_up_with_its_name() {
    let mut settings = es256(&pair(AsymmetricAlgorithm::Es256));
    settings.jwt.private_key = None;
    settings.jwt.private_key_file = Some("/nonexistent/sessiond/jwt.pem".into());
    let error = format!("{:#}", token_keys(&settings).unwrap_err());
    assert!(
        error.contains("JWT_PRIVATE_KEY_FILE /nonexistent/sessiond/jwt.pem"),
        "{error}"
    );

    // An Ed25519 key where ES256 is configured.
    let settings = {
        let mut settings = es256(&pair(AsymmetricAlgorithm::Es256));
        settings.jwt.private_key = Some(SecretString::from(
            pair(AsymmetricAlgorithm::EdDsa).private_pem,
        ));
        settings
    };
    let error = format!("{:#}", token_keys(&settings).unwrap_err());
    assert!(
        error.contains("JWT_PRIVATE_KEY") && error.contains("ES256"),
        "{error}"
    );

    let mut settings = es256(&pair(AsymmetricAlgorithm::Es256));
    settings.jwt.previous_public_keys = vec![PreviousPublicKey {
        kid: "k2".into(),
        public_key_file: None,
        public_key: Some(pair(AsymmetricAlgorithm::Es256).public_pem),
    }];
    let error = format!(
        "{:#}",
        jwt_codec(&settings, token_keys(&settings).unwrap()).unwrap_err()
    );
    assert!(error.contains("\"k2\" names two"), "{error}");
}

#[test]
fn with_a_private_key_device_tokens_are_keyed_by_it_alone() {
    let key = pair(AsymmetricAlgorithm::Es256);
    let device_keys_of = |settings: &Settings| device_keys(&token_keys(settings).unwrap()).unwrap();
    let one = device_keys_of(&es256(&key));
    // Another instance with the same key, whatever its kid and whatever JWT_SECRET says.
    let mut same_key = es256(&key);
    same_key.jwt.kid = "renamed".into();
    same_key.jwt.secret = Some(SecretString::from("an-unused-secret-of-32-bytes-or-more!!"));
    let two = device_keys_of(&same_key);
    let alice = user();
    let (token, device) = one.issue(&alice, DeviceId::from_random_bytes([9; 16]), NOW);
    assert_eq!(two.verify(&token, &alice, NOW), Some(device));

    // Another private key, or anything public about this one, knows no device.
    let other = device_keys_of(&es256(&pair(AsymmetricAlgorithm::Es256)));
    assert_eq!(other.verify(&token, &alice, NOW), None);
    let from_public = DeviceKeys::derive(key.public_pem.as_bytes(), &[]).unwrap();
    assert_eq!(from_public.verify(&token, &alice, NOW), None);
    // Nor does the dev secret (what HS256 would fall back to).
    let hs256 = device_keys_of(&Settings {
        env: crate::config::DEV_ENV.into(),
        ..Settings::default()
    });
    assert_eq!(hs256.verify(&token, &alice, NOW), None);
}
