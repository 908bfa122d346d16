//! The web UI's Admin section (issue 19) in a real headless Chromium: search as you type
//! (a slow earlier answer never replaces a later one), a user's page and its actions (end a
//! session and see that device signed out, disable and enable, change the role), the
//! last-admin rule explained, no Admin section for other roles, the console by keyboard
//! ("Load more" included), and screenshots at 390 and 1280 px, light and dark.

use std::time::Duration;

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::json;
use sessiond_domain::model::Role;
use sessiond_tests::app::{ANDROID, IPHONE, PASSWORD, TestApp, WINDOWS};
use sessiond_tests::browser::Browser;

use super::{RECORD_CALLS, current_session_id};

const USER_ROWS: &str = "#user-table tbody > tr";
const LIVE_ROWS: &str = "#live-list > li";
const HISTORY_ROWS: &str = "#user-history-list > li";

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";
const TAB: &str = "\u{E004}";
const ARROW_DOWN: &str = "\u{E015}";

/// The start of `email` ("user-" and 8 hex digits of its UUID): no other test user has it.
fn prefix(email: &str) -> &str {
    &email[..13]
}

/// Types `keys` where the focus is, as a keyboard would.
async fn press(browser: &Browser, keys: &str) {
    browser
        .client
        .active_element()
        .await
        .expect("a focused element")
        .send_keys(keys)
        .await
        .unwrap_or_else(|e| panic!("cannot type {keys:?}: {e}"));
}

/// Goes to the Admin section through its link in the top bar.
async fn open_admin(browser: &Browser) {
    browser.click("[data-nav='admin']:not([hidden])").await;
    browser.wait_for_focus("user-search-email").await;
}

/// Waits for the confirm dialog asking `title`, and answers it.
async fn answer_dialog(browser: &Browser, title: &str, confirm: bool) {
    browser
        .wait_for(
            "the confirm dialog",
            "return document.getElementById('confirm-dialog').open;",
        )
        .await;
    browser.wait_for_text("#confirm-title", title).await;
    browser
        .click(if confirm {
            "#confirm-ok"
        } else {
            "#confirm-cancel"
        })
        .await;
    browser
        .wait_for(
            "the dialog to close",
            "return !document.getElementById('confirm-dialog').open;",
        )
        .await;
}

/// Opens the page of the user `email` by searching for it.
async fn open_user(browser: &Browser, email: &str) {
    browser.fill("#user-search-email", prefix(email)).await;
    browser.wait_for_count(USER_ROWS, 1).await;
    browser.wait_for_text(USER_ROWS, email).await;
    browser.click(&format!("{USER_ROWS} .user-link")).await;
    browser.wait_for_text("#page-title", email).await;
}

