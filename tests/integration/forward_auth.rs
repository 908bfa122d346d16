//! Forward authentication (issue 17): `/api/v1/auth/check` on its own, and behind a real
//! nginx running the documented configuration (`docs/forward-auth/nginx.conf`).

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sessiond_domain::model::Role;
use sessiond_tests::app::{Backend, IPHONE, TestApp, WINDOWS};
use sessiond_tests::header_echo::HeaderEcho;
use sessiond_tests::nginx::Nginx;

const CHECK: &str = "/api/v1/auth/check";
const HOTEL: i64 = 4711;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// `method` on `path` with `token`: status, headers and body.
async fn check(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = app.request(method, path);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sessiond answers");
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.bytes().await.expect("a body").to_vec();
    (status, headers, body)
}

/// The near cache is off, so the session's hotel must come back from the stores (Redis,
/// PostgreSQL, or memory), not from the copy made at sign-in.
async fn a_live_session_is_answered_with_its_headers_and_no_body(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |settings| {
        settings.sessions.near_cache_capacity = 0;
    })
    .await;
    let employee = app.create_account(Role::HotelEmployee, Some(HOTEL)).await;
    let device = app.login(&employee, IPHONE).await;
    let user_id = app.user_id(&device).await;

    let (status, headers, body) = check(&app, Method::GET, CHECK, Some(&device.access_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty(), "no body on success: {body:?}");
    assert_eq!(
        header(&headers, "x-session-user-id"),
        Some(user_id.as_str())
    );
    assert_eq!(header(&headers, "x-session-role"), Some("hotel_employee"));
    assert_eq!(
        header(&headers, "x-session-id"),
        Some(device.session_id.as_str())
    );
    assert_eq!(
        header(&headers, "x-session-hotel-id"),
        Some(HOTEL.to_string().as_str())
    );
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));

    let guest = app.create_user(Role::Guest).await;
    let guest = app.login(&guest, WINDOWS).await;
    let (status, headers, _) = check(&app, Method::GET, CHECK, Some(&guest.access_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-session-role"), Some("guest"));
    assert_eq!(
        header(&headers, "x-session-hotel-id"),
        None,
        "a guest has no hotel"
    );
}

/// A signed-out session is refused on the very next check, with the usual problem and a
/// challenge; so are a missing and a malformed token.
async fn a_refusal_is_a_401_problem_with_a_challenge(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;

    let (status, headers, body) = check(&app, Method::GET, CHECK, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&headers, "www-authenticate"),
        Some("Bearer realm=\"sessiond\"")
    );
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "unauthenticated");
    assert_eq!(header(&headers, "x-session-user-id"), None);

    let (status, headers, _) = check(&app, Method::GET, CHECK, Some("not.a.token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        header(&headers, "www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    let signed_out = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&device.access_token),
            None,
        )
        .await;
    assert_eq!(signed_out.status, StatusCode::NO_CONTENT);
    let (status, headers, body) = check(&app, Method::GET, CHECK, Some(&device.access_token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "session_revoked");
    assert_eq!(problem["reason"], "user_logout");
    assert_eq!(header(&headers, "x-session-id"), None);
}

sessiond_tests::on_every_backend!(
    a_live_session_is_answered_with_its_headers_and_no_body,
    a_refusal_is_a_401_problem_with_a_challenge,
);

