//! ES256 and EdDSA: signing, offline verification with the published JWK, rotation, and
//! the algorithm and key checks of the one-pass verifier.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use p256::pkcs8::DecodePrivateKey as _;

use super::*;
use crate::testing::{KeyPair, key_pair};

const ALGORITHMS: [AsymmetricAlgorithm; 2] =
    [AsymmetricAlgorithm::Es256, AsymmetricAlgorithm::EdDsa];

fn pair(algorithm: AsymmetricAlgorithm) -> KeyPair {
    key_pair(algorithm).unwrap()
}

/// `settings()` signing with `private` as `kid`, `previous` verifying too.
fn asymmetric(
    algorithm: AsymmetricAlgorithm,
    kid: &str,
    private: &KeyPair,
    previous: &[(&str, &KeyPair)],
) -> JwtSettings {
    JwtSettings {
        keys: TokenKeys::Asymmetric {
            current: PrivateKey::from_pem(kid, algorithm, &private.private_pem).unwrap(),
            previous: previous
                .iter()
                .map(|(kid, pair)| PublicKey::from_pem(*kid, algorithm, &pair.public_pem).unwrap())
                .collect(),
        },
        ..settings()
    }
}

fn asymmetric_codec(algorithm: AsymmetricAlgorithm, kid: &str, private: &KeyPair) -> JwtCodec {
    JwtCodec::new(asymmetric(algorithm, kid, private, &[])).unwrap()
}

/// A token with exactly this header and these claims, signed with the private key of `pair`.
fn signed_by_hand(
    algorithm: AsymmetricAlgorithm,
    header: &str,
    claims: &str,
    pair: &KeyPair,
) -> String {
    signed_with(header, claims, |signed| match algorithm {
        AsymmetricAlgorithm::Es256 => {
            use p256::ecdsa::signature::Signer as _;
            let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&pair.private_pem).unwrap();
            let signature: p256::ecdsa::Signature = key.sign(signed);
            signature.to_bytes().to_vec()
        }
        AsymmetricAlgorithm::EdDsa => {
            use ed25519_dalek::Signer as _;
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pair.private_pem).unwrap();
            key.sign(signed).to_bytes().to_vec()
        }
    })
}

/// The claims of `token` as a third party reads them: with `jsonwebtoken`'s own validation
/// and nothing but the published JWK (parsed by `jsonwebtoken`'s JWK type).
fn verified_offline(
    token: &str,
    jwk: &PublicJwk,
) -> Result<serde_json::Value, jsonwebtoken::errors::Error> {
    let jwk: Jwk = serde_json::from_value(serde_json::to_value(jwk).unwrap()).unwrap();
    let algorithm = jsonwebtoken::decode_header(token)?.alg;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&["sessiond"]);
    validation.set_audience(&["sessiond"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode(token, &DecodingKey::from_jwk(&jwk)?, &validation).map(|data| data.claims)
}

/// Far enough ahead that the real clock of `verified_offline` finds it valid too.
fn long_lived() -> AccessClaims {
    claims(Duration::days(3650))
}

#[test]
fn tokens_round_trip_and_a_third_party_verifies_them_with_the_published_jwk() {
    for algorithm in ALGORITHMS {
        let codec = asymmetric_codec(algorithm, "k2", &pair(algorithm));
        let claims = long_lived();
        let token = codec.encode(&claims).unwrap();
        assert_eq!(codec.decode(&token, NOW).unwrap(), claims, "{algorithm}");
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k2"));
        assert_eq!(header.alg, algorithm.jsonwebtoken());
        let token_header = token.split('.').next().unwrap();
        assert!(codec.verifier.knows_header_segment(token_header));

        let [jwk] = codec.public_keys() else {
            panic!("one key published: {:?}", codec.public_keys());
        };
        let offline = verified_offline(&token, jwk).unwrap();
        assert_eq!(offline["sid"], claims.session_id.as_uuid().to_string());
        // Another key's JWK verifies nothing.
        let stranger = asymmetric_codec(algorithm, "k2", &pair(algorithm));
        assert!(verified_offline(&token, &stranger.public_keys()[0]).is_err());
    }
}

#[test]
fn the_jwks_names_the_curve_the_coordinates_and_the_use() {
    let es256 = asymmetric_codec(
        AsymmetricAlgorithm::Es256,
        "ec-1",
        &pair(AsymmetricAlgorithm::Es256),
    );
    let jwk = serde_json::to_value(&es256.public_keys()[0]).unwrap();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], "ec-1");
    for coordinate in ["x", "y"] {
        let bytes = URL_SAFE_NO_PAD
            .decode(jwk[coordinate].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 32, "{coordinate}");
    }
    assert!(jwk.get("d").is_none(), "never the private scalar");

    let eddsa = asymmetric_codec(
        AsymmetricAlgorithm::EdDsa,
        "ed-1",
        &pair(AsymmetricAlgorithm::EdDsa),
    );
    let jwk = serde_json::to_value(&eddsa.public_keys()[0]).unwrap();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    assert!(jwk.get("y").is_none() && jwk.get("d").is_none());
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    assert_eq!(x.len(), 32);

    assert!(codec().public_keys().is_empty(), "HS256 publishes nothing");
}