#[tokio::test]
async fn an_admin_finds_a_user_as_they_type_and_ends_a_session_that_device_sees_end() {
    let app = TestApp::spawn().await;
    let admin_email = app.create_user(Role::SystemAdmin).await;
    let email = app.create_user(Role::Guest).await;
    let other = app.create_user(Role::Guest).await;
    let app = &app;
    Browser::run(390, |device| async move {
        // The user is signed in in their own browser, and on a phone.
        device.sign_in(&app.base_url, &email, PASSWORD).await;
        let session = current_session_id(&device).await;
        let phone = app.login(&email, IPHONE).await;

        Browser::run(1280, |admin| async move {
            admin.sign_in(&app.base_url, &admin_email, PASSWORD).await;
            open_admin(&admin).await;
            // With nothing typed, every user is listed.
            admin
                .wait_for(
                    "every user",
                    &format!(
                        "return document.querySelectorAll({}).length >= 3;",
                        json!(USER_ROWS)
                    ),
                )
                .await;

            // The answer to an earlier search comes late (it ignores the abort, as a server
            // that already answered would): it must not replace the later one.
            let slow = json!(format!("email={}", prefix(&other)));
            admin
                .eval(&format!(
                    "window.slowAnswered = false;\
                     const real = window.fetch;\
                     window.fetch = (url, init = {{}}) => {{\
                       if (!String(url).includes({slow})) return real(url, init);\
                       window.slowAsked = true;\
                       return new Promise(r => setTimeout(r, 1500))\
                         .then(() => real(url, {{ ...init, signal: undefined }}))\
                         .finally(() => {{ window.slowAnswered = true; }});\
                     }};\
                     return true;"
                ))
                .await;
            admin.fill("#user-search-email", prefix(&other)).await;
            admin
                .wait_for(
                    "the slow search to be asked",
                    "return window.slowAsked === true;",
                )
                .await;
            admin.fill("#user-search-email", prefix(&email)).await;
            admin.wait_for_text(USER_ROWS, &email).await;
            admin
                .wait_for("the slow answer", "return window.slowAnswered === true;")
                .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            admin.wait_for_count(USER_ROWS, 1).await;
            admin.wait_for_text(USER_ROWS, &email).await;
            admin.wait_for_text("#user-search-count", "1 user.").await;
            // The address keeps the search.
            let hash = admin.eval("return location.hash;").await;
            assert_eq!(hash, json!(format!("#/admin?email={}", prefix(&email))));

            // The user's page: the account, and both live sessions with their devices.
            admin.click(&format!("{USER_ROWS} .user-link")).await;
            admin.wait_for_text("#page-title", &email).await;
            admin.wait_for_focus("page-title").await;
            admin.wait_for_count(LIVE_ROWS, 2).await;
            admin.wait_for_text("#account-facts", "Guest").await;
            admin.wait_for_text("#account-facts", "Active").await;
            let phone_row = format!("{LIVE_ROWS}[data-session-id='{}']", phone.session_id);
            assert_eq!(admin.count(&format!("{phone_row} .icon-phone")).await, 1);

            // End the browser's session, after a confirmation.
            let row = format!("{LIVE_ROWS}[data-session-id='{session}']");
            admin.click(&format!("{row} .session-end")).await;
            answer_dialog(&admin, "End this session?", true).await;
            admin.wait_for_count(LIVE_ROWS, 1).await;
            admin.wait_for_count(&row, 0).await;
            admin.wait_for_focus("live-title").await;

            // The history says why, and which administrator.
            let ended = format!("{HISTORY_ROWS}[data-session-id='{session}']");
            admin
                .wait_for_text(&ended, "Signed out by an administrator")
                .await;
            admin
                .wait_for_text(
                    &format!("{ended} .session-by"),
                    &format!("Ended by administrator {admin_email}"),
                )
                .await;
            // The phone was not touched.
            let still = app.get("/api/v1/sessions", &phone.access_token).await;
            assert_eq!(still.status, StatusCode::OK);
        })
        .await;

        // The user's browser notices by itself and says why.
        device
            .wait_for_text(
                "#signed-out-notice",
                "You were signed out because an administrator ended this session.",
            )
            .await;
    })
    .await;
}

