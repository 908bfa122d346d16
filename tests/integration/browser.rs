//! The web UI in a real headless Chromium (SPEC §6, issues 6 and 18): sign-in, the Active
//! sessions page, history, password change, token refresh with short-lived access tokens,
//! background checks that notice a session ended elsewhere, focus, and the throttling
//! countdown; the Admin section in `admin`. Screenshots (390 and 1280 px, light and dark) go to
//! `<target dir>/ui-screenshots/`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sessiond_domain::model::Role;
use sessiond_tests::app::{ANDROID, IPHONE, PASSWORD, TestApp};
use sessiond_tests::browser::{Browser, wait_until};

/// The Admin section's tests (`browser/admin.rs`).
mod admin;

const CURRENT_ROW: &str = "#session-list > li.session-current";
const ROWS: &str = "#session-list > li";
/// The other-devices button, when offered (it is hidden while this is the only session).
const SIGN_OUT_OTHERS: &str = "#sign-out-others:not([hidden])";

/// Records the page's calls to `window.calls`: `{ url, background }`, where `background` is
/// the `X-Sessiond-Background` header sent (null when none).
const RECORD_CALLS: &str = "\
    window.calls = [];\
    const real = window.fetch;\
    window.fetch = (url, init = {}) => {\
      const headers = init.headers ?? {};\
      window.calls.push({ url: String(url), background: headers['X-Sessiond-Background'] ?? null });\
      return real(url, init);\
    };\
    return true;";

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

/// `email` signs in on another device (`user_agent`) and ends `session` from there.
async fn end_from_another_device(app: &TestApp, email: &str, user_agent: &str, session: &str) {
    let other = app.login(email, user_agent).await;
    let ended = app
        .delete(&format!("/api/v1/sessions/{session}"), &other.access_token)
        .await;
    assert_eq!(ended.status, StatusCode::OK);
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

        // Sign in: the current session, alone, with its chip (said once); nothing to sign
        // out, so no "Sign out all other devices" either.
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        browser
            .wait_for_text(&format!("{CURRENT_ROW} .chip"), "This device")
            .await;
        let says_this_device = browser
            .eval(&format!(
                "return document.querySelector('{CURRENT_ROW}').textContent\
                 .split('This device').length - 1;"
            ))
            .await;
        assert_eq!(says_this_device, 1, "the current row says it once");
        assert_eq!(browser.count(SIGN_OUT_OTHERS).await, 0);
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
        assert_eq!(
            browser
                .count(&format!("{phone_row} .session-facts time[datetime]"))
                .await,
            1
        );
        assert_eq!(browser.count(SIGN_OUT_OTHERS).await, 1);

        // A third one.
        let _android = app.login(&email, ANDROID).await;
        browser.click("#refresh-sessions").await;
        browser.wait_for_count(ROWS, 3).await;

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
        browser
            .wait_for(
                "the button to go",
                "return !!document.querySelector('#sign-out-others[hidden]');",
            )
            .await;
        // The button that had the focus went away: the focus did not fall to <body>.
        browser.wait_for_focus("page-title").await;
        let refused = app.get("/api/v1/sessions", &tablet.access_token).await;
        assert_eq!(refused.code(), "session_revoked");

        // History says why, in words, and when: a relative time and the date in a <time>.
        browser.click("[data-nav='history']").await;
        browser
            .wait_for_text(
                "#history-list",
                "Signed out: all other devices were signed out",
            )
            .await;
        browser
            .wait_for_text("#history-list .session-facts", "Ended just now")
            .await;
        let stamped = browser
            .eval(
                "return [...document.querySelectorAll('#history-list > li')].every(row => {\
                   const t = row.querySelector('.session-facts time[datetime]');\
                   return !!t && !Number.isNaN(Date.parse(t.dateTime)) && t.title.length > 0;\
                 });",
            )
            .await;
        assert_eq!(stamped, true, "every history row has its date and time");
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

        // The session is ended from another device: the page notices on its own (its next
        // check is refused, or the refresh it needs first) and signs out with the reason.
        end_from_another_device(&app, &email, IPHONE, &session).await;
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

        // Without a click: the page checks the session every few seconds while it is seen.
        browser
            .wait_for_text(
                "#signed-out-notice",
                "You were signed out because your password was changed.",
            )
            .await;
        browser
            .wait_for("the sign-in page", "return location.hash === '#/sign-in';")
            .await;
        browser.wait_for_focus("email").await;

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

#[tokio::test]
async fn the_open_pages_follow_other_devices_without_a_click() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(1280, |browser| async move {
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        let session = current_session_id(&browser).await;
        assert_eq!(browser.eval(RECORD_CALLS).await, true);

        // Another device signs in: the list shows it on its own, through background checks
        // that say so in a header; the user's own Refresh does not carry it.
        let phone = app.login(&email, IPHONE).await;
        browser.wait_for_count(ROWS, 2).await;
        let background = browser
            .eval(
                "return window.calls.filter(c => c.url.endsWith('/api/v1/sessions'))\
                 .every(c => c.background === '1');",
            )
            .await;
        assert_eq!(background, true, "the checks are marked as background");
        browser.eval("window.calls = []; return true;").await;
        browser.click("#refresh-sessions").await;
        browser
            .wait_for(
                "the user's reload",
                "return window.calls.some(c => c.url.endsWith('/api/v1/sessions') \
                 && c.background === null);",
            )
            .await;

        // The History page refreshes the same way: a session ended meanwhile shows up.
        browser.click("[data-nav='history']").await;
        browser.wait_for_count("#empty-state", 1).await;
        let ended = app
            .delete(
                &format!("/api/v1/sessions/{}", phone.session_id),
                &phone.access_token,
            )
            .await;
        assert_eq!(ended.status, StatusCode::OK);
        browser
            .wait_for_text("#history-list .session-reason", "Signed out")
            .await;

        // This session is ended from another device while the History page is open: the
        // page signs out with the reason, without any click.
        end_from_another_device(&app, &email, ANDROID, &session).await;
        browser
            .wait_for_text(
                "#signed-out-notice",
                "You were signed out because this device was signed out from another device.",
            )
            .await;
        assert_eq!(browser.count("#topbar:not([hidden])").await, 0);
        browser.wait_for_focus("email").await;
    })
    .await;
}

