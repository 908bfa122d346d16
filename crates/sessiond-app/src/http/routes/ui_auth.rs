//! `/ui/auth`: sign-in, refresh and sign-out for the web UI, with the refresh token in a
//! cookie that page scripts cannot read.
//!
//! The API hands refresh tokens to its clients in JSON; a browser page that kept one in
//! `localStorage` would give it to any script that ever runs on the page (an XSS). Here the
//! refresh token lives in an `HttpOnly; SameSite=Strict` cookie whose `Path` is this scope,
//! so it only travels with these three calls; the access token lives in the page's memory
//! and is sent as a Bearer header to `/api/v1` like any other client's.
//!
//! Because a cookie authenticates these calls, each must carry `X-Requested-With:
//! sessiond-ui` (a header a cross-site form cannot send, and a cross-site `fetch` cannot
//! send without a CORS preflight that sessiond never grants), and a browser's
//! `Sec-Fetch-Site`, when present, must say `same-origin`. `SameSite=Strict` already keeps
//! the cookie off cross-site requests; the header check is the second lock.
//!
//! A second cookie, `sessiond_device` (same attributes, kept for a year), holds the device
//! token of the browser's last successful sign-in: sign-in sends it back, so that a browser
//! that signed in before is counted apart from strangers and cannot be locked out by them.
//! Signing out keeps it: it names the device, not the session.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, Scope, web};
use serde::Serialize;
use sessiond_domain::DomainError;
use sessiond_domain::model::{DeviceKeys, DeviceToken};
use sessiond_domain::service::SignedIn;

use crate::http::authenticated::{Authenticated, in_background};
use crate::http::client::ClientInfo;
use crate::http::problem::ApiError;
use crate::http::routes::assets::harden;
use crate::http::routes::auth::LoginRequest;
use crate::http::state::AppState;
use crate::http::views::SessionView;

/// The cookie that holds the refresh token.
pub const REFRESH_COOKIE: &str = "sessiond_refresh";
/// The cookie that holds the browser's device token.
pub const DEVICE_COOKIE: &str = "sessiond_device";
/// The only path the cookie is sent to.
pub const COOKIE_PATH: &str = "/ui/auth";
/// The header (and value) every call of this scope must carry.
pub const CSRF_HEADER: &str = "x-requested-with";
pub const CSRF_VALUE: &str = "sessiond-ui";

pub fn scope() -> Scope {
    web::scope(COOKIE_PATH)
        .service(web::resource("/login").route(web::post().to(login)))
        .service(web::resource("/refresh").route(web::post().to(refresh)))
        .service(web::resource("/logout").route(web::post().to(logout)))
}

/// The answer to sign-in and refresh: the login answer of the API without the refresh
/// token, which went into the cookie.
#[derive(Debug, Serialize)]
struct UiTokenView<'a> {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_threshold: i64,
    session: SessionView<'a>,
}

async fn login(
    request: HttpRequest,
    state: web::Data<AppState>,
    client: ClientInfo,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    require_same_origin(&request)?;
    let mut attempt = body.into_inner().into_sign_in(client)?;
    if let Some(cookie) = request.cookie(DEVICE_COOKIE) {
        attempt.context.device_token = Some(DeviceToken::presented(cookie.value().to_owned()));
    }
    let signed_in = state.auth.sign_in(attempt).await?;
    let mut response = tokens(&request, &state, &signed_in);
    if let Some(token) = &signed_in.device_token {
        let cookie = Cookie::build(DEVICE_COOKIE, token.expose().to_owned())
            .path(COOKIE_PATH)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(wants_secure(&request))
            .max_age(CookieDuration::seconds(
                DeviceKeys::LIFETIME.whole_seconds(),
            ))
            .finish();
        // A cookie that cannot be set only leaves the browser a stranger next time.
        let _ = response.add_cookie(&cookie);
    }
    Ok(response)
}

async fn refresh(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(refused) = require_same_origin(&request) {
        return refused.error_response();
    }
    let Some(cookie) = request.cookie(REFRESH_COOKIE) else {
        return ApiError::unauthenticated()
            .detail("this browser is not signed in")
            .error_response();
    };
    let refreshed = if in_background(&request) {
        state.auth.refresh_in_background(cookie.value()).await
    } else {
        state.auth.refresh(cookie.value()).await
    };
    match refreshed {
        Ok(signed_in) => tokens(&request, &state, &signed_in),
        // Another tab refreshed a moment ago: its answer put the new token in the cookie
        // jar, so leave the cookie alone and let the page retry.
        Err(rotated @ DomainError::RefreshTokenRotated) => ApiError::from(rotated).error_response(),
        Err(error) => {
            let error = ApiError::from(error);
            let mut response = error.error_response();
            if error.status_code() == StatusCode::UNAUTHORIZED {
                // The token is dead for good: drop it from the browser.
                let _ = response.add_cookie(&removal(&request));
            }
            response
        }
    }
}

