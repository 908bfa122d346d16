//! `/users/me`: the caller's account.

use actix_web::{HttpResponse, Scope, web};
use serde::Deserialize;
use sessiond_domain::model::Password;

use super::no_content;
use crate::http::authenticated::Authenticated;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::UserView;

pub fn scope() -> Scope {
    web::scope("/users/me")
        .service(web::resource("").route(web::get().to(profile)))
        .service(web::resource("/password").route(web::post().to(change_password)))
}

/// The caller's own account.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My account", body = UserView),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 404, description = "The account no longer exists"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn profile(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = state.sessions.current_user(&caller.0).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// Changes my password; ends all my other sessions (`password_changed`). Wrong current
/// passwords are counted like failed sign-ins (5 per 15 minutes by default): then 429 until
/// the window ends, even with the right password.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/password",
    tag = "account",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`wrong_password`: the current password is wrong"),
        (status = 404, description = "The account no longer exists"),
        (status = 429, description = "`rate_limited`: too many wrong current passwords; see `Retry-After`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn change_password(
    state: web::Data<AppState>,
    caller: Authenticated,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let current = Password::presented(body.current_password)
        .map_err(|_| ApiError::validation("current_password: must not be empty"))?;
    let new = Password::new_secret(body.new_password, "new_password")
        .map_err(|e| ApiError::validation(e.to_string()))?;
    state
        .accounts
        .change_password(&caller.0, current, new)
        .await?;
    Ok(no_content())
}
