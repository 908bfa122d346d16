//! The HTTP API end to end (SPEC §1–§4), against a real server on a free port.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond_app::config::OnLimit;
use sessiond_domain::model::Role;
use sessiond_tests::app::{ANDROID, Backend, IPHONE, PASSWORD, TestApp, WINDOWS, read};

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|items| items.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default()
}

async fn two_devices_see_each_other_and_one_signs_the_other_out(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let laptop = app.login(&email, WINDOWS).await;

    let list = app.get("/api/v1/sessions", &phone.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    // Most recently active first: the laptop signed in last.
    assert_eq!(
        ids(&list.body),
        vec![laptop.session_id.as_str(), phone.session_id.as_str()]
    );
    let sessions = list.body.as_array().unwrap();
    assert_eq!(sessions[0]["device_info"], "Windows");
    assert_eq!(sessions[0]["device_kind"], "computer");
    assert_eq!(sessions[0]["browser"], "Chrome");
    assert_eq!(sessions[0]["is_current"], false);
    assert_eq!(sessions[1]["device_info"], "iPhone");
    assert_eq!(sessions[1]["device_kind"], "phone");
    assert_eq!(sessions[1]["is_current"], true);
    assert_eq!(sessions[1]["ip_address"], "127.0.0.1");

    let ended = app
        .delete(
            &format!("/api/v1/sessions/{}", laptop.session_id),
            &phone.access_token,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    assert_eq!(ended.body["success"], true);

    let refused = app.get("/api/v1/sessions", &laptop.access_token).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.code(), "session_revoked");
    // Ended from the phone: the laptop is told so, not that it signed itself out.
    assert_eq!(refused.body["reason"], "ended_from_other_device");
    assert_eq!(refused.content_type, "application/problem+json");

    let list = app.get("/api/v1/sessions", &phone.access_token).await;
    assert_eq!(ids(&list.body), vec![phone.session_id.as_str()]);
}

async fn another_users_session_is_not_found(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let mallory = app
        .login(&app.create_user(Role::Guest).await, WINDOWS)
        .await;
    let alice = app.login(&app.create_user(Role::Guest).await, IPHONE).await;

    let attempt = app
        .delete(
            &format!("/api/v1/sessions/{}", alice.session_id),
            &mallory.access_token,
        )
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    assert_eq!(attempt.code(), "not_found");
    // Indistinguishable from an id that never existed.
    let made_up = app
        .delete(
            "/api/v1/sessions/00000000-0000-4000-8000-000000000000",
            &mallory.access_token,
        )
        .await;
    assert_eq!(made_up.status, attempt.status);
    assert_eq!(made_up.body, attempt.body);
    assert_eq!(
        app.get("/api/v1/sessions", &alice.access_token)
            .await
            .status,
        StatusCode::OK
    );
}

async fn ending_all_others_keeps_only_this_device(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let a = app.login(&email, IPHONE).await;
    let b = app.login(&email, WINDOWS).await;
    let c = app.login(&email, ANDROID).await;

    let reply = app.delete("/api/v1/sessions", &a.access_token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["revoked"], 2);
    for other in [&b, &c] {
        let refused = app.get("/api/v1/sessions", &other.access_token).await;
        assert_eq!(refused.code(), "session_revoked");
        assert_eq!(refused.body["reason"], "user_logout_all");
    }
    let list = app.get("/api/v1/sessions", &a.access_token).await;
    assert_eq!(ids(&list.body), vec![a.session_id.as_str()]);
}

async fn refresh_rotates_and_a_racing_tab_is_not_treated_as_theft(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let first = app.login(&email, IPHONE).await;
    let second = app.refreshed(&first).await;
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.session_id, first.session_id);
    assert_eq!(second.body["token_type"], "Bearer");
    assert_eq!(second.body["refresh_threshold"], 300);
    assert_eq!(
        app.get("/api/v1/sessions/current", &second.access_token)
            .await
            .status,
        StatusCode::OK
    );

    // Within the grace window the old token gets a plain 401 and nothing is revoked.
    let stale = app.refresh(&first.refresh_token).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stale.code(), "refresh_token_rotated");
    let third = app.refreshed(&second).await;
    assert_eq!(
        app.get("/api/v1/sessions", &third.access_token)
            .await
            .status,
        StatusCode::OK
    );
}

