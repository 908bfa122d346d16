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
    let scrape = || app.metrics();
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

/// Issue 15: text that reaches a store is checked or cleaned first, on every backend. A
/// client's mistake is a 400 `validation_failed` that changes nothing (SPEC §3 invariant 6),
/// never a 500; look-alike spellings of an address are one account.
mod hostile_text {
    use reqwest::header::HeaderValue;
    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};
    use sessiond_domain::model::Role;
    use sessiond_tests::app::{Backend, IPHONE, PASSWORD, Reply, TestApp, read};

    /// The sign-in routes: the API's and the web UI's (which needs its CSRF header).
    const LOGIN_ROUTES: [&str; 2] = ["/api/v1/auth/login", "/ui/auth/login"];

    async fn login_at(app: &TestApp, route: &str, body: &Value, user_agent: HeaderValue) -> Reply {
        read(
            app.request(Method::POST, route)
                .header("x-requested-with", "sessiond-ui")
                .header("user-agent", user_agent)
                .json(body),
        )
        .await
    }

    async fn sessions_of(app: &TestApp, email: &str) -> Vec<Value> {
        let device = app.login(email, IPHONE).await;
        let list = app.get("/api/v1/sessions", &device.access_token).await;
        assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
        list.body.as_array().cloned().unwrap_or_default()
    }

    fn assert_validation_failed(reply: &Reply, field: &str, context: &str) {
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{context}: {:?}",
            reply.body
        );
        assert_eq!(reply.content_type, "application/problem+json", "{context}");
        assert_eq!(reply.code(), "validation_failed", "{context}");
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(field), "{context}: {detail}");
    }

    async fn a_device_name_with_nul_control_or_bidi_characters_is_a_400_that_opens_nothing(
        backend: Backend,
    ) {
        let app = TestApp::spawn_backend(backend, |_| {}).await;
        let email = app.create_user(Role::Guest).await;
        for route in LOGIN_ROUTES {
            for name in [
                "laptop\u{0}",
                "\u{0}",
                "work\nlaptop",
                "bell\u{7}",
                "c1 \u{9B}31m",
                "\u{202E}enohpi",
                "my \u{2066}phone\u{2069}",
                "line\u{2028}break",
            ] {
                let body = json!({ "email": email, "password": PASSWORD, "device_name": name });
                let reply = login_at(&app, route, &body, HeaderValue::from_static(IPHONE)).await;
                assert_validation_failed(&reply, "device_name", &format!("{route} {name:?}"));
            }
        }
        // Nothing was opened: the only session is the one listing them.
        assert_eq!(sessions_of(&app, &email).await.len(), 1);
        // An emoji sequence (joiners, variation selector) is a name like any other.
        let name = "Anna's \u{1F469}\u{200D}\u{1F4BB} \u{2764}\u{FE0F}";
        for route in LOGIN_ROUTES {
            let body = json!({ "email": email, "password": PASSWORD, "device_name": name });
            let reply = login_at(&app, route, &body, HeaderValue::from_static(IPHONE)).await;
            assert_eq!(reply.status, StatusCode::OK, "{route}: {:?}", reply.body);
            assert_eq!(reply.body["session"]["device_name"], name, "{route}");
        }
    }

    async fn a_user_agent_with_control_or_foreign_bytes_is_cleaned_and_bounded(backend: Backend) {
        let app = TestApp::spawn_backend(backend, |_| {}).await;
        let email = app.create_user(Role::Guest).await;
        let body = json!({ "email": email, "password": PASSWORD });
        let long = "\u{E9}".repeat(600);
        let agents = [
            (&b"Odd\tAgent/1.0"[..], "Odd\u{FFFD}Agent/1.0".to_owned()),
            // UTF-8 (obs-text to HTTP): kept rather than dropped; a direction override is
            // replaced.
            (
                "Caf\u{E9}/2 \u{202E}gpj.exe".as_bytes(),
                "Caf\u{E9}/2 \u{FFFD}gpj.exe".to_owned(),
            ),
            // Not UTF-8 at all.
            (&b"Latin\xE9/3"[..], "Latin\u{FFFD}/3".to_owned()),
            // 600 two-byte characters: 512 bytes are kept.
            (long.as_bytes(), "\u{E9}".repeat(256)),
        ];
        for (route, (sent, kept)) in LOGIN_ROUTES.iter().cycle().zip(agents) {
            let agent = HeaderValue::from_bytes(sent).unwrap();
            let reply = login_at(&app, route, &body, agent).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{route} {sent:?}: {:?}",
                reply.body
            );
            // As stored: listed from the store with the new session's own token.
            let token = reply.body["access_token"].as_str().unwrap();
            let listed = app.get("/api/v1/sessions", token).await;
            let current = listed
                .body
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["is_current"] == true);
            assert_eq!(
                current.unwrap()["user_agent"],
                kept.as_str(),
                "{route} {sent:?}"
            );
        }
    }

    async fn a_nul_in_an_address_or_a_password_is_never_a_500(backend: Backend) {
        let app = TestApp::spawn_backend(backend, |_| {}).await;
        let email = app.create_user(Role::Guest).await;
        let register = app
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({ "email": format!("x\u{0}{email}"), "password": PASSWORD })),
            )
            .await;
        assert_validation_failed(&register, "email", "register");
        // A password may hold anything: it is only ever hashed.
        let nul_password = format!("{PASSWORD}\u{0}");
        let fresh = TestApp::email();
        let register = app
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({ "email": fresh, "password": nul_password })),
            )
            .await;
        assert_eq!(register.status, StatusCode::CREATED, "{:?}", register.body);
        for route in LOGIN_ROUTES {
            for (email, password) in [
                (format!("{email}\u{0}"), PASSWORD),
                (email.clone(), "wrong\u{0}password"),
            ] {
                let body = json!({ "email": email, "password": password });
                let reply = login_at(&app, route, &body, HeaderValue::from_static(IPHONE)).await;
                assert_eq!(reply.code(), "invalid_credentials", "{route} {email:?}");
            }
            let body = json!({ "email": fresh, "password": nul_password });
            let reply = login_at(&app, route, &body, HeaderValue::from_static(IPHONE)).await;
            assert_eq!(reply.status, StatusCode::OK, "{route}: {:?}", reply.body);
        }
    }

    async fn look_alike_addresses_are_one_account(backend: Backend) {
        let app = TestApp::spawn_backend(backend, |_| {}).await;
        let plain = format!("renee.{}@example.com", uuid::Uuid::new_v4().simple());
        let register = |email: String| {
            app.call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({ "email": email, "password": PASSWORD })),
            )
        };
        let created = register(plain.clone()).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let (local, domain) = plain.split_once('@').unwrap();
        let full_width: String = local
            .chars()
            .map(|c| {
                char::from_u32(u32::from(c) + 0xFEE0)
                    .filter(|_| c.is_ascii_graphic())
                    .unwrap_or(c)
            })
            .collect();
        let look_alikes = [
            format!("{full_width}\u{FF20}{domain}"),
            plain.to_uppercase(),
        ];
        // The accented spelling is another address, in its NFC and NFD spellings alike.
        let accented = plain.replacen("renee", "ren\u{E9}e", 1);
        let created = register(accented.replacen('\u{E9}', "e\u{301}", 1)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["email"], accented.as_str());
        for taken in look_alikes.iter().chain([&accented]) {
            let again = register(taken.clone()).await;
            assert_eq!(
                again.status,
                StatusCode::CONFLICT,
                "{taken:?}: {:?}",
                again.body
            );
            assert_eq!(again.code(), "email_taken", "{taken:?}");
        }
        for invisible in [
            '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{AD}', '\u{202E}',
        ] {
            let hidden = plain.replacen('@', &format!("{invisible}@"), 1);
            let refused = register(hidden).await;
            assert_validation_failed(
                &refused,
                "email",
                &format!("U+{:04X}", u32::from(invisible)),
            );
            let message = refused.body["detail"].as_str().unwrap_or_default();
            assert!(message.contains("invisible"), "{message}");
        }
        // Every spelling signs in to the one account.
        for spelling in &look_alikes {
            let device = app.login(spelling, IPHONE).await;
            let me = app.get("/api/v1/users/me", &device.access_token).await;
            assert_eq!(me.body["email"], plain.as_str(), "{spelling:?}");
        }
        // An administrator cannot create the look-alike either.
        let admin = app.create_user(Role::SystemAdmin).await;
        let admin = app.login(&admin, IPHONE).await;
        let created = app
            .call(
                Method::POST,
                "/api/v1/admin/users",
                Some(&admin.access_token),
                Some(json!({ "email": look_alikes[0], "password": PASSWORD, "role": "guest" })),
            )
            .await;
        assert_eq!(created.code(), "email_taken", "{:?}", created.body);
    }

    async fn failed_sign_ins_under_look_alike_spellings_count_against_one_account(
        backend: Backend,
    ) {
        let app = TestApp::spawn_backend(backend, |_| {}).await;
        let email = app.create_user(Role::Guest).await;
        let (local, domain) = email.split_once('@').unwrap();
        let spellings = [
            email.to_uppercase(),
            format!("{local}\u{FF20}{domain}"),
            format!(" {email}"),
            format!("{local}@{}", domain.replacen('e', "\u{FF45}", 1)),
            format!("{}@{domain}", local.replacen('u', "\u{FF55}", 1)),
        ];
        for spelling in &spellings {
            let reply = app.try_login(spelling, "a wrong password", IPHONE).await;
            assert_eq!(reply.code(), "invalid_credentials", "{spelling:?}");
        }
        let refused = app.try_login(&email, PASSWORD, IPHONE).await;
        assert_eq!(
            refused.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{:?}",
            refused.body
        );
        assert_eq!(refused.code(), "rate_limited");
    }

    sessiond_tests::on_every_backend!(
        a_device_name_with_nul_control_or_bidi_characters_is_a_400_that_opens_nothing,
        a_user_agent_with_control_or_foreign_bytes_is_cleaned_and_bounded,
        a_nul_in_an_address_or_a_password_is_never_a_500,
        look_alike_addresses_are_one_account,
        failed_sign_ins_under_look_alike_spellings_count_against_one_account,
    );
}

