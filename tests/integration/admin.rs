//! Security events and the admin API (SPEC §4 `/admin`, issue 5), end to end.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sessiond_domain::model::Role;
use sessiond_tests::app::{ANDROID, Backend, IPHONE, PASSWORD, TestApp, WINDOWS};

const SOME_ID: &str = "00000000-0000-4000-8000-000000000000";

async fn every_admin_route_is_for_system_admins_only(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let routes = [
        (Method::POST, "/api/v1/admin/users".to_owned()),
        (Method::PATCH, format!("/api/v1/admin/users/{SOME_ID}")),
        (
            Method::GET,
            format!("/api/v1/admin/users/{SOME_ID}/sessions"),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{SOME_ID}/sessions"),
        ),
        (Method::DELETE, format!("/api/v1/admin/sessions/{SOME_ID}")),
    ];
    let body = json!({ "email": TestApp::email(), "password": PASSWORD, "role": "guest" });
    for role in [Role::Guest, Role::HotelEmployee, Role::VendorAdmin] {
        let caller = app.login(&app.create_user(role).await, IPHONE).await;
        for (method, path) in &routes {
            let body = (*method == Method::POST || *method == Method::PATCH).then(|| body.clone());
            let reply = app
                .call(method.clone(), path, Some(&caller.access_token), body)
                .await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{role} {method} {path}"
            );
            assert_eq!(reply.code(), "forbidden");
        }
    }
    for (method, path) in &routes {
        let reply = app.call(method.clone(), path, None, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

async fn an_admin_creates_users_of_any_role(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = app
        .login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await;
    let email = TestApp::email();
    let create = |role: &str, email: &str| {
        app.call(
            Method::POST,
            "/api/v1/admin/users",
            Some(&admin.access_token),
            Some(json!({ "email": email, "password": PASSWORD, "role": role, "hotel_id": 12 })),
        )
    };
    let created = create("hotel_employee", &email).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["role"], "hotel_employee");
    assert_eq!(created.body["hotel_id"], 12);
    assert_eq!(create("guest", &email).await.code(), "email_taken");
    assert_eq!(
        create("emperor", &TestApp::email()).await.code(),
        "validation_failed"
    );
    let employee = app.login(&email, IPHONE).await;
    let me = app
        .get("/api/v1/sessions/current", &employee.access_token)
        .await;
    assert_eq!(me.body["user"]["role"], "hotel_employee");
}

async fn a_role_change_ends_every_session_and_the_next_sign_in_carries_the_new_role(
    backend: Backend,
) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = app
        .login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let tablet = app.login(&email, ANDROID).await;
    let user_id = app.user_id(&phone).await;

    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(&admin.access_token),
            Some(json!({ "role": "vendor_admin" })),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["role"], "vendor_admin");
    for device in [&phone, &tablet] {
        let refused = app.get("/api/v1/sessions", &device.access_token).await;
        assert_eq!(refused.code(), "session_revoked");
        assert_eq!(refused.body["reason"], "role_changed");
        assert_eq!(
            app.refresh(&device.refresh_token).await.body["reason"],
            "role_changed"
        );
    }
    let again = app.login(&email, IPHONE).await;
    let me = app
        .get("/api/v1/sessions/current", &again.access_token)
        .await;
    assert_eq!(me.body["user"]["role"], "vendor_admin");
}

async fn deactivation_ends_every_session_and_blocks_sign_in_until_reactivated(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = app
        .login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await;
    let email = app.create_user(Role::HotelEmployee).await;
    let device = app.login(&email, IPHONE).await;
    let user_id = app.user_id(&device).await;
    let set_active = async |active: bool| {
        app.call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(&admin.access_token),
            Some(json!({ "is_active": active })),
        )
        .await
    };
    assert_eq!(set_active(false).await.body["is_active"], false);
    let refused = app.get("/api/v1/sessions", &device.access_token).await;
    assert_eq!(refused.body["reason"], "account_disabled");
    let blocked = app.try_login(&email, PASSWORD, IPHONE).await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN);
    assert_eq!(blocked.code(), "account_disabled");
    // A wrong password on a disabled account says nothing about the account.
    assert_eq!(
        app.try_login(&email, "wrong password", IPHONE).await.code(),
        "invalid_credentials"
    );
    assert_eq!(set_active(true).await.status, StatusCode::OK);
    app.login(&email, IPHONE).await;
}

