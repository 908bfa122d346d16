//! Asymmetric access tokens (issue 17): a third party verifies them offline with nothing
//! but `GET /.well-known/jwks.json`, the API accepts them, a rotation keeps the previous
//! key's tokens valid and published, and the JWKS never shows an HS256 secret.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::Value;
use sessiond_app::Settings;
use sessiond_app::config::{JwtAlgorithm, PreviousPublicKey};
use sessiond_domain::model::Role;
use sessiond_jwt::AsymmetricAlgorithm;
use sessiond_jwt::testing::{KeyPair, key_pair};
use sessiond_tests::app::{Backend, TestApp, WINDOWS, test_settings};

/// Test settings signing with `key` (read from a PEM file, as in production) as `kid`,
/// with no JWT secret at all.
fn asymmetric(settings: &mut Settings, algorithm: JwtAlgorithm, kid: &str, key: &KeyPair) {
    let path = std::env::temp_dir().join(format!(
        "sessiond-test-{}-{}.pem",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&path, &key.private_pem).unwrap();
    settings.jwt.secret = None;
    settings.jwt.algorithm = algorithm;
    settings.jwt.kid = kid.into();
    settings.jwt.private_key_file = Some(path);
}

fn algorithm(configured: JwtAlgorithm) -> (AsymmetricAlgorithm, Algorithm) {
    match configured {
        JwtAlgorithm::Es256 => (AsymmetricAlgorithm::Es256, Algorithm::ES256),
        JwtAlgorithm::EdDsa => (AsymmetricAlgorithm::EdDsa, Algorithm::EdDSA),
        JwtAlgorithm::Hs256 => unreachable!("asymmetric algorithms only"),
    }
}

/// `GET /.well-known/jwks.json`, checked for what every answer of it must carry.
async fn jwks(app: &TestApp) -> JwkSet {
    serde_json::from_str(&jwks_body(app).await).unwrap()
}

/// The body of `GET /.well-known/jwks.json`, its status and headers checked.
async fn jwks_body(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    // Public and cacheable: not the API's `no-store`.
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["content-type"], "application/json");
    response.text().await.unwrap()
}

/// The claims of `token` as a service that only knows the JWKS reads them.
fn verified_offline(token: &str, keys: &JwkSet) -> jsonwebtoken::errors::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    let jwk = keys
        .find(header.kid.as_deref().unwrap_or_default())
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    // The algorithm comes from the published key, never from the token's header.
    let alg = jwk
        .common
        .key_algorithm
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm)?;
    let mut validation = Validation::new(alg.to_string().parse()?);
    validation.set_issuer(&["sessiond"]);
    validation.set_audience(&["sessiond"]);
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?;
    Ok(data.claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_verifies_access_tokens_offline_and_the_api_accepts_them() {
    for configured in [JwtAlgorithm::Es256, JwtAlgorithm::EdDsa] {
        let (ours, theirs) = algorithm(configured);
        let key = key_pair(ours).unwrap();
        let app =
            TestApp::spawn_with(|settings| asymmetric(settings, configured, "2026-03", &key)).await;
        let email = app.create_user(Role::Guest).await;
        let device = app.login(&email, WINDOWS).await;

        let keys = jwks(&app).await;
        assert_eq!(keys.keys.len(), 1);
        let published = serde_json::to_value(&keys.keys[0]).unwrap();
        assert_eq!(published["kid"], "2026-03");
        assert_eq!(published["use"], "sig");
        assert!(published.get("d").is_none(), "no private part");
        let header = jsonwebtoken::decode_header(&device.access_token).unwrap();
        assert_eq!(header.alg, theirs);
        let claims = verified_offline(&device.access_token, &keys).unwrap();
        assert_eq!(claims["sid"], device.session_id.as_str());
        assert_eq!(claims["role"], "guest");

        let me = app
            .get("/api/v1/sessions/current", &device.access_token)
            .await;
        assert_eq!(me.status, StatusCode::OK);
        let refreshed = app.refreshed(&device).await;
        assert!(verified_offline(&refreshed.access_token, &keys).is_ok());

        // The alg confusion: an HS256 token "signed" with the published public key.
        let mut forged_header = Header::new(Algorithm::HS256);
        forged_header.kid = Some("2026-03".into());
        for secret in [
            key.public_pem.as_bytes(),
            published["x"].as_str().unwrap().as_bytes(),
        ] {
            let forged =
                jsonwebtoken::encode(&forged_header, &claims, &EncodingKey::from_secret(secret))
                    .unwrap();
            let reply = app.get("/api/v1/sessions/current", &forged).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{configured:?}");
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_keeps_the_previous_keys_tokens_accepted_and_published() {
    let old = key_pair(AsymmetricAlgorithm::Es256).unwrap();
    let new = key_pair(AsymmetricAlgorithm::Es256).unwrap();
    let storage = Backend::Postgres.storage().await;
    let mut before = test_settings();
    asymmetric(&mut before, JwtAlgorithm::Es256, "k1", &old);
    let before = TestApp::spawn_on(before, storage.clone()).await;
    let email = before.create_user(Role::Guest).await;
    let device = before.login(&email, WINDOWS).await;

    // The rolled-out instance: the new key signs, the old one's public half still verifies.
    let mut after = test_settings();
    asymmetric(&mut after, JwtAlgorithm::Es256, "k2", &new);
    after.jwt.previous_public_keys = vec![PreviousPublicKey {
        kid: "k1".into(),
        public_key_file: None,
        public_key: Some(old.public_pem.clone()),
    }];
    let after = TestApp::spawn_on(after, storage.clone()).await;
    let me = after
        .get("/api/v1/sessions/current", &device.access_token)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);

    let keys = jwks(&after).await;
    let kids: Vec<Option<&str>> = keys
        .keys
        .iter()
        .map(|key| key.common.key_id.as_deref())
        .collect();
    assert_eq!(kids, [Some("k2"), Some("k1")], "the current key first");
    assert!(verified_offline(&device.access_token, &keys).is_ok());
    let rotated = after.refreshed(&device).await;
    assert_eq!(
        jsonwebtoken::decode_header(&rotated.access_token)
            .unwrap()
            .kid
            .as_deref(),
        Some("k2")
    );
    assert!(verified_offline(&rotated.access_token, &keys).is_ok());
    // The instance that has not rolled out yet knows nothing of k2: offline, not even the
    // old JWKS verifies the new token.
    assert!(verified_offline(&rotated.access_token, &jwks(&before).await).is_err());
    before.stop().await;
    after.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hs256_the_jwks_is_empty() {
    let app = TestApp::spawn().await;
    assert_eq!(jwks_body(&app).await, r#"{"keys":[]}"#);
    app.stop().await;
}
