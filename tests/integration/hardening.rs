//! Hostile input is normal input (issue 7): limits, headers, CORS, request ids, and logs
//! that never carry a secret.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sessiond_domain::model::Role;
use sessiond_tests::app::{IPHONE, PASSWORD, TestApp, WINDOWS, read};
use sessiond_tests::logs;

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_that_names_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let reply = read(app.request(Method::PUT, "/api/v1/sessions")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.code(), "method_not_allowed");
    let login_with_get = read(app.request(Method::GET, "/api/v1/auth/login")).await;
    assert_eq!(login_with_get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn oversized_headers_and_urls_are_refused_with_a_4xx() {
    let app = TestApp::spawn().await;
    let huge_header = read(
        app.request(Method::GET, "/health/live")
            .header("x-filler", "a".repeat(20 * 1024)),
    )
    .await;
    assert_eq!(
        huge_header.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(huge_header.code(), "headers_too_large");
    let huge_url = read(app.request(
        Method::GET,
        &format!("/api/v1/sessions?q={}", "a".repeat(8 * 1024)),
    ))
    .await;
    assert_eq!(huge_url.status, StatusCode::URI_TOO_LONG);
    assert_eq!(huge_url.code(), "uri_too_long");
    // Beyond what the HTTP parser takes at all: a 4xx or a closed connection, never 5xx.
    // Each on a connection of its own: the server may drop the one that carried it.
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    if let Ok(response) = fresh()
        .get(format!("{}/health/live", app.base_url))
        .header("x-filler", "a".repeat(256 * 1024))
        .send()
        .await
    {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let live = read(fresh().get(format!("{}/health/live", app.base_url))).await;
    assert_eq!(live.status, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_tokens_are_never_cached() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    let login = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["cache-control"], "no-store");
    let body: serde_json::Value = login.json().await.unwrap();
    let refresh = app
        .request(Method::POST, "/api/v1/auth/refresh")
        .json(&json!({ "refresh_token": body["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::OK);
    assert_eq!(refresh.headers()["cache-control"], "no-store");

    for path in ["/health/live", "/api/v1/sessions", "/api/v1/nowhere", "/"] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(headers.get("strict-transport-security").is_none(), "{path}");
    }
    let with_hsts = TestApp::spawn_with(|s| s.http.hsts = true).await;
    let response = with_hsts
        .request(Method::GET, "/health/live")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}

#[tokio::test]
async fn cors_grants_only_the_configured_origins() {
    let app = TestApp::spawn_with(|s| {
        s.http.cors_allowed_origins = vec!["https://hotel.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, "/api/v1/sessions")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://hotel.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://hotel.example"
    );
    let stranger = preflight("https://evil.example").await.unwrap();
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let simple = app
        .request(Method::GET, "/health/live")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), StatusCode::OK);
    assert!(
        simple
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_up() {
    let app = TestApp::spawn().await;
    let given = app
        .request(Method::GET, "/health/live")
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-42");
    let made_up = app
        .request(Method::GET, "/api/v1/sessions")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = made_up.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "bad id with spaces");
    assert!(accepted_id_shape(id), "{id}");
    let next = app
        .request(Method::GET, "/health/live")
        .send()
        .await
        .unwrap();
    assert_ne!(next.headers()["x-request-id"].to_str().unwrap(), id);
}

fn accepted_id_shape(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[tokio::test]
async fn a_full_flow_logs_no_token_and_no_password() {
    let logs = logs::capture();
    let app = TestApp::spawn().await;
    let email = TestApp::email();
    let first_password = "first secret password";
    let second_password = "second secret password";
    let register = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({ "email": email, "password": first_password })),
        )
        .await;
    assert_eq!(register.status, StatusCode::CREATED);
    let wrong = app
        .try_login(&email, "a wrong password guess", IPHONE)
        .await;
    assert_eq!(wrong.code(), "invalid_credentials");
    let phone = app.try_login(&email, first_password, IPHONE).await;
    let laptop = app.try_login(&email, first_password, WINDOWS).await;
    let mut secrets = vec![
        first_password.to_owned(),
        second_password.to_owned(),
        "a wrong password guess".to_owned(),
    ];
    for reply in [&phone, &laptop] {
        secrets.push(reply.body["access_token"].as_str().unwrap().to_owned());
        secrets.push(reply.body["refresh_token"].as_str().unwrap().to_owned());
    }
    let phone_access = phone.body["access_token"].as_str().unwrap();
    let refreshed = app
        .refresh(phone.body["refresh_token"].as_str().unwrap())
        .await;
    secrets.push(refreshed.body["access_token"].as_str().unwrap().to_owned());
    secrets.push(refreshed.body["refresh_token"].as_str().unwrap().to_owned());
    // A token in the query string is ignored, and must not be logged either.
    let query = read(app.request(
        Method::GET,
        &format!("/api/v1/sessions?access_token={phone_access}"),
    ))
    .await;
    assert_eq!(query.code(), "unauthenticated");
    let token = refreshed.body["access_token"].as_str().unwrap();
    let changed = app
        .call(
            Method::POST,
            "/api/v1/users/me/password",
            Some(token),
            Some(json!({ "current_password": first_password, "new_password": second_password })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT);
    let logout = app
        .call(Method::POST, "/api/v1/auth/logout", Some(token), None)
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);

    let text = logs.text();
    // The capture works: the flow's events are there...
    assert!(text.contains("session opened"), "nothing was captured");
    assert!(text.contains("password_changed"));
    assert!(text.contains("request served"));
    // ...and no secret is.
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret reached the logs");
        // Nor the secret part of a refresh token on its own.
        if let Some((_, tail)) = secret.split_once('.') {
            assert!(!text.contains(tail), "part of a token reached the logs");
        }
    }
    assert!(
        !text.contains("$argon2"),
        "a password hash reached the logs"
    );
}

/// The value of the `sessiond_http_requests_total` series with exactly these labels.
fn requests_counted(metrics: &str, route: &str, method: &str, status: u16) -> f64 {
    let series = format!(
        r#"sessiond_http_requests_total{{route="{route}",method="{method}",status="{status}"}} "#
    );
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn request_metrics_count_by_route_pattern_with_bounded_labels() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    let scrape = || async {
        app.request(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let current = "/api/v1/sessions/current";
    let before = scrape().await;

    for _ in 0..3 {
        assert_eq!(
            app.get(current, &device.access_token).await.status,
            StatusCode::OK
        );
    }
    // An id in the path counts under its pattern; a made-up method and a made-up path
    // under shared labels, so that clients cannot mint new series.
    let one = format!("/api/v1/sessions/{}", uuid::Uuid::new_v4());
    assert_eq!(
        app.delete(&one, &device.access_token).await.status,
        StatusCode::NOT_FOUND
    );
    let brew = Method::from_bytes(b"BREW").unwrap();
    read(app.request(brew, current)).await;
    let random_path = format!("/nothing-{}", uuid::Uuid::new_v4());
    read(app.request(Method::GET, &random_path)).await;

    let after = scrape().await;
    let grew = |route: &str, method: &str, status: u16| {
        requests_counted(&after, route, method, status)
            - requests_counted(&before, route, method, status)
    };
    assert!(grew(current, "GET", 200) >= 3.0, "{after}");
    assert!(
        grew("/api/v1/sessions/{id}", "DELETE", 404) >= 1.0,
        "{after}"
    );
    assert!(grew("unmatched", "GET", 404) >= 1.0, "{after}");
    assert!(after.contains(r#"method="OTHER""#), "{after}");
    assert!(!after.contains("BREW"), "{after}");
    assert!(!after.contains(&random_path), "{after}");
    assert!(
        after.contains("sessiond_http_request_duration_seconds_bucket"),
        "{after}"
    );
}