#[tokio::test]
async fn disabling_asks_first_and_ends_every_session_enabling_and_a_new_role_follow() {
    let app = TestApp::spawn().await;
    let admin_email = app.create_user(Role::SystemAdmin).await;
    let email = app.create_user(Role::Guest).await;
    let phone = app.login(&email, IPHONE).await;
    let laptop = app.login(&email, WINDOWS).await;
    let user_id = app.user_id(&phone).await;
    Browser::run(1280, |admin| async move {
        admin.sign_in(&app.base_url, &admin_email, PASSWORD).await;
        admin
            .open(&format!("{}/#/admin/users/{user_id}", app.base_url))
            .await;
        admin.wait_for_text("#page-title", &email).await;
        admin.wait_for_count(LIVE_ROWS, 2).await;

        // Cancelled: nothing happens.
        admin.click("#toggle-active").await;
        answer_dialog(&admin, &format!("Disable {email}?"), false).await;
        assert_eq!(admin.count(LIVE_ROWS).await, 2);
        admin.wait_for_text("#account-facts", "Active").await;

        // Confirmed: disabled, every session ended, no new sign-in.
        admin.click("#toggle-active").await;
        answer_dialog(&admin, &format!("Disable {email}?"), true).await;
        admin.wait_for_text("#account-facts", "Disabled").await;
        admin.wait_for_count("#live-empty", 1).await;
        admin
            .wait_for_text("#toggle-active", "Enable account")
            .await;
        admin.wait_for_focus("toggle-active").await;
        for device in [&phone, &laptop] {
            let refused = app.get("/api/v1/sessions", &device.access_token).await;
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        }
        let refused = app.try_login(&email, PASSWORD, ANDROID).await;
        assert_eq!(refused.code(), "account_disabled");
        admin.wait_for_count(HISTORY_ROWS, 2).await;
        admin
            .wait_for_text(HISTORY_ROWS, "Signed out: account disabled")
            .await;
        admin
            .wait_for_text(
                &format!("{HISTORY_ROWS} .session-by"),
                &format!("Ended by administrator {admin_email}"),
            )
            .await;

        // Enabling destroys nothing: no question.
        admin.click("#toggle-active").await;
        admin.wait_for_text("#account-facts", "Active").await;
        admin
            .wait_for_text("#toggle-active", "Disable account")
            .await;
        assert_eq!(
            admin
                .eval("return document.getElementById('confirm-dialog').open;")
                .await,
            false
        );
        let tablet = app.login(&email, ANDROID).await;
        // The page follows the user's devices by itself.
        admin.wait_for_count(LIVE_ROWS, 1).await;

        // A new role ends the sessions too; the next sign-in carries it.
        admin
            .client
            .find(Locator::Css("#role-select"))
            .await
            .expect("the role select")
            .select_by_value("hotel_employee")
            .await
            .expect("a role is chosen");
        admin.click("#change-role").await;
        admin.wait_for_text("#confirm-text", "hotel employee").await;
        answer_dialog(&admin, "Change the role?", true).await;
        admin
            .wait_for_text("#account-facts", "Hotel employee")
            .await;
        admin.wait_for_count("#live-empty", 1).await;
        admin
            .wait_for_text(HISTORY_ROWS, "Signed out: account role changed")
            .await;
        let refused = app.get("/api/v1/sessions", &tablet.access_token).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        let again = app.login(&email, ANDROID).await;
        let me = app
            .get("/api/v1/sessions/current", &again.access_token)
            .await;
        assert_eq!(me.body["user"]["role"], "hotel_employee");
    })
    .await;
}

#[tokio::test]
async fn the_last_admin_is_neither_disabled_nor_demoted_and_the_page_says_why() {
    let app = TestApp::spawn().await;
    let admin_email = app.create_user(Role::SystemAdmin).await;
    Browser::run(390, |admin| async move {
        admin.expect_status(409);
        admin.sign_in(&app.base_url, &admin_email, PASSWORD).await;
        open_admin(&admin).await;
        open_user(&admin, &admin_email).await;
        admin
            .wait_for_text(&format!("{LIVE_ROWS} .chip"), "This device")
            .await;

        // Disable: confirmed, refused, explained.
        admin.click("#toggle-active").await;
        answer_dialog(&admin, &format!("Disable {admin_email}?"), true).await;
        admin
            .wait_for_text(
                "#account-error",
                &format!("{admin_email} is the last active system administrator"),
            )
            .await;
        admin
            .wait_for_text(
                "#account-error",
                "Make another account a system administrator first.",
            )
            .await;
        assert_eq!(
            admin.count("#account-error[data-code='last_admin']").await,
            1
        );
        admin.wait_for_text("#account-facts", "Active").await;
        admin.screenshot("admin-last-admin-390-light", 390).await;

        // Demote: the same; the select shows the role the account still has.
        admin
            .client
            .find(Locator::Css("#role-select"))
            .await
            .expect("the role select")
            .select_by_value("guest")
            .await
            .expect("a role is chosen");
        admin
            .eval("document.getElementById('account-error').textContent = ''; return true;")
            .await;
        admin.click("#change-role").await;
        answer_dialog(&admin, "Change the role?", true).await;
        admin
            .wait_for_text("#account-error", "is the last active system administrator")
            .await;
        assert_eq!(
            admin
                .eval("return document.getElementById('role-select').value;")
                .await,
            "system_admin"
        );
        admin
            .wait_for_text("#account-facts", "System administrator")
            .await;
        // Still signed in, still an administrator.
        admin.wait_for_count(LIVE_ROWS, 1).await;
        assert_eq!(admin.count("#signed-out-notice").await, 0);
    })
    .await;
}