/// nginx's subrequest keeps the client's method and Envoy appends the original path: every
/// method on `/check` and below it gets the same answer, and a body is ignored.
#[tokio::test]
async fn any_method_and_any_path_below_the_check_are_answered_alike() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    let paths = [
        CHECK.to_owned(),
        format!("{CHECK}/"),
        format!("{CHECK}/orders/42?page=2"),
        format!("{CHECK}/files/a%2Fb%20c"),
    ];
    for path in &paths {
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            let (status, headers, body) =
                check(&app, method.clone(), path, Some(&device.access_token)).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}");
            assert!(body.is_empty(), "{method} {path}");
            assert_eq!(
                header(&headers, "x-session-id"),
                Some(device.session_id.as_str()),
                "{method} {path}"
            );
        }
    }
    // A body, even one no route could parse, is never read.
    let answer = app
        .request(Method::POST, CHECK)
        .bearer_auth(&device.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    // Only what is below the check is the check.
    let (status, _, _) = check(
        &app,
        Method::GET,
        "/api/v1/auth/checkout",
        Some(&device.access_token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The documented nginx configuration, around a running sessiond and an upstream that
/// shows the headers it got.
struct BehindNginx {
    app: TestApp,
    /// Runs as long as the proxy in front of it.
    _upstream: HeaderEcho,
    nginx: Nginx,
    client: reqwest::Client,
}

impl BehindNginx {
    async fn start() -> Self {
        let app = TestApp::spawn_backend(Backend::PostgresRedis, |_| {}).await;
        let upstream = HeaderEcho::start().await;
        let snippet = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/forward-auth/nginx.conf"
        ))
        .expect("the documented nginx configuration");
        let sessiond = app.base_url.trim_start_matches("http://").to_owned();
        let nginx = Nginx::start(
            &snippet,
            &[
                ("app:3000", upstream.address()),
                ("sessiond:8080", sessiond),
            ],
        );
        Self {
            app,
            _upstream: upstream,
            nginx,
            client: reqwest::Client::new(),
        }
    }

    /// A request for the app through nginx, with `token` and extra `headers`.
    async fn get(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self.client.get(format!("{}/orders/42", self.nginx.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("nginx answers");
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.bytes().await.expect("a body");
        let seen = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, headers, seen)
    }
}

/// What a client might send to pass as someone else.
const FORGED: [(&str, &str); 5] = [
    ("X-Session-User-Id", "00000000-0000-0000-0000-000000000001"),
    ("x-session-role", "system_admin"),
    ("X-Session-Id", "00000000-0000-0000-0000-000000000002"),
    ("X-SESSION-HOTEL-ID", "999"),
    ("X-Session_Role", "system_admin"),
];

/// Each header the upstream saw under a name starting with `x-session`, with its values.
fn session_headers(seen: &Value) -> Vec<(String, Vec<String>)> {
    let Some(all) = seen.as_object() else {
        return Vec::new();
    };
    all.iter()
        .filter(|(name, _)| name.starts_with("x-session"))
        .map(|(name, values)| {
            let values = values
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect();
            (name.clone(), values)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_the_upstream_sees_only_what_sessiond_vouched_for() {
    let proxy = BehindNginx::start().await;
    let employee = proxy
        .app
        .create_account(Role::HotelEmployee, Some(HOTEL))
        .await;
    let device = proxy.app.login(&employee, IPHONE).await;
    let user_id = proxy.app.user_id(&device).await;

    let (status, _, seen) = proxy.get(Some(&device.access_token), &FORGED).await;
    assert_eq!(status, StatusCode::OK, "nginx: {}", proxy.nginx.error_log());
    assert_eq!(
        session_headers(&seen),
        vec![
            ("x-session-hotel-id".to_owned(), vec![HOTEL.to_string()]),
            ("x-session-id".to_owned(), vec![device.session_id.clone()]),
            (
                "x-session-role".to_owned(),
                vec!["hotel_employee".to_owned()]
            ),
            ("x-session-user-id".to_owned(), vec![user_id]),
        ],
        "the upstream saw {seen}"
    );

    // A guest has no hotel: a forged one is dropped, not passed on.
    let guest = proxy.app.create_user(Role::Guest).await;
    let guest = proxy.app.login(&guest, WINDOWS).await;
    let (status, _, seen) = proxy.get(Some(&guest.access_token), &FORGED).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<String> = session_headers(&seen)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        ["x-session-id", "x-session-role", "x-session-user-id"],
        "the upstream saw {seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_a_signed_out_session_is_refused_on_the_very_next_request() {
    let proxy = BehindNginx::start().await;
    let email = proxy.app.create_user(Role::Guest).await;
    let device = proxy.app.login(&email, IPHONE).await;
    let other = proxy.app.login(&email, WINDOWS).await;

    let (status, _, _) = proxy.get(None, &FORGED).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token, no upstream");
    let (status, headers, _) = proxy.get(Some(&device.access_token), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "www-authenticate"), None);

    // Ended from the other device, then the very next request.
    let ended = proxy
        .app
        .delete(
            &format!("/api/v1/sessions/{}", device.session_id),
            &other.access_token,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    let (status, headers, seen) = proxy.get(Some(&device.access_token), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the upstream saw {seen}");
    assert_eq!(
        headers.get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"sessiond\", error=\"invalid_token\""),
        "sessiond's challenge reaches the client"
    );
    let (status, _, _) = proxy.get(Some(&other.access_token), &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the other device is still signed in"
    );
}