async fn reusing_a_rotated_refresh_token_after_the_grace_window_revokes_the_session(
    backend: Backend,
) {
    let app = TestApp::spawn_backend(backend, |s| s.sessions.refresh_grace = 0).await;
    let email = app.create_user(Role::Guest).await;
    let first = app.login(&email, IPHONE).await;
    let second = app.refreshed(&first).await;

    let theft = app.refresh(&first.refresh_token).await;
    assert_eq!(theft.status, StatusCode::UNAUTHORIZED);
    assert_eq!(theft.code(), "session_revoked");
    assert_eq!(theft.body["reason"], "refresh_token_reuse");

    // The legitimate holder is out too: the session is gone for both.
    let refused = app.get("/api/v1/sessions", &second.access_token).await;
    assert_eq!(refused.code(), "session_revoked");
    assert_eq!(refused.body["reason"], "refresh_token_reuse");
    assert_eq!(
        app.refresh(&second.refresh_token).await.code(),
        "session_revoked"
    );
}

async fn parallel_refreshes_with_one_token_succeed_exactly_once(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    let replies = join_all((0..20).map(|_| app.refresh(&device.refresh_token))).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(ok, 1);
    assert!(
        replies
            .iter()
            .all(|r| r.status == StatusCode::OK || r.code() == "refresh_token_rotated")
    );
}

async fn the_least_recently_active_session_is_evicted_at_the_maximum(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |s| s.roles.guest.max_sessions = 2).await;
    let email = app.create_user(Role::Guest).await;
    let oldest = app.login(&email, IPHONE).await;
    let middle = app.login(&email, WINDOWS).await;
    let newest = app.login(&email, ANDROID).await;

    let refused = app.get("/api/v1/sessions", &oldest.access_token).await;
    assert_eq!(refused.code(), "session_revoked");
    assert_eq!(refused.body["reason"], "max_sessions_exceeded");
    let list = app.get("/api/v1/sessions", &newest.access_token).await;
    assert_eq!(
        ids(&list.body),
        vec![newest.session_id.as_str(), middle.session_id.as_str()]
    );
    let history = app
        .get("/api/v1/sessions/history", &newest.access_token)
        .await;
    assert_eq!(history.body[0]["id"], oldest.session_id.as_str());
    assert_eq!(history.body[0]["reason"], "max_sessions_exceeded");
}

async fn a_role_set_to_reject_refuses_sign_in_at_the_maximum(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |s| {
        s.roles.vendor_admin.max_sessions = 2;
        s.roles.vendor_admin.on_limit = OnLimit::Reject;
    })
    .await;
    let email = app.create_user(Role::VendorAdmin).await;
    let first = app.login(&email, IPHONE).await;
    app.login(&email, WINDOWS).await;
    let refused = app.try_login(&email, PASSWORD, ANDROID).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "max_sessions_reached");
    assert_eq!(
        app.get("/api/v1/sessions", &first.access_token)
            .await
            .status,
        StatusCode::OK
    );
}

async fn fifty_parallel_sign_ins_of_an_employee_leave_exactly_two_sessions(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::HotelEmployee).await;
    let replies = join_all((0..50).map(|_| app.try_login(&email, PASSWORD, ANDROID))).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    let last = app.login(&email, IPHONE).await;
    let list = app.get("/api/v1/sessions", &last.access_token).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(2));
}

async fn logout_ends_the_session_and_history_tells_why(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let laptop = app.login(&email, WINDOWS).await;
    let reply = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&phone.access_token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let refused = app
        .get("/api/v1/sessions/current", &phone.access_token)
        .await;
    assert_eq!(refused.code(), "session_revoked");
    assert_eq!(refused.body["reason"], "user_logout");
    assert_eq!(
        app.refresh(&phone.refresh_token).await.code(),
        "session_revoked"
    );

    let history = app
        .get("/api/v1/sessions/history", &laptop.access_token)
        .await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(ids(&history.body), vec![phone.session_id.as_str()]);
    assert_eq!(history.body[0]["reason"], "user_logout");
    assert!(history.body[0]["ended_at"].is_string());

    // Ending its own current session from the list is signing itself out too.
    let own = app
        .delete(
            &format!("/api/v1/sessions/{}", laptop.session_id),
            &laptop.access_token,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let refused = app
        .get("/api/v1/sessions/current", &laptop.access_token)
        .await;
    assert_eq!(refused.body["reason"], "user_logout");
}

async fn whoami_returns_the_session_and_the_user(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::HotelEmployee).await;
    let device = app.login(&email, IPHONE).await;
    let me = app
        .get("/api/v1/sessions/current", &device.access_token)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["role"], "hotel_employee");
    assert_eq!(me.body["session"]["id"], device.session_id.as_str());
    assert_eq!(me.body["session"]["is_current"], true);
    assert_eq!(me.body["session"]["device_info"], "iPhone");
    // The same User-Agent as the list shows, on every backend and from the caches too.
    for _ in 0..2 {
        let me = app
            .get("/api/v1/sessions/current", &device.access_token)
            .await;
        assert_eq!(me.body["session"]["user_agent"], IPHONE);
    }
    let list = app.get("/api/v1/sessions", &device.access_token).await;
    assert_eq!(list.body[0]["user_agent"], IPHONE);

    let profile = app.get("/api/v1/users/me", &device.access_token).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.body["id"], me.body["user"]["id"]);
    assert_eq!(profile.body["email"], email.as_str());
    assert_eq!(profile.body["role"], "hotel_employee");
    assert!(profile.body.get("password_hash").is_none());
}

