//! Finding users and seeing one account (issue 19: `GET /admin/users`,
//! `GET /admin/users/{user_id}`), end to end, and who may.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond_domain::model::Role;
use sessiond_tests::app::{ANDROID, Backend, IPHONE, PASSWORD, TestApp, WINDOWS, read};
use uuid::Uuid;

const SOME_ID: &str = "00000000-0000-4000-8000-000000000000";

/// An admin's access token.
async fn admin_token(app: &TestApp) -> String {
    app.login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await
        .access_token
}

/// Creates a user through the API and returns its id.
async fn create(app: &TestApp, token: &str, email: &str, role: &str) -> String {
    let created = app
        .call(
            Method::POST,
            "/api/v1/admin/users",
            Some(token),
            Some(json!({ "email": email, "password": PASSWORD, "role": role })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// The e-mail addresses of a search's first page.
async fn emails(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let page = app
        .get(&format!("/api/v1/admin/users?{query}"), token)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{query}: {:?}", page.body);
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_search_account_view_and_statistics_are_for_system_admins_only(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = admin_token(&app).await;
    let target = app.login(&app.create_user(Role::Guest).await, IPHONE).await;
    let target_id = app.user_id(&target).await;
    let routes = [
        "/api/v1/admin/users".to_owned(),
        "/api/v1/admin/users?role=guest&page_size=1".to_owned(),
        format!("/api/v1/admin/users/{target_id}"),
        "/api/v1/admin/stats".to_owned(),
    ];
    for role in [Role::Guest, Role::HotelEmployee, Role::VendorAdmin] {
        let caller = app.login(&app.create_user(role).await, IPHONE).await;
        for path in &routes {
            let refused = app.get(path, &caller.access_token).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{role} {path}");
            assert_eq!(refused.code(), "forbidden");
        }
        // Refused before the query string is looked at.
        let garbage = app
            .get("/api/v1/admin/users?page_size=zero", &caller.access_token)
            .await;
        assert_eq!(garbage.status, StatusCode::FORBIDDEN);
    }
    for path in &routes {
        let anonymous = app.call(Method::GET, path, None, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(app.get(path, &admin).await.status, StatusCode::OK, "{path}");
    }
}

async fn the_search_filters_by_email_prefix_role_and_active_flag(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = admin_token(&app).await;
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let eve = format!("éve.{tag}@example.com");
    create(&app, &admin, &eve, "guest").await;
    let percent = format!("p%{tag}@example.com");
    create(&app, &admin, &percent, "guest").await;
    let plain = format!("px{tag}@example.com");
    let plain_id = create(&app, &admin, &plain, "vendor_admin").await;
    let other = format!("q{tag}@example.com");
    create(&app, &admin, &other, "vendor_admin").await;
    let deactivated = app
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{plain_id}"),
            Some(&admin),
            Some(json!({ "is_active": false })),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);

    // The prefix in any spelling of its normal form; `%` is a plain character.
    let upper = format!("ÉVE.{}", tag.to_uppercase());
    let encoded: String = url_encoded(&upper);
    assert_eq!(
        emails(&app, &admin, &format!("email={encoded}")).await,
        [eve.as_str()]
    );
    let decomposed = url_encoded(&format!("E\u{301}ve.{tag}"));
    assert_eq!(
        emails(&app, &admin, &format!("email={decomposed}")).await,
        [eve.as_str()]
    );
    assert_eq!(emails(&app, &admin, "email=p%25").await, [percent.as_str()]);
    assert!(emails(&app, &admin, "email=zz").await.is_empty());

    let vendors = emails(&app, &admin, "role=vendor_admin").await;
    assert_eq!(vendors, [other.clone(), plain.clone()]);
    assert_eq!(
        emails(&app, &admin, "is_active=false").await,
        [plain.as_str()]
    );
    assert_eq!(
        emails(&app, &admin, "role=vendor_admin&is_active=true").await,
        [other.as_str()]
    );
    assert_eq!(
        emails(&app, &admin, "email=p&role=guest&is_active=true").await,
        [percent.as_str()]
    );
    // Blank values filter nothing: the four users and the admin.
    assert_eq!(
        emails(&app, &admin, "email=&role=&is_active=&page_token=")
            .await
            .len(),
        5
    );
}

/// `text` percent-encoded for a query string.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The target of a `Link: <…>; rel="next"` header.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    let target = link.strip_prefix('<')?.split_once(">; rel=\"next\"")?.0;
    Some(target.to_owned())
}

async fn pages_walk_every_user_once_while_users_are_created(backend: Backend) {
    let app = Arc::new(TestApp::spawn_backend(backend, |_| {}).await);
    let admin = admin_token(&app).await;
    for _ in 0..23 {
        app.create_user(Role::Guest).await;
    }
    let everyone: HashSet<String> = {
        let page = app.get("/api/v1/admin/users?page_size=100", &admin).await;
        assert_eq!(page.body["next_page_token"], Value::Null);
        page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(everyone.len(), 24);

    // Another client keeps creating users during the walk.
    let stop = Arc::new(AtomicBool::new(false));
    let creating = tokio::spawn({
        let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
        async move {
            let mut created = 0;
            while !stop.load(Ordering::Relaxed) {
                app.create_user(Role::Guest).await;
                created += 1;
            }
            created
        }
    });
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/users?page_size=5".to_owned();
    let mut pages = 0;
    loop {
        let response = app
            .request(Method::GET, &path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let link = next_link(&response);
        let page = read_json(response).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        pages += 1;
        // The Link header and the token name the same next page.
        match (link, page["next_page_token"].as_str()) {
            (Some(link), Some(token)) => {
                assert!(link.starts_with("/api/v1/admin/users?"), "{link}");
                assert!(link.contains("page_size=5"), "{link}");
                assert!(link.ends_with(&format!("page_token={token}")), "{link}");
                path = link;
            }
            (None, None) => break,
            (link, token) => panic!("Link {link:?} but next_page_token {token:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let created = creating.await.unwrap();
    assert!(created > 0, "no user was created during the walk");
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a user appeared twice: {seen:?}"
    );
    let missed: Vec<&String> = everyone
        .iter()
        .filter(|id| !distinct.contains(id))
        .collect();
    assert!(missed.is_empty(), "skipped {missed:?}");
    assert!(pages >= 5, "{pages} pages");
}

async fn read_json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn bad_filters_page_sizes_and_tokens_are_refused_with_a_problem(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = admin_token(&app).await;
    for _ in 0..3 {
        app.create_user(Role::Guest).await;
    }
    let first = app.get("/api/v1/admin/users?page_size=1", &admin).await;
    let token = first.body["next_page_token"].as_str().unwrap().to_owned();
    for query in [
        "page_size=0".to_owned(),
        "page_size=101".to_owned(),
        "page_size=-1".to_owned(),
        "page_size=ten".to_owned(),
        "role=emperor".to_owned(),
        "is_active=yes".to_owned(),
        "page_token=garbage!".to_owned(),
        format!("page_token={}", &token[..token.len() - 2]),
        format!("page_token={token}AAAA"),
        "email=a%20b".to_owned(),
        "email=a%E2%80%8Bb".to_owned(),
        "role=guest&role=vendor_admin".to_owned(),
        "colour=blue".to_owned(),
    ] {
        let refused = read(
            app.request(Method::GET, &format!("/api/v1/admin/users?{query}"))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(refused.code(), "validation_failed", "{query}");
        assert_eq!(refused.content_type, "application/problem+json", "{query}");
    }
    let second = app
        .get(
            &format!("/api/v1/admin/users?page_size=1&page_token={token}"),
            &admin,
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_ne!(second.body["items"][0], first.body["items"][0]);
}

async fn the_account_view_shows_sessions_history_and_the_admin_who_ended_one(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin_email = app.create_user(Role::SystemAdmin).await;
    let admin = app.login(&admin_email, WINDOWS).await;
    let admin_id = app.user_id(&admin).await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let tablet = app.login(&email, ANDROID).await;
    let laptop = app.login(&email, WINDOWS).await;
    let user_id = app.user_id(&phone).await;

    let revoked = app
        .delete(
            &format!("/api/v1/admin/sessions/{}", phone.session_id),
            &admin.access_token,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let logout = app.logout(&tablet).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);

    let detail = app
        .get(
            &format!("/api/v1/admin/users/{user_id}"),
            &admin.access_token,
        )
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{:?}", detail.body);
    assert_eq!(detail.body["user"]["id"], user_id.as_str());
    assert_eq!(detail.body["user"]["email"], email.as_str());
    assert_eq!(detail.body["user"]["role"], "guest");
    let live = detail.body["live_sessions"].as_array().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["id"], laptop.session_id.as_str());
    assert_eq!(live[0]["is_current"], false);
    let history = detail.body["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    // Newest first: the sign-out came after the administrator's end.
    assert_eq!(history[0]["id"], tablet.session_id.as_str());
    assert_eq!(history[0]["reason"], "user_logout");
    assert_eq!(history[0]["ended_by"], "user");
    assert_eq!(history[0]["ended_by_admin"], Value::Null);
    assert_eq!(history[1]["id"], phone.session_id.as_str());
    assert_eq!(history[1]["reason"], "admin_revoked");
    assert_eq!(history[1]["ended_by"], "admin");
    assert_eq!(history[1]["ended_by_admin"]["id"], admin_id.as_str());
    assert_eq!(history[1]["ended_by_admin"]["email"], admin_email.as_str());
    assert!(history[1]["ended_at"].is_string());
    assert_eq!(history[1]["device_info"], "iPhone");

    let unknown = app
        .get(
            &format!("/api/v1/admin/users/{SOME_ID}"),
            &admin.access_token,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "not_found");
    let bad = app
        .get("/api/v1/admin/users/not-a-uuid", &admin.access_token)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

sessiond_tests::on_every_backend!(
    the_search_account_view_and_statistics_are_for_system_admins_only,
    the_search_filters_by_email_prefix_role_and_active_flag,
    pages_walk_every_user_once_while_users_are_created,
    bad_filters_page_sizes_and_tokens_are_refused_with_a_problem,
    the_account_view_shows_sessions_history_and_the_admin_who_ended_one,
);