#[tokio::test]
async fn a_hidden_page_checks_nothing_and_checks_at_once_when_shown() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(1280, |browser| async move {
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        let session = current_session_id(&browser).await;
        assert_eq!(browser.eval(RECORD_CALLS).await, true);

        // The tab goes to the background (as the page sees it).
        browser
            .eval(
                "Object.defineProperty(document, 'visibilityState', \
                   { value: 'hidden', configurable: true });\
                 document.dispatchEvent(new Event('visibilitychange'));\
                 window.calls = [];\
                 return true;",
            )
            .await;
        end_from_another_device(&app, &email, IPHONE, &session).await;

        // Longer than the checks' period: a hidden page asks nothing, even on focus.
        tokio::time::sleep(Duration::from_secs(4)).await;
        browser
            .eval("window.dispatchEvent(new Event('focus')); return true;")
            .await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(browser.eval("return window.calls.length;").await, 0);
        assert_eq!(browser.count(CURRENT_ROW).await, 1);

        // Shown again: it checks at once and signs out with the reason.
        browser
            .eval(
                "delete document.visibilityState;\
                 document.dispatchEvent(new Event('visibilitychange'));\
                 return document.visibilityState;",
            )
            .await;
        browser
            .wait_for_text(
                "#signed-out-notice",
                "this device was signed out from another device",
            )
            .await;
        let first = browser.eval("return window.calls[0];").await;
        assert_eq!(
            first["background"], "1",
            "the first call after showing: {first}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_focus_goes_where_the_user_starts_and_never_falls_to_the_body() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(1280, |browser| async move {
        // A wrong current password is a 403.
        browser.expect_status(403);
        // Sign-in starts at the e-mail field.
        browser.open(&format!("{}/#/sign-in", app.base_url)).await;
        browser.wait_for_focus("email").await;

        // A failed sign-in (submitted with Enter) puts the focus back in the password field,
        // once the form is usable again, with the message shown.
        browser.fill("#email", &email).await;
        browser.fill("#password", "not the password").await;
        browser
            .client
            .find(fantoccini::Locator::Css("#password"))
            .await
            .expect("the password field")
            .send_keys("\u{E007}")
            .await
            .expect("Enter");
        browser
            .wait_for_text("#form-error", "Wrong e-mail or password")
            .await;
        browser.wait_for_focus("password").await;
        // ...and by a click on the button too.
        browser.click("#sign-in-submit").await;
        browser
            .wait_for(
                "the second answer",
                "return !document.getElementById('sign-in-form').hasAttribute('aria-busy');",
            )
            .await;
        browser.wait_for_focus("password").await;

        // Pages start at their heading, forms at their first field.
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        browser.wait_for_focus("page-title").await;
        browser.click("[data-nav='password']").await;
        browser.wait_for_focus("current-password").await;
        browser.click("[data-nav='history']").await;
        browser
            .wait_for_text("#page-title", "Session history")
            .await;
        browser.wait_for_focus("page-title").await;
        browser.click("[data-nav='sessions']").await;
        browser
            .wait_for_text("#page-title", "Active sessions")
            .await;
        browser.wait_for_focus("page-title").await;
        // Refresh keeps its focus while it works and after.
        browser.click("#refresh-sessions").await;
        browser
            .wait_for(
                "the reload",
                "return !document.getElementById('sessions-region').hasAttribute('aria-busy');",
            )
            .await;
        browser.wait_for_focus("refresh-sessions").await;

        // A wrong current password: back in that field.
        browser.click("[data-nav='password']").await;
        browser.wait_for_focus("current-password").await;
        browser.fill("#current-password", "not the password").await;
        browser
            .fill("#new-password", "a brand new passphrase")
            .await;
        browser
            .fill("#new-password-again", "a brand new passphrase")
            .await;
        browser.click("#password-form button[type='submit']").await;
        browser
            .wait_for_text("#form-error", "The current password is wrong")
            .await;
        browser.wait_for_focus("current-password").await;

        // Signing a device out removes its row and button: the focus goes to the heading.
        let phone = app.login(&email, IPHONE).await;
        browser.click("[data-nav='sessions']").await;
        browser.wait_for_count(ROWS, 2).await;
        browser
            .click(&format!(
                "{ROWS}[data-session-id='{}'] .session-sign-out",
                phone.session_id
            ))
            .await;
        browser.wait_for_count(ROWS, 1).await;
        browser.wait_for_focus("page-title").await;

        // A background reload keeps the focus where it is: on another device's button.
        let _tablet = app.login(&email, ANDROID).await;
        browser.wait_for_count(".session-sign-out", 1).await;
        browser
            .eval("document.querySelector('.session-sign-out').focus(); return true;")
            .await;
        let _laptop = app.login(&email, IPHONE).await;
        browser.wait_for_count(ROWS, 3).await;
        let on_a_button = browser
            .eval("return document.activeElement.classList.contains('session-sign-out');")
            .await;
        assert_eq!(on_a_button, true, "the focus stayed on a Sign out button");
    })
    .await;
}