#[test]
fn a_rotation_keeps_the_previous_keys_tokens_valid_and_published() {
    for algorithm in ALGORITHMS {
        let (old, new) = (pair(algorithm), pair(algorithm));
        let before = asymmetric_codec(algorithm, "k1", &old);
        let old_token = before.encode(&long_lived()).unwrap();

        let after = JwtCodec::new(asymmetric(algorithm, "k2", &new, &[("k1", &old)])).unwrap();
        assert!(after.decode(&old_token, NOW).is_ok(), "{algorithm}");
        let new_token = after.encode(&long_lived()).unwrap();
        assert!(after.decode(&new_token, NOW).is_ok());
        let kids: Vec<&str> = after
            .public_keys()
            .iter()
            .map(|jwk| jwk.kid.as_str())
            .collect();
        assert_eq!(kids, ["k2", "k1"], "the current key first");
        assert!(verified_offline(&old_token, &after.public_keys()[1]).is_ok());

        // Once the old key is dropped, its tokens are refused.
        let later = asymmetric_codec(algorithm, "k2", &new);
        assert_eq!(later.decode(&old_token, NOW), Err(TokenError::Invalid));
    }
}

#[test]
fn unknown_kids_other_keys_and_tampering_are_invalid() {
    for algorithm in ALGORITHMS {
        let key = pair(algorithm);
        let codec = asymmetric_codec(algorithm, "k2", &key);
        let claims = claims(Duration::minutes(5));
        // The right key under a kid the verifier does not know.
        let unknown_kid = asymmetric_codec(algorithm, "k9", &key)
            .encode(&claims)
            .unwrap();
        // Another key under the right kid.
        let other_key = asymmetric_codec(algorithm, "k2", &pair(algorithm))
            .encode(&claims)
            .unwrap();
        for token in [unknown_kid, other_key] {
            assert_eq!(
                codec.decode(&token, NOW),
                Err(TokenError::Invalid),
                "{algorithm}"
            );
        }
        let token = codec.encode(&claims).unwrap();
        assert_every_change_is_refused(&codec, &token);
    }
}

#[test]
fn only_the_configured_algorithm_is_accepted() {
    let exp = (NOW + Duration::minutes(5)).unix_timestamp();
    let claims = claims_json(exp, "sessiond");
    let es256 = pair(AsymmetricAlgorithm::Es256);
    let eddsa = pair(AsymmetricAlgorithm::EdDsa);
    let es256_codec = asymmetric_codec(AsymmetricAlgorithm::Es256, "k2", &es256);
    let eddsa_codec = asymmetric_codec(AsymmetricAlgorithm::EdDsa, "k2", &eddsa);

    // A header minted differently is parsed, and passes when it names the algorithm.
    let reordered = signed_by_hand(
        AsymmetricAlgorithm::Es256,
        r#"{"kid":"k2","alg":"ES256"}"#,
        &claims,
        &es256,
    );
    assert!(es256_codec.decode(&reordered, NOW).is_ok());
    let reordered = signed_by_hand(
        AsymmetricAlgorithm::EdDsa,
        r#"{"kid":"k2","alg":"EdDSA"}"#,
        &claims,
        &eddsa,
    );
    assert!(eddsa_codec.decode(&reordered, NOW).is_ok());

    // Correctly signed, but the header names another algorithm, no kid, or a `crit`.
    for (header, algorithm, key, codec) in [
        (
            r#"{"kid":"k2","alg":"ES384"}"#,
            AsymmetricAlgorithm::Es256,
            &es256,
            &es256_codec,
        ),
        (
            r#"{"kid":"k2","alg":"EdDSA"}"#,
            AsymmetricAlgorithm::Es256,
            &es256,
            &es256_codec,
        ),
        (
            r#"{"alg":"ES256"}"#,
            AsymmetricAlgorithm::Es256,
            &es256,
            &es256_codec,
        ),
        (
            r#"{"kid":"k2","alg":"ES256","crit":["b64"]}"#,
            AsymmetricAlgorithm::Es256,
            &es256,
            &es256_codec,
        ),
        (
            r#"{"kid":"k2","alg":"ES256"}"#,
            AsymmetricAlgorithm::EdDsa,
            &eddsa,
            &eddsa_codec,
        ),
        (
            r#"{"kid":"k2","alg":"none"}"#,
            AsymmetricAlgorithm::EdDsa,
            &eddsa,
            &eddsa_codec,
        ),
        (
            r#"{"kid":"k2","alg":"EdDSA","crit":["exp"]}"#,
            AsymmetricAlgorithm::EdDsa,
            &eddsa,
            &eddsa_codec,
        ),
    ] {
        let token = signed_by_hand(algorithm, header, &claims, key);
        assert_eq!(
            codec.decode(&token, NOW),
            Err(TokenError::Invalid),
            "{header}"
        );
    }
    // Unsigned.
    let payload = URL_SAFE_NO_PAD.encode(&claims);
    for (codec, alg) in [(&es256_codec, "none"), (&eddsa_codec, "none")] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k2"}}"#));
        assert_eq!(
            codec.decode(&format!("{header}.{payload}."), NOW),
            Err(TokenError::Invalid)
        );
    }
}