async fn the_last_active_admin_cannot_be_disabled_or_demoted(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let first = app
        .login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await;
    let first_id = app.user_id(&first).await;
    let patch = async |token: &str, id: &str, body| {
        app.call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            Some(token),
            Some(body),
        )
        .await
    };
    for body in [json!({ "is_active": false }), json!({ "role": "guest" })] {
        let refused = patch(&first.access_token, &first_id, body).await;
        assert_eq!(refused.status, StatusCode::CONFLICT);
        assert_eq!(refused.code(), "last_admin");
    }
    // With a second admin, the first may step down; its own session ends with it.
    let second = app
        .login(&app.create_user(Role::SystemAdmin).await, IPHONE)
        .await;
    let demoted = patch(&second.access_token, &first_id, json!({ "role": "guest" })).await;
    assert_eq!(demoted.status, StatusCode::OK);
    let stale = app
        .get(
            &format!("/api/v1/admin/users/{first_id}/sessions"),
            &first.access_token,
        )
        .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stale.body["reason"], "role_changed");
}

async fn an_admin_lists_and_revokes_anyones_sessions(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = app
        .login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let tablet = app.login(&email, ANDROID).await;
    let user_id = app.user_id(&phone).await;

    let list = app
        .get(
            &format!("/api/v1/admin/users/{user_id}/sessions"),
            &admin.access_token,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().map(Vec::len), Some(2));

    let one = app
        .delete(
            &format!("/api/v1/admin/sessions/{}", phone.session_id),
            &admin.access_token,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    let refused = app.get("/api/v1/sessions", &phone.access_token).await;
    assert_eq!(refused.body["reason"], "admin_revoked");
    let again = app
        .delete(
            &format!("/api/v1/admin/sessions/{}", phone.session_id),
            &admin.access_token,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let all = app
        .delete(
            &format!("/api/v1/admin/users/{user_id}/sessions"),
            &admin.access_token,
        )
        .await;
    assert_eq!(all.body["revoked"], 1);
    assert_eq!(
        app.get("/api/v1/sessions", &tablet.access_token).await.body["reason"],
        "admin_revoked"
    );
    let unknown = app
        .get(
            &format!("/api/v1/admin/users/{SOME_ID}/sessions"),
            &admin.access_token,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad = app
        .delete("/api/v1/admin/sessions/not-a-uuid", &admin.access_token)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn repeated_failures_throttle_sign_in_even_with_the_right_password(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |s| {
        s.sessions.max_failed_sign_ins_per_account = 3;
        s.sessions.throttle_window = 600;
    })
    .await;
    let email = app.create_user(Role::Guest).await;
    for _ in 0..3 {
        assert_eq!(
            app.try_login(&email, "wrong password", IPHONE).await.code(),
            "invalid_credentials"
        );
    }
    let response = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another account from the same address is not affected by this account's limit.
    let other = app.create_user(Role::Guest).await;
    app.login(&other, IPHONE).await;
}

async fn one_address_trying_many_accounts_is_throttled(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |s| s.sessions.max_failed_sign_ins_per_ip = 4).await;
    for _ in 0..4 {
        let reply = app
            .try_login(&TestApp::email(), "wrong password", IPHONE)
            .await;
        assert_eq!(reply.code(), "invalid_credentials");
    }
    let email = app.create_user(Role::Guest).await;
    let refused = app.try_login(&email, PASSWORD, IPHONE).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
}

sessiond_tests::on_every_backend!(
    every_admin_route_is_for_system_admins_only,
    an_admin_creates_users_of_any_role,
    a_role_change_ends_every_session_and_the_next_sign_in_carries_the_new_role,
    deactivation_ends_every_session_and_blocks_sign_in_until_reactivated,
    the_last_active_admin_cannot_be_disabled_or_demoted,
    an_admin_lists_and_revokes_anyones_sessions,
    repeated_failures_throttle_sign_in_even_with_the_right_password,
    one_address_trying_many_accounts_is_throttled,
);