#[tokio::test]
async fn the_throttling_message_counts_down_and_gives_the_form_back() {
    const WINDOW_SECS: u32 = 10;
    let app = TestApp::spawn_with(|settings| {
        settings.sessions.max_failed_sign_ins_per_account = 1;
        settings.sessions.throttle_window = WINDOW_SECS;
    })
    .await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(390, |browser| async move {
        browser.expect_status(429);
        browser.open(&format!("{}/#/sign-in", app.base_url)).await;
        browser.fill("#email", &email).await;

        // Fail until refused. Windows are aligned on the clock, so the wait left can be
        // short; then wait for the form to come back and be refused again in a fresh window.
        let mut seconds = 0;
        for _ in 0..8 {
            browser.fill("#password", "not the password").await;
            browser.click("#sign-in-submit").await;
            browser
                .wait_for(
                    "an answer",
                    "return !document.getElementById('sign-in-form').hasAttribute('aria-busy') \
                     && !document.getElementById('form-error').hidden;",
                )
                .await;
            let text = browser
                .eval("return document.getElementById('form-error').textContent;")
                .await;
            let text = text.as_str().unwrap_or_default().to_owned();
            if !text.contains("Too many attempts") {
                assert!(text.contains("Wrong e-mail or password"), "{text}");
                continue;
            }
            let left = browser
                .eval("return document.getElementById('retry-after').textContent;")
                .await;
            seconds = left
                .as_str()
                .and_then(|left| left.strip_suffix("\u{a0}s"))
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or_else(|| panic!("a number of seconds in {text:?}"));
            assert!((1..=WINDOW_SECS).contains(&seconds), "{text}");
            if seconds >= 3 {
                break;
            }
            wait_for_the_form_back(&browser).await;
        }
        assert!(seconds >= 3, "a 429 with a few seconds to wait");

        // Refused: the button is held back, the fields stay usable (the password has the
        // focus), and the seconds count down.
        assert_eq!(browser.count("#sign-in-submit:disabled").await, 1);
        browser.wait_for_focus("password").await;
        browser
            .wait_for_text(
                "#form-error",
                &format!("Try again in {}\u{a0}s.", seconds - 1),
            )
            .await;
        browser
            .wait_for_text(
                "#form-error",
                &format!("Try again in {}\u{a0}s.", seconds - 2),
            )
            .await;
        assert_eq!(browser.count("#sign-in-submit:disabled").await, 1);
        browser.screenshot("throttled-390-light", 390).await;

        // At 0 the form is back.
        wait_for_the_form_back(&browser).await;
        browser
            .wait_for_text("#form-error", "You can try again now.")
            .await;

        // Retry-After is a whole number of seconds, rounded down: give the window the rest
        // of its last second before the right password.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        browser.fill("#password", PASSWORD).await;
        browser.click("#sign-in-submit").await;
        browser.wait_for_count(CURRENT_ROW, 1).await;
    })
    .await;
}