async fn registration_and_sign_in_answer_clearly_and_alike_for_unknown_accounts(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = TestApp::email();
    let register = |body: Value| app.call(Method::POST, "/api/v1/auth/register", None, Some(body));
    let created = register(json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["role"], "guest");
    let taken = register(json!({ "email": email.to_uppercase(), "password": PASSWORD })).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.code(), "email_taken");
    let bad_email = register(json!({ "email": "nope", "password": PASSWORD })).await;
    assert_eq!(bad_email.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_email.code(), "validation_failed");
    let short = register(json!({ "email": TestApp::email(), "password": "short" })).await;
    assert_eq!(short.code(), "validation_failed");

    let wrong_password = app.try_login(&email, "wrong password", IPHONE).await;
    let unknown = app
        .try_login(&TestApp::email(), "wrong password", IPHONE)
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.code(), "invalid_credentials");
    assert_eq!(wrong_password.body, unknown.body);
    assert_eq!(
        app.login(&email, IPHONE).await.body["session"]["device_info"],
        "iPhone"
    );
}

async fn a_password_change_signs_out_every_other_device(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let laptop = app.login(&email, WINDOWS).await;
    let change = |current: &str, new: &str| {
        app.call(
            Method::POST,
            "/api/v1/users/me/password",
            Some(&phone.access_token),
            Some(json!({ "current_password": current, "new_password": new })),
        )
    };
    let wrong = change("not it", "a brand new password").await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.code(), "wrong_password");
    assert_eq!(
        app.get("/api/v1/sessions", &laptop.access_token)
            .await
            .status,
        StatusCode::OK
    );

    let changed = change(PASSWORD, "a brand new password").await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT);
    let refused = app.get("/api/v1/sessions", &laptop.access_token).await;
    assert_eq!(refused.code(), "session_revoked");
    assert_eq!(refused.body["reason"], "password_changed");
    let list = app.get("/api/v1/sessions", &phone.access_token).await;
    assert_eq!(ids(&list.body), vec![phone.session_id.as_str()]);
    assert_eq!(
        app.try_login(&email, PASSWORD, IPHONE).await.code(),
        "invalid_credentials"
    );
    assert_eq!(
        app.try_login(&email, "a brand new password", IPHONE)
            .await
            .status,
        StatusCode::OK
    );
}