/// Ends the caller's session (when its access token is still good) and always drops the
/// cookie, so that signing out on this browser never fails.
async fn logout(
    request: HttpRequest,
    state: web::Data<AppState>,
    caller: Option<Authenticated>,
) -> Result<HttpResponse, ApiError> {
    require_same_origin(&request)?;
    if let Some(Authenticated(principal)) = caller {
        state.sessions.sign_out(&principal).await?;
    }
    Ok(harden(&mut HttpResponse::NoContent())
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .cookie(removal(&request))
        .finish())
}

/// A token answer: the access token in the body, the refresh token in the cookie.
fn tokens(request: &HttpRequest, state: &AppState, signed_in: &SignedIn) -> HttpResponse {
    let policy = state.auth.policy();
    let view = UiTokenView {
        access_token: signed_in.access_token.clone(),
        token_type: "Bearer",
        expires_in: (signed_in.access_expires_at - signed_in.issued_at)
            .whole_seconds()
            .max(0),
        refresh_threshold: policy.refresh_threshold.whole_seconds(),
        session: SessionView::new(&signed_in.session, signed_in.session.id),
    };
    // The cookie dies with the session: no point keeping it longer.
    let lifetime = (signed_in.session.expires_at - signed_in.issued_at)
        .whole_seconds()
        .max(0);
    let cookie = base_cookie(request, signed_in.refresh_token.expose())
        .max_age(CookieDuration::seconds(lifetime))
        .finish();
    harden(&mut HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .cookie(cookie)
        .json(view)
}

/// A cookie that deletes the refresh cookie.
fn removal(request: &HttpRequest) -> Cookie<'static> {
    let mut cookie = base_cookie(request, String::new()).finish();
    cookie.make_removal();
    cookie
}

fn base_cookie(request: &HttpRequest, value: String) -> actix_web::cookie::CookieBuilder<'static> {
    Cookie::build(REFRESH_COOKIE, value)
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(wants_secure(request))
}

/// `Secure` whenever the browser will keep a Secure cookie: over HTTPS (directly or behind
/// a proxy that says so), and on loopback hosts, which browsers treat as secure contexts
/// (Chromium keeps Secure cookies set by `http://127.0.0.1` and `http://localhost`). Only
/// plain HTTP to another host — a LAN test set-up — gets a cookie without it; the browser
/// would otherwise drop it and sign-in would silently not stick.
fn wants_secure(request: &HttpRequest) -> bool {
    let info = request.connection_info();
    if info.scheme() == "https" {
        return true;
    }
    let host = info.host();
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.ends_with(".localhost")
}

/// The CSRF check of every cookie-authenticated call (see the module doc).
fn require_same_origin(request: &HttpRequest) -> Result<(), ApiError> {
    let headers = request.headers();
    let marked = headers
        .get(CSRF_HEADER)
        .is_some_and(|value| value.as_bytes() == CSRF_VALUE.as_bytes());
    let site_ok = headers
        .get("sec-fetch-site")
        .is_none_or(|value| matches!(value.as_bytes(), b"same-origin" | b"none"));
    if marked && site_ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_rejected",
            "Cross-site request refused",
        )
        .detail("send X-Requested-With: sessiond-ui from the sessiond web UI"))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn cookie_calls_need_the_custom_header_from_the_same_origin() {
        let plain = TestRequest::post().to_http_request();
        assert!(require_same_origin(&plain).is_err());
        let marked = TestRequest::post()
            .insert_header((CSRF_HEADER, CSRF_VALUE))
            .to_http_request();
        assert!(require_same_origin(&marked).is_ok());
        let cross_site = TestRequest::post()
            .insert_header((CSRF_HEADER, CSRF_VALUE))
            .insert_header(("sec-fetch-site", "cross-site"))
            .to_http_request();
        assert!(require_same_origin(&cross_site).is_err());
    }

    #[test]
    fn loopback_and_https_get_secure_cookies() {
        let with_host = |host: &str| {
            wants_secure(
                &TestRequest::default()
                    .insert_header((header::HOST, host))
                    .to_http_request(),
            )
        };
        assert!(with_host("127.0.0.1:8080"));
        assert!(with_host("localhost"));
        assert!(with_host("[::1]:8080"));
        assert!(!with_host("192.168.1.20:8080"));
        let proxied = TestRequest::default()
            .insert_header((header::HOST, "sessions.example.com"))
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        assert!(wants_secure(&proxied));
    }
}
