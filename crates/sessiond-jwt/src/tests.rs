use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::Sha256;
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
        keys: TokenKeys::Hs256 {
            current: key("k2", SECRET),
            previous: vec![key("k1", OLD_SECRET)],
        },
        issuer: "sessiond".into(),
        audience: "sessiond".into(),
        leeway_seconds: 2,
    }
}

const NOW: OffsetDateTime = time::macros::datetime!(2026-03-01 12:00 UTC);

fn codec() -> JwtCodec {
    JwtCodec::new(settings()).unwrap()
}

/// `settings()` with these HS256 keys.
fn with_keys(current: SigningKey, previous: Vec<SigningKey>) -> JwtSettings {
    JwtSettings {
        keys: TokenKeys::Hs256 { current, previous },
        ..settings()
    }
}

fn claims(lifetime: Duration) -> AccessClaims {
    let now = NOW;
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
    let codec = codec();
    let claims = claims(Duration::minutes(15));
    let token = codec.encode(&claims).unwrap();
    assert_eq!(codec.decode(&token, NOW).unwrap(), claims);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("k2"));
    assert_eq!(header.alg, Algorithm::HS256);
}

#[test]
fn expired_tokens_are_told_apart_from_invalid_ones() {
    let codec = codec();
    let token = codec.encode(&claims(Duration::seconds(-10))).unwrap();
    assert_eq!(codec.decode(&token, NOW), Err(TokenError::Expired));
}

#[test]
fn tokens_signed_by_a_previous_key_still_verify() {
    let old = with_keys(key("k1", OLD_SECRET), Vec::new());
    let token = JwtCodec::new(old)
        .unwrap()
        .encode(&claims(Duration::minutes(5)))
        .unwrap();
    assert!(codec().decode(&token, NOW).is_ok());
}

#[test]
fn unknown_keys_issuers_audiences_and_garbage_are_invalid() {
    let claims = claims(Duration::minutes(5));
    let unknown_kid = with_keys(key("k9", SECRET), Vec::new());
    let mut wrong_issuer = settings();
    wrong_issuer.issuer = "someone-else".into();
    let mut wrong_audience = settings();
    wrong_audience.audience = "another-service".into();
    let wrong_secret = with_keys(
        key("k2", "a-different-secret-of-enough-length!!"),
        Vec::new(),
    );
    let codec = codec();
    for forged in [unknown_kid, wrong_issuer, wrong_audience, wrong_secret] {
        let token = JwtCodec::new(forged).unwrap().encode(&claims).unwrap();
        assert_eq!(codec.decode(&token, NOW), Err(TokenError::Invalid));
    }
    assert_eq!(codec.decode("not.a.jwt", NOW), Err(TokenError::Invalid));
    assert_eq!(codec.decode("", NOW), Err(TokenError::Invalid));
}

#[test]
fn alg_none_and_missing_claims_are_refused() {
    let codec = codec();
    let valid = codec.encode(&claims(Duration::minutes(5))).unwrap();
    let payload = valid.split('.').nth(1).unwrap();
    let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"alg":"none","typ":"JWT","kid":"k2"}"#);
    assert_eq!(
        codec.decode(&format!("{none_header}.{payload}."), NOW),
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
    assert_eq!(codec.decode(&token, NOW), Err(TokenError::Invalid));
}

/// A token with exactly this header and these claims, signed with `secret`.
fn signed_by_hand(header: &str, claims: &str, secret: &str) -> String {
    signed_with(header, claims, |signed| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(signed);
        mac.finalize().into_bytes().to_vec()
    })
}

/// A token with exactly this header and these claims, and the signature `sign` makes of
/// its first two segments.
fn signed_with(header: &str, claims: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = URL_SAFE_NO_PAD.encode(sign(signed.as_bytes()));
    format!("{signed}.{signature}")
}

fn claims_json(exp: i64, iss: &str) -> String {
    format!(
        r#"{{"sub":"{}","sid":"{}","role":"guest","iat":{},"exp":{exp},"iss":"{iss}","aud":"sessiond","jti":"{}"}}"#,
        Uuid::new_v4(),
        Uuid::new_v4(),
        NOW.unix_timestamp(),
        Uuid::new_v4()
    )
}

