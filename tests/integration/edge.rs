//! The HTTP edge under hostile input, round two (issue 15): `/metrics` on its own listener,
//! `HEAD` wherever `GET` is, no caching of the API's answers, one `Authorization` header,
//! RFC 6750 challenges, field-naming validation details, a deadline on request bodies, and
//! problem details on the parser's own refusals.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sessiond_domain::model::Role;
use sessiond_tests::app::{IPHONE, TestApp, read};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_and_nowhere_else() {
    let app = TestApp::spawn().await;
    assert_eq!(
        read(app.request(Method::GET, "/health/live")).await.status,
        StatusCode::OK
    );
    let on_the_api = read(app.request(Method::GET, "/metrics")).await;
    assert_eq!(on_the_api.status, StatusCode::NOT_FOUND);
    assert_eq!(on_the_api.code(), "not_found");
    assert_ne!(app.metrics_url, app.base_url);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"sessiond_http_requests_total{route="/health/live""#),
        "{metrics}"
    );
    // The metrics listener serves the metrics and nothing else.
    let api_there = app
        .client
        .get(format!("{}/health/live", app.metrics_url))
        .send()
        .await
        .unwrap();
    assert_eq!(api_there.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn head_is_answered_wherever_get_is() {
    let app = TestApp::spawn().await;
    for path in ["/health/live", "/health/ready", "/", "/api/openapi.json"] {
        let get = app.request(Method::GET, path).send().await.unwrap();
        let head = app.request(Method::HEAD, path).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path}: a body"
        );
    }
    // An authenticated GET route: HEAD is refused the way GET is, not with 405.
    let unauthenticated = app
        .request(Method::HEAD, "/api/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    // Where there is no GET, there is no HEAD either.
    let no_get = app
        .request(Method::HEAD, "/api/v1/auth/login")
        .send()
        .await
        .unwrap();
    assert_eq!(no_get.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.stop().await;
}

#[tokio::test]
async fn api_answers_are_never_stored_by_caches() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    for path in [
        "/api/v1/users/me",
        "/api/v1/sessions",
        "/api/v1/sessions/current",
        "/api/v1/sessions/history",
    ] {
        let response = app
            .request(Method::GET, path)
            .bearer_auth(&device.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    let refused = app
        .request(Method::GET, "/api/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["cache-control"], "no-store");
    app.stop().await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused_with_a_400() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::SystemAdmin).await;
    let device = app.login(&email, IPHONE).await;
    let bearer = format!("Bearer {}", device.access_token);
    for (path, other) in [
        ("/api/v1/sessions/current", "Bearer forged"),
        ("/api/v1/sessions/current", bearer.as_str()),
        (
            "/api/v1/admin/users/00000000-0000-4000-8000-000000000000/sessions",
            "Basic eDp5",
        ),
    ] {
        let reply = read(
            app.request(Method::GET, path)
                .header("authorization", &bearer)
                .header("authorization", other),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            reply.body
        );
        assert_eq!(reply.code(), "validation_failed");
    }
    let one = read(
        app.request(Method::GET, "/api/v1/sessions/current")
            .header("authorization", &bearer),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn every_401_challenges_for_a_bearer_token_and_says_when_one_was_refused() {
    let app = TestApp::spawn().await;
    let challenge = |response: &reqwest::Response| {
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let missing = app
        .request(Method::GET, "/api/v1/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&missing).starts_with("Bearer"),
        "{}",
        challenge(&missing)
    );
    assert!(!challenge(&missing).contains("error="));
    for path in [
        "/api/v1/sessions",
        "/api/v1/admin/users/00000000-0000-4000-8000-000000000000/sessions",
    ] {
        let bad = app
            .request(Method::GET, path)
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&bad).starts_with("Bearer"));
        assert!(
            challenge(&bad).contains(r#"error="invalid_token""#),
            "{path}: {}",
            challenge(&bad)
        );
    }
    let email = app.create_user(Role::Guest).await;
    let wrong = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({ "email": email, "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&wrong).starts_with("Bearer"));
    app.stop().await;
}

#[tokio::test]
async fn validation_details_name_the_field_not_serde_types() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({ "email": 5, "password": "x" }), "`email`"),
        (
            json!({ "email": "a@example.com", "password": ["x"] }),
            "`password`",
        ),
        (
            json!({ "email": "a@example.com", "password": "x", "device_name": 7 }),
            "`device_name`",
        ),
        (json!({ "password": "x" }), "`email`"),
    ] {
        let reply = app
            .call(Method::POST, "/api/v1/auth/login", None, Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.code(), "validation_failed");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{body}: {detail}");
        for serde_words in ["invalid type", "expected", "line ", "column"] {
            assert!(!detail.contains(serde_words), "{body}: {detail}");
        }
    }
    app.stop().await;
}

/// Everything the server sends on `stream` until it closes it, or `within` passes.
async fn answer(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buffer = [0_u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

#[tokio::test]
async fn a_body_that_arrives_too_slowly_is_a_408_and_its_connection_closes() {
    let app = TestApp::spawn_with(|s| s.http.body_timeout_ms = 300).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let heads = [
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{\"email\":",
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\n{\"ema\r\n",
    ];
    for head in heads {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // ...and nothing more: the server must not wait for the rest forever.
        let (received, closed) = answer(&mut stream, Duration::from_secs(10)).await;
        assert!(
            received.starts_with("HTTP/1.1 408"),
            "{head:?} got {received:?}"
        );
        assert!(received.contains("application/problem+json"), "{received}");
        assert!(received.contains("request_timeout"), "{received}");
        assert!(closed, "the connection stayed open after the 408");
    }
    // A body that arrives in time is served as usual.
    let reply = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({ "email": TestApp::email(), "password": "a long enough password" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    app.stop().await;
}

/// Issue 15, item 2: a sign-in that waits out PostgreSQL's `statement_timeout` behind a lock
/// is overload: 503 `service_unavailable` with `Retry-After`, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_stuck_behind_a_lock_is_a_503_with_retry_after() {
    let url = sessiond_postgres::testing::fresh_database_url()
        .await
        .unwrap();
    let pool = sessiond_postgres::PgPool::connect(&sessiond_postgres::PgSettings {
        statement_timeout: Duration::from_millis(300),
        ..sessiond_postgres::testing::settings(url.clone())
    })
    .await
    .unwrap();
    let app = TestApp::spawn_on(
        sessiond_tests::app::test_settings(),
        sessiond_app::storage::Storage::postgres(pool, None),
    )
    .await;
    let email = app.create_user(Role::Guest).await;
    let (mut holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let link = tokio::spawn(connection);
    let lock = holder.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let response = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({ "email": email, "password": sessiond_tests::app::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable");
    lock.rollback().await.unwrap();
    app.login(&email, IPHONE).await;
    link.abort();
    app.stop().await;
}

/// Issue 15: what the HTTP parser refuses on its own (a head with more headers than it
/// takes, an unparsable head) gets a problem body like every other error, not a bare status.
#[tokio::test]
async fn the_parsers_own_refusals_are_problem_details_too() {
    let app = TestApp::spawn().await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let many_headers: String = (0..120).map(|i| format!("x-filler-{i}: v\r\n")).collect();
    for (request, status, code) in [
        (
            format!("GET /health/live HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
            "431",
            "headers_too_large",
        ),
        (
            "GET /health/live HTTP/1.1\r\nHost x\r\n\r\n".to_owned(),
            "400",
            "bad_request",
        ),
    ] {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let (received, _) = answer(&mut stream, Duration::from_secs(10)).await;
        assert!(
            received.starts_with(&format!("HTTP/1.1 {status}")),
            "{received:?}"
        );
        let (head, body) = received.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{head}"
        );
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["code"], code, "{body}");
        assert_eq!(problem["status"].to_string(), status);
    }
    // The connection-level wrapper leaves ordinary answers alone.
    let live = read(app.request(Method::GET, "/health/live")).await;
    assert_eq!(live.status, StatusCode::OK);
    app.stop().await;
}
