//! `/auth/check`: forward authentication for reverse proxies (nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth`, Envoy `ext_authz` in HTTP mode).
//!
//! The proxy asks before every request it forwards, so this is the hottest route of a
//! deployment: it validates the Bearer token exactly as every other route does (the
//! `Authenticated` extractor: live session, revocation bound) and answers with headers only.
//! Any method and any path below `/auth/check` are accepted, because proxies keep the
//! client's method (nginx) or append the original path (Envoy); a body is never read.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, Resource, web};
use uuid::Uuid;

use crate::http::authenticated::Authenticated;

/// The user's id, for the proxy to copy to the upstream.
pub const USER_ID: HeaderName = HeaderName::from_static("x-session-user-id");
/// The user's role (`guest`, `hotel_employee`, `vendor_admin`, `system_admin`).
pub const ROLE: HeaderName = HeaderName::from_static("x-session-role");
/// The session's id.
pub const SESSION_ID: HeaderName = HeaderName::from_static("x-session-id");
/// The user's hotel, only when the account has one.
pub const HOTEL_ID: HeaderName = HeaderName::from_static("x-session-hotel-id");

/// `/check`, every method.
pub fn resource() -> Resource {
    web::resource("/check").to(check)
}

/// Everything below `/check`, every method.
pub fn resource_below() -> Resource {
    web::resource("/check/{path:.*}").to(check_below)
}

/// Forward authentication: is this Bearer token a live session, and whose?
///
/// 200 with no body and the `X-Session-*` headers for the proxy to copy to the upstream;
/// 401 (problem body, `WWW-Authenticate`) otherwise. The same answer for any method and for
/// any path below `/api/v1/auth/check` (also `HEAD` and `OPTIONS`); a request body is
/// ignored. Note that nginx's `auth_request` turns any status but 2xx, 401 and 403 (a 503
/// while a store is down) into a 500 of its own.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/api/v1/auth/check",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A live session; no body",
            headers(
                ("X-Session-User-Id" = uuid::Uuid, description = "The user's id"),
                ("X-Session-Role" = String, description = "The user's role"),
                ("X-Session-Id" = uuid::Uuid, description = "The session's id"),
                ("X-Session-Hotel-Id" = Option<i64>, description = "The user's hotel, when the account has one"),
            )),
        (status = 400, description = "More than one `Authorization` header"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn check(caller: Authenticated) -> HttpResponse {
    vouch(&caller)
}

/// The same check, for proxies that append the original request's path (Envoy's
/// `ext_authz`); the path is not read.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/api/v1/auth/check/{path}",
    tag = "auth",
    security(("bearer" = [])),
    params(("path" = String, Path, description = "Any path, such as the original request's")),
    responses(
        (status = 200, description = "A live session; no body; the headers of `/api/v1/auth/check`"),
        (status = 400, description = "More than one `Authorization` header"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn check_below(caller: Authenticated) -> HttpResponse {
    vouch(&caller)
}

/// 200 with the caller's `X-Session-*` headers and no body.
fn vouch(caller: &Authenticated) -> HttpResponse {
    let principal = &caller.0;
    let session = &principal.session;
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((USER_ID, uuid_value(principal.user_id.as_uuid())))
        .insert_header((ROLE, HeaderValue::from_static(principal.role.as_str())))
        .insert_header((SESSION_ID, uuid_value(session.id.as_uuid())));
    if let Some(hotel) = session.hotel_id {
        answer.insert_header((HOTEL_ID, HeaderValue::from(hotel)));
    }
    answer.finish()
}

/// A UUID in its hyphenated lower-case form, formatted on the stack.
fn uuid_value(id: Uuid) -> HeaderValue {
    let mut buffer = Uuid::encode_buffer();
    let text = id.hyphenated().encode_lower(&mut buffer);
    // Hex digits and hyphens are always a valid header value.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
