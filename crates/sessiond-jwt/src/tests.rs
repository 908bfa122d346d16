use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use time::{Duration, OffsetDateTime};

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-current";
const OLD_SECRET: &str = "0123456789abcdef0123456789abcdef-previous";

fn key(kid: &str, secret: &str) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        secret: SecretString::from(secret),
    }
}

fn settings() -> JwtSettings {
    JwtSettings {
        current: key("k2", SECRET),
        previous: vec![key("k1", OLD_SECRET)],
        issuer: "sessiond".into(),
        audience: "sessiond".into(),
        leeway_seconds: 2,
    }
}

#[allow(clippy::disallowed_methods)] // jsonwebtoken checks `exp` against the system clock
fn claims(lifetime: Duration) -> AccessClaims {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    AccessClaims {
        user_id: UserId::from_uuid(Uuid::new_v4()),
        session_id: SessionId::from_uuid(Uuid::new_v4()),
        role: Role::VendorAdmin,
        issued_at: now,
        expires_at: now + lifetime,
        token_id: Uuid::new_v4(),
    }
}

#[test]
fn a_token_round_trips_with_every_claim() {
    let codec = JwtCodec::new(settings());
    let claims = claims(Duration::minutes(15));
    let token = codec.encode(&claims).unwrap();
    assert_eq!(codec.decode(&token).unwrap(), claims);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("k2"));
    assert_eq!(header.alg, Algorithm::HS256);
}

#[test]
fn expired_tokens_are_told_apart_from_invalid_ones() {
    let codec = JwtCodec::new(settings());
    let token = codec.encode(&claims(Duration::seconds(-10))).unwrap();
    assert_eq!(codec.decode(&token), Err(TokenError::Expired));
}

#[test]
fn tokens_signed_by_a_previous_key_still_verify() {
    let mut old = settings();
    old.current = key("k1", OLD_SECRET);
    old.previous.clear();
    let token = JwtCodec::new(old)
        .encode(&claims(Duration::minutes(5)))
        .unwrap();
    assert!(JwtCodec::new(settings()).decode(&token).is_ok());
}

#[test]
fn unknown_keys_issuers_audiences_and_garbage_are_invalid() {
    let claims = claims(Duration::minutes(5));
    let mut unknown_kid = settings();
    unknown_kid.current = key("k9", SECRET);
    let mut wrong_issuer = settings();
    wrong_issuer.issuer = "someone-else".into();
    let mut wrong_audience = settings();
    wrong_audience.audience = "another-service".into();
    let mut wrong_secret = settings();
    wrong_secret.current = key("k2", "a-different-secret-of-enough-length!!");
    let codec = JwtCodec::new(settings());
    for forged in [unknown_kid, wrong_issuer, wrong_audience, wrong_secret] {
        let token = JwtCodec::new(forged).encode(&claims).unwrap();
        assert_eq!(codec.decode(&token), Err(TokenError::Invalid));
    }
    assert_eq!(codec.decode("not.a.jwt"), Err(TokenError::Invalid));
    assert_eq!(codec.decode(""), Err(TokenError::Invalid));
}

#[test]
fn alg_none_and_missing_claims_are_refused() {
    let codec = JwtCodec::new(settings());
    let valid = codec.encode(&claims(Duration::minutes(5))).unwrap();
    let payload = valid.split('.').nth(1).unwrap();
    let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"alg":"none","typ":"JWT","kid":"k2"}"#);
    assert_eq!(
        codec.decode(&format!("{none_header}.{payload}.")),
        Err(TokenError::Invalid)
    );

    // Correctly signed, but without `sid`: not a token we issue.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k2".into());
    let partial = serde_json::json!({
        "sub": Uuid::new_v4(), "role": "guest", "iat": 0, "exp": 4_000_000_000_i64,
        "iss": "sessiond", "aud": "sessiond", "jti": Uuid::new_v4(),
    });
    let token = jsonwebtoken::encode(
        &header,
        &partial,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(codec.decode(&token), Err(TokenError::Invalid));
}