#[tokio::test]
async fn a_user_who_is_not_a_system_admin_sees_no_admin_section() {
    let app = TestApp::spawn().await;
    let email = app.create_user(Role::VendorAdmin).await;
    Browser::run(390, |browser| async move {
        browser.sign_in(&app.base_url, &email, PASSWORD).await;
        assert_eq!(browser.count("[data-nav='admin']:not([hidden])").await, 0);
        assert_eq!(browser.count("[data-nav='sessions']").await, 1);

        // Typed in by hand, the address leads to an explanation, and no admin call is made.
        assert_eq!(browser.eval(RECORD_CALLS).await, true);
        browser
            .eval("location.hash = '#/admin?email=user'; return true;")
            .await;
        browser
            .wait_for_text(
                "#not-admin",
                "The Admin section is for system administrators.",
            )
            .await;
        browser.wait_for_focus("page-title").await;
        for hash in [
            "#/admin/overview",
            "#/admin/users/00000000-0000-4000-8000-000000000000",
        ] {
            browser
                .eval(&format!("location.hash = {}; return true;", json!(hash)))
                .await;
            browser
                .wait_for(
                    "the explanation",
                    &format!(
                        "return location.hash === {} && !!document.getElementById('not-admin');",
                        json!(hash)
                    ),
                )
                .await;
        }
        let asked = browser
            .eval("return window.calls.filter(c => c.url.includes('/admin')).length;")
            .await;
        assert_eq!(asked, 0);
    })
    .await;
}

#[tokio::test]
async fn the_console_works_by_keyboard_alone() {
    let app = TestApp::spawn().await;
    let admin_email = app.create_user(Role::SystemAdmin).await;
    let email = app.create_user(Role::HotelEmployee).await;
    let phone = app.login(&email, IPHONE).await;
    let laptop = app.login(&email, WINDOWS).await;
    // More users than a page holds (20).
    for _ in 0..21 {
        app.create_user(Role::Guest).await;
    }
    Browser::run(1280, |admin| async move {
        admin.sign_in(&app.base_url, &admin_email, PASSWORD).await;
        admin.open(&format!("{}/#/admin", app.base_url)).await;
        admin.wait_for_focus("user-search-email").await;

        // "Load more" brings the next page and the focus goes to its first user.
        admin
            .wait_for_text("#user-search-count", "20 users shown; there are more.")
            .await;
        admin
            .eval("document.getElementById('load-more').focus(); return true;")
            .await;
        press(&admin, ENTER).await;
        admin.wait_for_text("#user-search-count", "23 users.").await;
        admin.wait_for_count(USER_ROWS, 23).await;
        admin.wait_for_count("#load-more[hidden]", 1).await;
        let first_new = admin
            .eval(
                "return [...document.querySelectorAll('.user-link')]\
                 .indexOf(document.activeElement);",
            )
            .await;
        assert_eq!(first_new, 20, "the focus is on the first user of page 2");
        admin
            .eval("document.getElementById('user-search-email').focus(); return true;")
            .await;

        // Type, go down to the result, open it.
        press(&admin, prefix(&email)).await;
        admin.wait_for_count(USER_ROWS, 1).await;
        admin.wait_for_text(USER_ROWS, &email).await;
        press(&admin, ARROW_DOWN).await;
        let on_link = admin
            .eval(
                "const e = document.activeElement;\
                 return e.classList.contains('user-link') ? e.textContent : null;",
            )
            .await;
        assert_eq!(on_link, json!(email));
        press(&admin, ENTER).await;
        admin.wait_for_text("#page-title", &email).await;
        admin.wait_for_focus("page-title").await;
        admin.wait_for_count(LIVE_ROWS, 2).await;

        // From the heading: the role, its button, Disable, then End all sessions.
        for _ in 0..4 {
            press(&admin, TAB).await;
        }
        admin.wait_for_focus("end-all-sessions").await;

        // Enter asks; the dialog starts on Cancel; Escape cancels and gives the focus back.
        press(&admin, ENTER).await;
        admin.wait_for_focus("confirm-cancel").await;
        press(&admin, ESCAPE).await;
        admin
            .wait_for(
                "the dialog to close",
                "return !document.getElementById('confirm-dialog').open;",
            )
            .await;
        admin.wait_for_focus("end-all-sessions").await;
        assert_eq!(admin.count(LIVE_ROWS).await, 2);

        // Enter, Tab to the confirming button, Enter: every session ends, and the focus goes
        // to the list's heading, as the button went away with the sessions.
        press(&admin, ENTER).await;
        admin.wait_for_focus("confirm-cancel").await;
        press(&admin, TAB).await;
        admin.wait_for_focus("confirm-ok").await;
        press(&admin, ENTER).await;
        admin.wait_for_count("#live-empty", 1).await;
        admin.wait_for_focus("live-title").await;
        for device in [&phone, &laptop] {
            let refused = app.get("/api/v1/sessions", &device.access_token).await;
            assert_eq!(refused.code(), "session_revoked");
        }
    })
    .await;
}

