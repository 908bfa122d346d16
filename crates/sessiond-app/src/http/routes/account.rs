//! `/users/me`: the caller's account.

use actix_web::{HttpResponse, Scope, web};
use serde::Deserialize;
use sessiond_domain::model::Password;

use crate::http::authenticated::Authenticated;
use crate::http::views::UserView;
use crate::http::{ApiError, AppState, no_content};

pub fn scope() -> Scope {
    web::scope("/users/me")
        .service(web::resource("").route(web::get().to(profile)))
        .service(web::resource("/password").route(web::post().to(change_password)))
}

/// The caller's own account.
async fn profile(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = state.sessions.current_user(&caller.0).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

#[derive(Deserialize)]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

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
