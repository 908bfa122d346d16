//! The web UI in a real headless Chromium (SPEC §6, issue 6): sign-in, the Active sessions
//! page, history, password change, and token refresh with short-lived access tokens.
//! Screenshots go to `<target dir>/ui-screenshots/`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sessiond_domain::model::Role;
use sessiond_tests::app::{ANDROID, IPHONE, PASSWORD, TestApp};
use sessiond_tests::browser::Browser;

const CURRENT_ROW: &str = "#session-list > li.session-current";
const ROWS: &str = "#session-list > li";

/// The id of this browser's session, read from the "Current" row.
async fn current_session_id(browser: &Browser) -> String {
    let id = browser
        .eval(&format!(
            "return document.querySelector('{CURRENT_ROW}')?.dataset.sessionId ?? '';"
        ))
        .await;
    let id = id.as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "the current row has a session id");
    id
}

#[tokio::test]
async fn sign_in_and_manage_the_other_devices() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(1280, |browser| async move {
        // Wrong credentials: a clear message from the problem details.
        browser.open(&format!("{}/", app.base_url)).await;
        browser.fill("#email", &email).await;
        browser.fill("#password", "not the password").await;
        browser.click("#sign-in-submit").await;
        browser
            .wait_for_text("#form-error", "Wrong e-mail or password")
            .await;

        // Sign in: the current session, alone, with its chip; nothing to sign out.
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        browser
            .wait_for_text(&format!("{CURRENT_ROW} .chip"), "Current")
            .await;
        assert_eq!(browser.count("#sign-out-others:disabled").await, 1);
        assert_eq!(browser.count(".session-sign-out").await, 0);

        // Another device signs in through the API: it shows up after a refresh, with its
        // icon and its own sign-out button.
        let phone = app.login(&email, IPHONE).await;
        browser.click("#refresh-sessions").await;
        browser.wait_for_count(ROWS, 2).await;
        let phone_row = format!("{ROWS}[data-session-id='{}']", phone.session_id);
        assert_eq!(browser.count(&format!("{phone_row} .icon-phone")).await, 1);
        browser
            .wait_for_text(&phone_row, "Last active just now")
            .await;
        assert_eq!(browser.count("#sign-out-others:disabled").await, 0);

        // A third one, then pictures of the page with three devices.
        let _android = app.login(&email, ANDROID).await;
        browser.click("#refresh-sessions").await;
        browser.wait_for_count(ROWS, 3).await;
        for width in [390, 1280] {
            let path = browser
                .screenshot(&format!("sessions-{width}"), width)
                .await;
            assert!(path.exists());
        }

        // Sign the phone out from the UI: its token is refused at once.
        browser
            .click(&format!("{phone_row} .session-sign-out"))
            .await;
        browser.wait_for_count(ROWS, 2).await;
        let refused = app.get("/api/v1/sessions", &phone.access_token).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused.code(), "session_revoked");

        // "Sign out all other devices" asks first; cancelling changes nothing.
        let tablet = app.login(&email, IPHONE).await;
        browser.click("#refresh-sessions").await;
        browser.wait_for_count(ROWS, 3).await;
        browser.click("#sign-out-others").await;
        browser
            .wait_for(
                "the confirm dialog",
                "return document.getElementById('confirm-dialog').open;",
            )
            .await;
        browser.click("#confirm-cancel").await;
        browser
            .wait_for(
                "the dialog to close",
                "return !document.getElementById('confirm-dialog').open;",
            )
            .await;
        assert_eq!(browser.count(ROWS).await, 3);
        browser.click("#sign-out-others").await;
        browser.click("#confirm-ok").await;
        browser.wait_for_count(ROWS, 1).await;
        assert_eq!(browser.count(CURRENT_ROW).await, 1);
        assert_eq!(browser.count("#sign-out-others:disabled").await, 1);
        let refused = app.get("/api/v1/sessions", &tablet.access_token).await;
        assert_eq!(refused.code(), "session_revoked");

        // History says why, in words.
        browser.click("[data-nav='history']").await;
        browser
            .wait_for_text(
                "#history-list",
                "Signed out: all other devices were signed out",
            )
            .await;
        browser.screenshot("history-390", 390).await;
        browser.screenshot("history-1280", 1280).await;
    })
    .await;
}