#[test]
fn expiry_allows_the_leeway_and_not_a_second_more() {
    let codec = codec();
    // settings() tolerates 2 s of skew.
    for (age, expected) in [(0, true), (2, true), (3, false)] {
        let mut claims = claims(Duration::minutes(5));
        claims.expires_at = NOW - Duration::seconds(age);
        let token = codec.encode(&claims).unwrap();
        let decoded = codec.decode(&token, NOW);
        if expected {
            assert_eq!(decoded, Ok(claims), "{age} s past exp");
        } else {
            assert_eq!(decoded, Err(TokenError::Expired), "{age} s past exp");
        }
    }
}

#[test]
fn the_tokens_this_service_signs_skip_header_parsing() {
    let codec = codec();
    let token = codec.encode(&claims(Duration::minutes(5))).unwrap();
    let header = token.split('.').next().unwrap();
    assert!(codec.verifier.knows_header_segment(header));
}

#[test]
fn a_header_minted_differently_is_parsed_and_must_name_hs256_and_a_known_key() {
    let codec = codec();
    let exp = (NOW + Duration::minutes(5)).unix_timestamp();
    let claims = claims_json(exp, "sessiond");
    let reordered = signed_by_hand(r#"{"kid":"k2","typ":"JWT","alg":"HS256"}"#, &claims, SECRET);
    assert!(codec.decode(&reordered, NOW).is_ok());
    let previous_key = signed_by_hand(r#"{"kid":"k1","alg":"HS256"}"#, &claims, OLD_SECRET);
    assert!(codec.decode(&previous_key, NOW).is_ok());

    for (header, secret) in [
        (r#"{"kid":"k9","alg":"HS256"}"#, SECRET),
        (r#"{"alg":"HS256"}"#, SECRET),
        (r#"{"kid":"k2","alg":"HS384"}"#, SECRET),
        (r#"{"kid":"k2","alg":"none"}"#, SECRET),
        (r#"{"kid":"k1","alg":"HS256"}"#, SECRET),
        (r#"{"kid":"k2","alg":"HS256"#, SECRET),
        // RFC 7515: critical extensions this service does not understand (none it does).
        (r#"{"kid":"k2","alg":"HS256","crit":["exp"]}"#, SECRET),
        (
            r#"{"kid":"k2","alg":"HS256","crit":["b64"],"b64":"false"}"#,
            SECRET,
        ),
        (r#"{"kid":"k2","alg":"HS256","crit":[]}"#, SECRET),
        (
            r#"{"kid":"k2","alg":"HS256","crit":"http://example.com/ext"}"#,
            SECRET,
        ),
    ] {
        let token = signed_by_hand(header, &claims, secret);
        assert_eq!(
            codec.decode(&token, NOW),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
}

#[test]
fn escaped_claims_mean_what_they_say() {
    let codec = codec();
    let exp = (NOW + Duration::minutes(5)).unix_timestamp();
    let header = r#"{"typ":"JWT","alg":"HS256","kid":"k2"}"#;
    let escaped = signed_by_hand(header, &claims_json(exp, r"sess\u0069ond"), SECRET);
    assert!(codec.decode(&escaped, NOW).is_ok());
    let other = signed_by_hand(header, &claims_json(exp, r"sess\u0069on"), SECRET);
    assert_eq!(codec.decode(&other, NOW), Err(TokenError::Invalid));
}

#[test]
fn any_change_to_a_signed_token_is_refused() {
    let codec = codec();
    let token = codec.encode(&claims(Duration::minutes(5))).unwrap();
    assert_every_change_is_refused(&codec, &token);
}

/// Every truncation, extension, and single-character change of `token` is invalid.
fn assert_every_change_is_refused(codec: &JwtCodec, token: &str) {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut tampered = vec![
        format!("{signed}."),
        format!("{signed}.{}", &signature[..signature.len() - 1]),
        format!("{signed}.{signature}A"),
        format!("{signed}.{signature}.{signature}"),
        format!("{signed}"),
        token.replacen('.', "..", 1),
    ];
    // Every single-character change anywhere in the token.
    for (at, c) in token.char_indices() {
        let replacement = if c == 'A' { 'B' } else { 'A' };
        let mut changed = token.to_owned();
        changed.replace_range(at..=at, &replacement.to_string());
        tampered.push(changed);
    }
    for token in tampered {
        assert_eq!(
            codec.decode(&token, NOW),
            Err(TokenError::Invalid),
            "{token}"
        );
    }
}

mod asymmetric;