async fn expired_access_tokens_and_sessions_are_refused_with_their_codes(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |s| {
        s.jwt.leeway = 0;
        s.roles.guest.timeout = 1;
        s.roles.guest.absolute_lifetime = 1;
    })
    .await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    assert_eq!(device.body["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let expired = app.get("/api/v1/sessions", &device.access_token).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.code(), "token_expired");
    let refresh = app.refresh(&device.refresh_token).await;
    assert_eq!(refresh.code(), "session_expired");
    assert_eq!(refresh.body["reason"], "expired");
}

async fn hostile_requests_get_4xx_problems_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let email = app.create_user(Role::Guest).await;
    let device = app.login(&email, IPHONE).await;
    let login = || app.request(Method::POST, "/api/v1/auth/login");

    let cases = [
        (
            "malformed JSON",
            read(
                login()
                    .header("content-type", "application/json")
                    .body("{\"email\":"),
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong JSON shape",
            read(login().json(&json!({ "email": 5 }))).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong content type",
            read(login().header("content-type", "text/plain").body("hi")).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "oversized body",
            read(login().json(&json!({ "email": "a".repeat(10_000), "password": "x" }))).await,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "non-UUID id",
            app.delete("/api/v1/sessions/not-a-uuid", &device.access_token)
                .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown route",
            app.get("/api/v1/nothing-here", &device.access_token).await,
            StatusCode::NOT_FOUND,
        ),
        (
            "no token",
            app.call(Method::GET, "/api/v1/sessions", None, None).await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "garbage token",
            app.get("/api/v1/sessions", "garbage").await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "garbage refresh token",
            app.refresh("x.y").await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "over-long password",
            app.try_login(&email, &"p".repeat(2000), IPHONE).await,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, reply, status) in cases {
        assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
        assert_eq!(reply.content_type, "application/problem+json", "{what}");
        assert_eq!(reply.body["status"], status.as_u16(), "{what}");
        assert!(reply.body["code"].is_string(), "{what}");
        assert!(reply.body["type"].is_string(), "{what}");
    }
    // A token in the query string is not a credential.
    let query = read(app.request(
        Method::GET,
        &format!("/api/v1/sessions?access_token={}", device.access_token),
    ))
    .await;
    assert_eq!(query.code(), "unauthenticated");
    // Nothing above changed the account.
    let list = app.get("/api/v1/sessions", &device.access_token).await;
    assert_eq!(ids(&list.body), vec![device.session_id.as_str()]);
}

async fn forwarding_headers_count_only_from_trusted_proxies(backend: Backend) {
    let untrusting = TestApp::spawn_backend(backend, |_| {}).await;
    let email = untrusting.create_user(Role::Guest).await;
    let spoofed = read(
        untrusting
            .request(Method::POST, "/api/v1/auth/login")
            .header("x-forwarded-for", "198.51.100.1")
            .json(&json!({ "email": email, "password": PASSWORD })),
    )
    .await;
    assert_eq!(spoofed.body["session"]["ip_address"], "127.0.0.1");

    let behind_proxy = TestApp::spawn_backend(backend, |s| {
        s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]
    })
    .await;
    let email = behind_proxy.create_user(Role::Guest).await;
    let forwarded = read(
        behind_proxy
            .request(Method::POST, "/api/v1/auth/login")
            .header("x-forwarded-for", "198.51.100.1")
            .json(&json!({ "email": email, "password": PASSWORD })),
    )
    .await;
    assert_eq!(forwarded.body["session"]["ip_address"], "198.51.100.1");
}

async fn the_bootstrap_admin_exists_at_start_up(backend: Backend) {
    let email = TestApp::email();
    let app = TestApp::spawn_backend(backend, |s| {
        s.admin_email = Some(email.clone());
        s.admin_password = Some(PASSWORD.into());
    })
    .await;
    let admin = app.login(&email, WINDOWS).await;
    let me = app
        .get("/api/v1/sessions/current", &admin.access_token)
        .await;
    assert_eq!(me.body["user"]["role"], "system_admin");
}

async fn liveness_answers(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let reply = read(app.request(Method::GET, "/health/live")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// A request marked `X-Sessiond-Background: 1` (the web UI's periodic check) is validated
/// like any other but is no activity: an open, forgotten tab does not keep its session the
/// most recently active one (issue 18). A request the user makes still is.
async fn background_checks_are_not_activity(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |settings| {
        settings.sessions.activity_interval = 1;
        settings.sessions.activity_flush_ms = 50;
    })
    .await;
    let email = app.create_user(Role::Guest).await;
    let tab = app.login(&email, WINDOWS).await;
    let phone = app.login(&email, IPHONE).await;
    let last_activity = |list: &Value, id: &str| {
        list.as_array()
            .and_then(|sessions| sessions.iter().find(|s| s["id"] == id))
            .map(|s| s["last_activity"].clone())
            .expect("the session is listed")
    };
    let signed_in = app.get("/api/v1/sessions", &phone.access_token).await.body;
    let before = last_activity(&signed_in, &tab.session_id);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let check = read(
        app.request(Method::GET, "/api/v1/sessions/current")
            .bearer_auth(&tab.access_token)
            .header("x-sessiond-background", "1"),
    )
    .await;
    assert_eq!(check.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after_check = app.get("/api/v1/sessions", &phone.access_token).await.body;
    assert_eq!(last_activity(&after_check, &tab.session_id), before);

    let used = app.get("/api/v1/sessions/current", &tab.access_token).await;
    assert_eq!(used.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after_use = app.get("/api/v1/sessions", &phone.access_token).await.body;
    assert_ne!(last_activity(&after_use, &tab.session_id), before);
}

sessiond_tests::on_every_backend!(
    two_devices_see_each_other_and_one_signs_the_other_out,
    another_users_session_is_not_found,
    ending_all_others_keeps_only_this_device,
    refresh_rotates_and_a_racing_tab_is_not_treated_as_theft,
    reusing_a_rotated_refresh_token_after_the_grace_window_revokes_the_session,
    parallel_refreshes_with_one_token_succeed_exactly_once,
    the_least_recently_active_session_is_evicted_at_the_maximum,
    a_role_set_to_reject_refuses_sign_in_at_the_maximum,
    fifty_parallel_sign_ins_of_an_employee_leave_exactly_two_sessions,
    logout_ends_the_session_and_history_tells_why,
    whoami_returns_the_session_and_the_user,
    registration_and_sign_in_answer_clearly_and_alike_for_unknown_accounts,
    a_password_change_signs_out_every_other_device,
    expired_access_tokens_and_sessions_are_refused_with_their_codes,
    hostile_requests_get_4xx_problems_and_change_nothing,
    forwarding_headers_count_only_from_trusted_proxies,
    the_bootstrap_admin_exists_at_start_up,
    liveness_answers,
    background_checks_are_not_activity,
);