/// Waits (longer than a throttle window) until the sign-in button is usable again.
async fn wait_for_the_form_back(browser: &Browser) {
    wait_until(
        "the sign-in button back",
        Duration::from_secs(30),
        || async {
            browser
                .eval("return document.getElementById('sign-in-submit')?.disabled === false;")
                .await
                == true
        },
    )
    .await;
}

#[tokio::test]
async fn screenshots_at_phone_and_desktop_widths_in_light_and_dark() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::Guest).await;
    Browser::run(1280, |browser| async move {
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        let session = current_session_id(&browser).await;
        let phone = app.login(&email, IPHONE).await;
        let android = app.login(&email, ANDROID).await;
        let tablet = app.login(&email, IPHONE).await;
        let ended = app
            .delete(
                &format!("/api/v1/sessions/{}", tablet.session_id),
                &phone.access_token,
            )
            .await;
        assert_eq!(ended.status, StatusCode::OK);

        browser.click("#refresh-sessions").await;
        browser.wait_for_count(ROWS, 3).await;
        browser.screenshots("sessions").await;

        browser.click("[data-nav='history']").await;
        browser.wait_for_count("#history-list > li", 1).await;
        browser.screenshots("history").await;

        browser.click("[data-nav='password']").await;
        browser.wait_for_focus("current-password").await;
        browser.screenshots("password").await;

        // Alone: no "Sign out all other devices".
        for device in [&android, &phone] {
            let ended = app
                .delete(
                    &format!("/api/v1/sessions/{}", device.session_id),
                    &device.access_token,
                )
                .await;
            assert_eq!(ended.status, StatusCode::OK);
        }
        browser.click("[data-nav='sessions']").await;
        browser.wait_for_count(ROWS, 1).await;
        assert_eq!(browser.count(SIGN_OUT_OTHERS).await, 0);
        browser.screenshots("alone").await;

        // Signed out from another device: the sign-in page says why.
        end_from_another_device(&app, &email, ANDROID, &session).await;
        browser.wait_for_count("#signed-out-notice", 1).await;
        browser.screenshots("signed-out").await;
    })
    .await;
}
