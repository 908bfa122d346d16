//! `/admin`: system administrators manage users and end anyone's sessions.

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use sessiond_domain::model::{Email, Password, Role, SessionId, UserId};
use sessiond_domain::ports::UserChange;
use sessiond_domain::service::NewAccount;

use crate::http::authenticated::{AdminCaller, require_admin};
use crate::http::views::{EndedView, SessionView, UserView};
use crate::http::{ApiError, AppState};

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

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::validation("the user id must be a UUID"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    email: String,
    password: String,
    role: Role,
    hotel_id: Option<i64>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUserRequest {
    role: Option<Role>,
    is_active: Option<bool>,
}

async fn update_user(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: web::Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let change = UserChange {
        role: body.role,
        is_active: body.is_active,
    };
    let user = state.admin.update_user(&caller.0, id, change).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

async fn user_sessions(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let sessions = state.admin.user_sessions(&caller.0, id).await?;
    let current = caller.0.session.id;
    let views: Vec<SessionView> = sessions
        .iter()
        .map(|session| SessionView::new(session, current))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn end_user_sessions(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let revoked = state.admin.end_user_sessions(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(EndedView {
        success: true,
        message: format!("Ended {revoked} session(s)"),
        revoked: Some(revoked),
    }))
}

async fn end_session(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: SessionId = path
        .parse()
        .map_err(|_| ApiError::validation("the session id must be a UUID"))?;
    state.admin.end_session(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(EndedView {
        success: true,
        message: "Session ended".into(),
        revoked: None,
    }))
}
