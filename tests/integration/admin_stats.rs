//! The administrators' statistics (issue 19: `GET /admin/stats`), end to end.

use reqwest::StatusCode;
use serde_json::Value;
use sessiond_domain::model::{InvalidationReason, Role};
use sessiond_tests::app::{ANDROID, Backend, IPHONE, TestApp, WINDOWS};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A figure summed over the 24 hours: `field` of each hour, or `ended.<reason>`.
fn total(stats: &Value, field: &str) -> u64 {
    stats["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hour| match field.split_once('.') {
            Some((outer, inner)) => hour[outer][inner].as_u64().unwrap(),
            None => hour[field].as_u64().unwrap(),
        })
        .sum()
}

async fn stats(app: &TestApp, token: &str) -> Value {
    let reply = app.get("/api/v1/admin/stats", token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

async fn the_statistics_count_sign_ins_failures_and_every_kind_of_end(backend: Backend) {
    let app = TestApp::spawn_backend(backend, |_| {}).await;
    let admin = app
        .login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await;
    let before = stats(&app, &admin.access_token).await;

    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let tablet = app.login(&email, ANDROID).await;
    let employee = app
        .login(&app.create_user(Role::HotelEmployee).await, IPHONE)
        .await;
    for _ in 0..3 {
        let failed = app.try_login(&email, "wrong password", IPHONE).await;
        assert_eq!(failed.code(), "invalid_credentials");
    }
    let unknown = app
        .try_login(&TestApp::email(), "wrong password", IPHONE)
        .await;
    assert_eq!(unknown.code(), "invalid_credentials");
    let logout = app.logout(&phone).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let revoked = app
        .delete(
            &format!("/api/v1/admin/sessions/{}", tablet.session_id),
            &admin.access_token,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);

    let after = stats(&app, &admin.access_token).await;
    let grew = |field: &str| total(&after, field) - total(&before, field);
    assert_eq!(grew("sign_ins"), 3);
    assert_eq!(grew("failed_sign_ins"), 4);
    assert_eq!(grew("ended.user_logout"), 1);
    assert_eq!(grew("ended.admin_revoked"), 1);
    assert_eq!(grew("ended.expired"), 0);
    let live = &after["live_sessions_by_role"];
    assert_eq!(live["guest"], 0);
    assert_eq!(live["hotel_employee"], 1);
    assert_eq!(live["vendor_admin"], 0);
    assert_eq!(live["system_admin"], 1);
    assert!(!employee.access_token.is_empty());

    // The shape: 24 whole hours, oldest first, the last one the current hour; every
    // reason in each.
    let generated =
        OffsetDateTime::parse(after["generated_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let hours: Vec<OffsetDateTime> = after["hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hour| OffsetDateTime::parse(hour["hour"].as_str().unwrap(), &Rfc3339).unwrap())
        .collect();
    assert_eq!(hours.len(), 24);
    let last = *hours.last().unwrap();
    assert!(last <= generated && generated - last < time::Duration::HOUR);
    assert_eq!((last.minute(), last.second(), last.nanosecond()), (0, 0, 0));
    for pair in hours.windows(2) {
        assert_eq!(pair[1] - pair[0], time::Duration::HOUR);
    }
    for hour in after["hours"].as_array().unwrap() {
        let ended = hour["ended"].as_object().unwrap();
        assert_eq!(ended.len(), InvalidationReason::ALL.len());
        for reason in InvalidationReason::ALL {
            assert!(ended.contains_key(reason.as_str()), "{reason}");
        }
    }
}

async fn expired_sessions_count_until_cleanup_ends_them_in_the_hour_they_expired(backend: Backend) {
    // Guests' sessions last two seconds here.
    let app = TestApp::spawn_backend(backend, |s| {
        s.roles.guest.timeout = 2;
        s.roles.guest.absolute_lifetime = 2;
    })
    .await;
    let admin = app
        .login(&app.create_user(Role::SystemAdmin).await, WINDOWS)
        .await;
    app.login(&app.create_user(Role::Guest).await, IPHONE).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // Past its expiry but not yet ended: still counted (see the OpenAPI description).
    let waiting = stats(&app, &admin.access_token).await;
    assert_eq!(waiting["live_sessions_by_role"]["guest"], 1);
    assert_eq!(total(&waiting, "ended.expired"), 0);
    let report = app.cleanup.run_once().await.unwrap();
    assert_eq!(report.expired, 1);
    let cleaned = stats(&app, &admin.access_token).await;
    assert_eq!(cleaned["live_sessions_by_role"]["guest"], 0);
    assert_eq!(total(&cleaned, "ended.expired"), 1);
}

sessiond_tests::on_every_backend!(
    the_statistics_count_sign_ins_failures_and_every_kind_of_end,
    expired_sessions_count_until_cleanup_ends_them_in_the_hour_they_expired,
);