#[tokio::test]
async fn changing_the_password_leaves_only_this_device() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    Browser::run(1280, |browser| async move {
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        browser.click("#refresh-sessions").await;
        browser.wait_for_count(ROWS, 2).await;

        browser.click("[data-nav='password']").await;
        browser.fill("#current-password", PASSWORD).await;
        browser
            .fill("#new-password", "a brand new passphrase")
            .await;
        browser
            .fill("#new-password-again", "a brand new passphrase")
            .await;
        browser.click("#password-form button[type='submit']").await;
        browser.wait_for_count(ROWS, 1).await;
        assert_eq!(browser.count(CURRENT_ROW).await, 1);
        let refused = app.get("/api/v1/sessions", &phone.access_token).await;
        assert_eq!(refused.code(), "session_revoked");

        browser.click("[data-nav='history']").await;
        browser
            .wait_for_text(
                "#history-list .session-reason",
                "Signed out: password changed",
            )
            .await;
    })
    .await;
}

#[tokio::test]
async fn short_lived_access_tokens_are_refreshed_without_signing_in_again() {
    const TTL_SECS: u64 = 3;
    let app = TestApp::spawn_with(|settings| {
        settings.jwt.access_token_ttl = 3;
        settings.jwt.leeway = 0;
    })
    .await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(1280, |browser| async move {
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        let session = current_session_id(&browser).await;

        // A second tab of the same browser shares the session through the refresh cookie;
        // both keep working across several expiries, refreshing in turn.
        let first = browser.client.window().await.expect("a window");
        let second = browser
            .client
            .new_window(true)
            .await
            .expect("a new tab")
            .handle;
        browser
            .client
            .switch_to_window(second.clone())
            .await
            .expect("tab 2");
        browser.open(&format!("{}/#/sessions", app.base_url)).await;
        browser.wait_for_count(CURRENT_ROW, 1).await;
        assert_eq!(current_session_id(&browser).await, session);

        for round in 0..3 {
            // Let the access token of both tabs expire (the one fixed sleep: time must pass).
            tokio::time::sleep(Duration::from_secs(TTL_SECS) + Duration::from_millis(300)).await;
            let _device = app.login(&email, ANDROID).await;
            for tab in [&first, &second] {
                browser
                    .client
                    .switch_to_window(tab.clone())
                    .await
                    .expect("switch tab");
                browser.click("#refresh-sessions").await;
                browser.wait_for_count(ROWS, round + 2).await;
                assert_eq!(current_session_id(&browser).await, session);
            }
        }

        // A reload keeps the session too: the cookie gets the page a new access token.
        browser.client.refresh().await.expect("reload");
        browser.wait_for_count(CURRENT_ROW, 1).await;
        assert_eq!(current_session_id(&browser).await, session);
        assert_eq!(browser.count("#signed-out-notice").await, 0);

        // The session is ended from another device while the access token is stale: the
        // refresh fails, and the page signs out with the reason.
        let other = app.login(&email, IPHONE).await;
        let ended = app
            .delete(&format!("/api/v1/sessions/{session}"), &other.access_token)
            .await;
        assert_eq!(ended.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_secs(TTL_SECS) + Duration::from_millis(300)).await;
        browser.click("#refresh-sessions").await;
        browser
            .wait_for_text(
                "#signed-out-notice",
                "this device was signed out from another device",
            )
            .await;
    })
    .await;
}

#[tokio::test]
async fn a_session_ended_elsewhere_sends_the_page_to_sign_in_with_the_reason() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(390, |browser| async move {
        browser.sign_in(&app.base_url, &email, PASSWORD).await;

        // The password is changed on another device: this one is signed out.
        let laptop = app.login(&email, ANDROID).await;
        let changed = app
            .call(
                reqwest::Method::POST,
                "/api/v1/users/me/password",
                Some(&laptop.access_token),
                Some(
                    json!({ "current_password": PASSWORD, "new_password": "changed elsewhere 1" }),
                ),
            )
            .await;
        assert_eq!(changed.status, StatusCode::NO_CONTENT);

        browser.click("#refresh-sessions").await;
        browser
            .wait_for_text(
                "#signed-out-notice",
                "You were signed out because your password was changed.",
            )
            .await;
        browser
            .wait_for("the sign-in page", "return location.hash === '#/sign-in';")
            .await;
        browser.screenshot("signed-out-390", 390).await;

        // The cookie went with the session: a reload stays signed out.
        browser.client.refresh().await.expect("reload");
        browser
            .wait_for(
                "the sign-in form",
                "return !!document.getElementById('sign-in-form');",
            )
            .await;
        assert_eq!(browser.count("#topbar:not([hidden])").await, 0);
    })
    .await;
}
