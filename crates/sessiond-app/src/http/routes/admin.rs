//! `/admin`: system administrators manage users and end anyone's sessions.

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use sessiond_domain::model::{Email, Password, Role};
use sessiond_domain::ports::UserChange;
use sessiond_domain::service::NewAccount;

use crate::http::authenticated::{AdminCaller, require_admin};
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::{EndedView, RoleSchema, SessionView, UserView};

pub fn scope() -> impl HttpServiceFactory {
    web::scope("/admin")
        .wrap(from_fn(require_admin))
        .service(web::resource("/users").route(web::post().to(create_user)))
        .service(web::resource("/users/{user_id}").route(web::patch().to(update_user)))
        .service(
            web::resource("/users/{user_id}/sessions")
                .route(web::get().to(user_sessions))
                .route(web::delete().to(end_user_sessions)),
        )
        .service(web::resource("/sessions/{session_id}").route(web::delete().to(end_session)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    /// Stored in its normal form (NFKC, lower case); invisible characters are refused.
    email: String,
    password: String,
    #[schema(value_type = RoleSchema)]
    role: Role,
    hotel_id: Option<i64>,
}

/// Creates a user of any role.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 409, description = "`email_taken`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn create_user(
    state: web::Data<AppState>,
    caller: AdminCaller,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = NewAccount {
        email: Email::parse(&body.email).map_err(|e| ApiError::validation(e.to_string()))?,
        password: Password::new_secret(body.password, "password")
            .map_err(|e| ApiError::validation(e.to_string()))?,
        role: body.role,
        hotel_id: body.hotel_id,
    };
    let user = state.admin.create_user(&caller.0, account).await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserRequest {
    #[schema(value_type = Option<RoleSchema>)]
    role: Option<Role>,
    is_active: Option<bool>,
}

/// Changes a user's role or active flag; either ends all the user's sessions
/// (`role_changed`, `account_disabled`).
#[utoipa::path(
    patch,
    path = "/api/v1/admin/users/{user_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The user id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The user as changed", body = UserView),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such user"),
        (status = 409, description = "`last_admin`: the last active system_admin cannot be demoted or disabled"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn update_user(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: web::Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = super::user_id(&path)?;
    let change = UserChange {
        role: body.role,
        is_active: body.is_active,
    };
    let user = state.admin.update_user(&caller.0, id, change).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// Any user's live sessions.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{user_id}/sessions",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user's live sessions", body = [SessionView]),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such user"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn user_sessions(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::user_id(&path)?;
    let sessions = state.admin.user_sessions(&caller.0, id).await?;
    let current = caller.0.session.id;
    let views: Vec<SessionView> = sessions
        .iter()
        .map(|session| SessionView::new(session, current))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Ends all of a user's sessions (`admin_revoked`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{user_id}/sessions",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The user id")),
    responses(
        (status = 200, description = "How many ended", body = EndedView),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such user"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn end_user_sessions(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::user_id(&path)?;
    let revoked = state.admin.end_user_sessions(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(EndedView::many(revoked, "")))
}

/// Ends one session of anyone (`admin_revoked`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/sessions/{session_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("session_id" = uuid::Uuid, Path, description = "The session id")),
    responses(
        (status = 200, description = "Ended", body = EndedView),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such session"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn end_session(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::session_id(&path)?;
    state.admin.end_session(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(EndedView::one()))
}