#[test]
fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    // The classic algorithm confusion: a verifier that let the header choose would check
    // this HMAC with the (public) key bytes and accept a token anyone can mint.
    let exp = (NOW + Duration::minutes(5)).unix_timestamp();
    let claims = claims_json(exp, "sessiond");
    for algorithm in ALGORITHMS {
        let key = pair(algorithm);
        let codec = asymmetric_codec(algorithm, "k2", &key);
        let jwk = &codec.public_keys()[0];
        let raw_x = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
        let public_secrets: [&[u8]; 3] = [key.public_pem.as_bytes(), &raw_x, jwk.x.as_bytes()];
        for secret in public_secrets {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k2".into());
            let value: serde_json::Value = serde_json::from_str(&claims).unwrap();
            let token =
                jsonwebtoken::encode(&header, &value, &EncodingKey::from_secret(secret)).unwrap();
            assert_eq!(
                codec.decode(&token, NOW),
                Err(TokenError::Invalid),
                "{algorithm}"
            );
        }
    }
}

#[test]
fn unusable_keys_are_refused_when_the_codec_is_built() {
    let es256 = pair(AsymmetricAlgorithm::Es256);
    let eddsa = pair(AsymmetricAlgorithm::EdDsa);
    // A key of another curve, a public key where a private one belongs, no PEM at all.
    for (algorithm, pem) in [
        (AsymmetricAlgorithm::EdDsa, es256.private_pem.as_str()),
        (AsymmetricAlgorithm::Es256, eddsa.private_pem.as_str()),
        (AsymmetricAlgorithm::Es256, es256.public_pem.as_str()),
        (AsymmetricAlgorithm::Es256, "not a key"),
    ] {
        assert!(matches!(
            PrivateKey::from_pem("k1", algorithm, pem),
            Err(UnusableKey::PrivateKey { .. })
        ));
    }
    assert!(matches!(
        PublicKey::from_pem("k1", AsymmetricAlgorithm::EdDsa, &es256.public_pem),
        Err(UnusableKey::PublicKey { .. })
    ));
    assert!(matches!(
        PublicKey::from_pem("k1", AsymmetricAlgorithm::Es256, &es256.private_pem),
        Err(UnusableKey::PublicKey { .. })
    ));

    let mixed = JwtSettings {
        keys: TokenKeys::Asymmetric {
            current: PrivateKey::from_pem("k2", AsymmetricAlgorithm::Es256, &es256.private_pem)
                .unwrap(),
            previous: vec![
                PublicKey::from_pem("k1", AsymmetricAlgorithm::EdDsa, &eddsa.public_pem).unwrap(),
            ],
        },
        ..settings()
    };
    assert!(matches!(
        JwtCodec::new(mixed),
        Err(UnusableKey::OtherAlgorithm { .. })
    ));
    let twice = asymmetric(
        AsymmetricAlgorithm::Es256,
        "k1",
        &es256,
        &[("k1", &pair(AsymmetricAlgorithm::Es256))],
    );
    assert!(matches!(
        JwtCodec::new(twice),
        Err(UnusableKey::DuplicateKid { .. })
    ));
    let hs256_twice = with_keys(key("k1", SECRET), vec![key("k1", OLD_SECRET)]);
    assert!(matches!(
        JwtCodec::new(hs256_twice),
        Err(UnusableKey::DuplicateKid { .. })
    ));
}

#[test]
fn the_secret_bytes_are_the_keys_own_whatever_its_pem() {
    use secrecy::ExposeSecret as _;
    for algorithm in ALGORITHMS {
        let key = pair(algorithm);
        let once = PrivateKey::from_pem("k1", algorithm, &key.private_pem).unwrap();
        let again = PrivateKey::from_pem("k2", algorithm, &key.private_pem).unwrap();
        let other = PrivateKey::from_pem("k1", algorithm, &pair(algorithm).private_pem).unwrap();
        assert_eq!(once.secret_bytes().expose_secret().len(), 32);
        assert_eq!(
            once.secret_bytes().expose_secret(),
            again.secret_bytes().expose_secret()
        );
        assert_ne!(
            once.secret_bytes().expose_secret(),
            other.secret_bytes().expose_secret()
        );
        assert!(!format!("{once:?}").contains("PRIVATE"), "never printed");
    }
}