/// Issue 15, items 4 to 6: a password change is no oracle for the password, strangers
/// cannot lock a known device out, and registration is limited per client address.
mod throttles {
    use reqwest::header::{HeaderMap, RETRY_AFTER, SET_COOKIE};
    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};
    use sessiond_domain::model::Role;
    use sessiond_tests::app::{Backend, IPHONE, PASSWORD, TestApp};

    /// An answer with its headers.
    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Value,
    }

    impl Answer {
        fn code(&self) -> &str {
            self.body["code"].as_str().unwrap_or_default()
        }

        /// A 429 `rate_limited` whose `Retry-After` is within the window.
        fn assert_rate_limited(&self, context: &str) {
            assert_eq!(
                self.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{context}: {:?}",
                self.body
            );
            assert_eq!(self.code(), "rate_limited", "{context}");
            let retry_after: u64 = self.headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert!((1..=900).contains(&retry_after), "{context}: {retry_after}");
        }

        fn device_token(&self) -> String {
            self.body["device_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no device_token in {:?}", self.body))
                .to_owned()
        }

        /// The `Set-Cookie` header that sets `name`.
        fn set_cookie(&self, name: &str) -> Option<String> {
            self.headers
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find(|value| value.starts_with(&format!("{name}=")))
                .map(str::to_owned)
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `POST /api/v1/auth/login`, with a device token when given one.
    async fn api_login(app: &TestApp, email: &str, password: &str, device: Option<&str>) -> Answer {
        let mut body = json!({ "email": email, "password": password });
        if let Some(token) = device {
            body["device_token"] = json!(token);
        }
        send(app.request(Method::POST, "/api/v1/auth/login").json(&body)).await
    }

    /// `POST /ui/auth/login` as the web UI sends it, with the device cookie when given one.
    async fn ui_login(app: &TestApp, email: &str, password: &str, cookie: Option<&str>) -> Answer {
        let mut request = app
            .request(Method::POST, "/ui/auth/login")
            .header("x-requested-with", "sessiond-ui")
            .header("user-agent", IPHONE)
            .json(&json!({ "email": email, "password": password }));
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("sessiond_device={cookie}"));
        }
        send(request).await
    }

    async fn change_password(app: &TestApp, access: &str, current: &str, new: &str) -> Answer {
        send(
            app.request(Method::POST, "/api/v1/users/me/password")
                .bearer_auth(access)
                .json(&json!({ "current_password": current, "new_password": new })),
        )
        .await
    }

    async fn wrong_current_passwords_are_throttled_like_failed_sign_ins(backend: Backend) {
        let app = TestApp::spawn_backend(backend, |_| {}).await;
        let email = app.create_user(Role::Guest).await;
        let phone = app.login(&email, IPHONE).await;
        let other = app.create_user(Role::Guest).await;
        let other = app.login(&other, IPHONE).await;
        let new = "a brand new passphrase";
        for attempt in 1..=5 {
            let wrong = change_password(&app, &phone.access_token, "not it", new).await;
            assert_eq!(wrong.status, StatusCode::FORBIDDEN, "guess {attempt}");
            assert_eq!(wrong.code(), "wrong_password", "guess {attempt}");
        }
        // The sixth guess is refused, and so is the right password, until the window ends.
        for current in ["still not it", PASSWORD] {
            change_password(&app, &phone.access_token, current, new)
                .await
                .assert_rate_limited(current);
        }
        assert_eq!(
            app.try_login(&email, new, IPHONE).await.code(),
            "invalid_credentials",
            "the password did not change"
        );
        // Each user is counted alone.
        let changed = change_password(&app, &other.access_token, PASSWORD, new).await;
        assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    }

    async fn strangers_cannot_lock_out_a_device_that_signed_in_before(backend: Backend) {
        let app = TestApp::spawn_backend(backend, |s| {
            s.sessions.max_failed_sign_ins_per_ip = 10;
        })
        .await;
        let owner = app.create_user(Role::Guest).await;
        let admin = app.create_user(Role::SystemAdmin).await;

        // Signing in hands the API client a device token, and the browser a device cookie
        // that page scripts cannot read.
        let first = api_login(&app, &owner, PASSWORD, None).await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        let mut owner_device = first.device_token();
        let first = api_login(&app, &admin, PASSWORD, None).await;
        let mut admin_device = first.device_token();
        let admin_access = first.body["access_token"].as_str().unwrap().to_owned();
        let browser = ui_login(&app, &owner, PASSWORD, None).await;
        assert_eq!(browser.status, StatusCode::OK, "{:?}", browser.body);
        assert!(
            browser.body.get("device_token").is_none(),
            "{:?}",
            browser.body
        );
        let cookie = browser
            .set_cookie("sessiond_device")
            .expect("a device cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui/auth", "Secure"] {
            assert!(cookie.contains(attribute), "{attribute}: {cookie}");
        }
        assert!(cookie.contains("Max-Age=31536000"), "{cookie}");
        let browser_device = cookie
            .trim_start_matches("sessiond_device=")
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        // Refreshing is no sign-in: no device token there.
        let refreshed = app
            .refresh(first.body["refresh_token"].as_str().unwrap())
            .await;
        assert!(refreshed.body.get("device_token").is_none());

        // Strangers fail on the owner's account, then on made-up ones from the same address.
        for _ in 0..5 {
            let reply = app.try_login(&owner, "a guess", IPHONE).await;
            assert_eq!(reply.code(), "invalid_credentials");
        }
        for _ in 0..5 {
            let reply = app.try_login(&TestApp::email(), "a guess", IPHONE).await;
            assert_eq!(reply.code(), "invalid_credentials");
        }
        // Everyone behind that address without a device token is locked out, admins too...
        for email in [&owner, &admin] {
            api_login(&app, email, PASSWORD, None)
                .await
                .assert_rate_limited("a stranger");
        }
        // ...but the devices that signed in before are let in, each with a renewed token.
        let known = api_login(&app, &owner, PASSWORD, Some(&owner_device)).await;
        assert_eq!(known.status, StatusCode::OK, "{:?}", known.body);
        owner_device = known.device_token();
        let known = api_login(&app, &admin, PASSWORD, Some(&admin_device)).await;
        assert_eq!(known.status, StatusCode::OK, "{:?}", known.body);
        admin_device = known.device_token();
        let known = ui_login(&app, &owner, PASSWORD, Some(&browser_device)).await;
        assert_eq!(known.status, StatusCode::OK, "{:?}", known.body);
        assert!(known.set_cookie("sessiond_device").is_some());

        // A device token is its account's alone, and a made-up one is a stranger's.
        api_login(&app, &admin, PASSWORD, Some(&owner_device))
            .await
            .assert_rate_limited("another account's token");
        api_login(&app, &owner, PASSWORD, Some("made-up"))
            .await
            .assert_rate_limited("a made-up token");

        // Wrong passwords from a known device count against that device: at the account's
        // limit it is refused too, while the owner's other device still gets in.
        for _ in 0..5 {
            let guess = api_login(&app, &owner, "a guess", Some(&owner_device)).await;
            assert_eq!(guess.code(), "invalid_credentials", "{:?}", guess.body);
        }
        api_login(&app, &owner, PASSWORD, Some(&owner_device))
            .await
            .assert_rate_limited("a known device at its limit");
        let other_device = ui_login(&app, &owner, PASSWORD, Some(&browser_device)).await;
        assert_eq!(
            other_device.status,
            StatusCode::OK,
            "{:?}",
            other_device.body
        );

        // A password change retires the device tokens issued before it.
        let new = "the admin's new passphrase";
        let changed = change_password(&app, &admin_access, PASSWORD, new).await;
        assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
        api_login(&app, &admin, new, Some(&admin_device))
            .await
            .assert_rate_limited("a token from before the password change");
    }

    async fn registration_is_limited_per_client_address(backend: Backend) {
        let app = TestApp::spawn_backend(backend, |_| {}).await;
        let register = |email: String| {
            send(
                app.request(Method::POST, "/api/v1/auth/register")
                    .json(&json!({ "email": email, "password": PASSWORD })),
            )
        };
        let taken = app.create_user(Role::Guest).await;
        // Twenty registrations per window from one address (the default), answered or not:
        // a taken address answers too.
        for n in 1..=19 {
            let created = register(TestApp::email()).await;
            assert_eq!(
                created.status,
                StatusCode::CREATED,
                "#{n}: {:?}",
                created.body
            );
        }
        assert_eq!(register(taken.clone()).await.status, StatusCode::CONFLICT);
        // Then 429 until the window ends: no account is made, no address is probed.
        let fresh = TestApp::email();
        register(fresh.clone())
            .await
            .assert_rate_limited("a fresh address");
        register(taken).await.assert_rate_limited("a taken address");
        assert_eq!(
            app.try_login(&fresh, PASSWORD, IPHONE).await.code(),
            "invalid_credentials",
            "the refused registration made no account"
        );
        // Sign-in is not registration.
        let email = app.create_user(Role::Guest).await;
        app.login(&email, IPHONE).await;

        // The limit is a setting.
        let app =
            TestApp::spawn_backend(backend, |s| s.sessions.max_registrations_per_ip = 2).await;
        for _ in 0..2 {
            let created = send(
                app.request(Method::POST, "/api/v1/auth/register")
                    .json(&json!({ "email": TestApp::email(), "password": PASSWORD })),
            )
            .await;
            assert_eq!(created.status, StatusCode::CREATED);
        }
        send(
            app.request(Method::POST, "/api/v1/auth/register")
                .json(&json!({ "email": TestApp::email(), "password": PASSWORD })),
        )
        .await
        .assert_rate_limited("beyond the configured limit");
    }

    sessiond_tests::on_every_backend!(
        wrong_current_passwords_are_throttled_like_failed_sign_ins,
        strangers_cannot_lock_out_a_device_that_signed_in_before,
        registration_is_limited_per_client_address,
    );
}
