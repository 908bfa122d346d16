//! One module per resource.

pub mod account;
pub mod admin;
pub mod assets;
pub mod auth;
pub mod forward_auth;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod sessions;
pub mod ui_auth;

use actix_web::HttpResponse;
use sessiond_domain::model::{SessionId, UserId};

use crate::http::problem::ApiError;

/// A session id from a path: 400, not 404, for one that cannot be an id.
pub(crate) fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::validation("the session id must be a UUID"))
}

/// A user id from a path.
pub(crate) fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::validation("the user id must be a UUID"))
}

/// The response of a handler that answers with no body.
pub(crate) fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