#[tokio::test]
async fn admin_screenshots_at_phone_and_desktop_widths_in_light_and_dark() {
    let app = TestApp::spawn().await;
    let admin_email = app.create_user(Role::SystemAdmin).await;
    let admin_device = app.login(&admin_email, WINDOWS).await;
    let email = app.create_user(Role::Guest).await;
    for role in [Role::HotelEmployee, Role::VendorAdmin, Role::Guest] {
        let someone = app.create_user(role).await;
        let _ = app.login(&someone, ANDROID).await;
        let _ = app.try_login(&someone, "not the password", ANDROID).await;
    }
    let phone = app.login(&email, IPHONE).await;
    let _android = app.login(&email, ANDROID).await;
    let laptop = app.login(&email, WINDOWS).await;
    let ended = app
        .delete(
            &format!("/api/v1/admin/sessions/{}", laptop.session_id),
            &admin_device.access_token,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    let gone = app.login(&email, WINDOWS).await;
    let ended = app
        .delete(
            &format!("/api/v1/sessions/{}", gone.session_id),
            &phone.access_token,
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    let user_id = app.user_id(&phone).await;

    Browser::run(1280, |browser| async move {
        browser.sign_in(&app.base_url, &admin_email, PASSWORD).await;

        open_admin(&browser).await;
        browser
            .wait_for(
                "the users",
                &format!(
                    "return document.querySelectorAll({}).length >= 5;",
                    json!(USER_ROWS)
                ),
            )
            .await;
        browser.screenshots("admin-users").await;

        browser
            .open(&format!("{}/#/admin/users/{user_id}", app.base_url))
            .await;
        browser.wait_for_count(LIVE_ROWS, 2).await;
        browser.wait_for_count(HISTORY_ROWS, 2).await;
        browser.screenshots("admin-user").await;

        browser.click(&format!("{LIVE_ROWS} .session-end")).await;
        browser
            .wait_for(
                "the confirm dialog",
                "return document.getElementById('confirm-dialog').open;",
            )
            .await;
        browser.screenshots("admin-confirm").await;
        browser.click("#confirm-cancel").await;

        browser.click("[data-subnav='overview']").await;
        browser.wait_for_count("#chart-sign-ins svg", 1).await;
        browser.wait_for_count("#chart-ended svg", 1).await;
        browser
            .eval("document.getElementById('ended-table').open = true; return true;")
            .await;
        browser.screenshots("admin-overview").await;
    })
    .await;
}
