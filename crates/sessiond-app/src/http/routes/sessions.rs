//! `/sessions`: the caller's own sessions.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, Scope, web};

use crate::http::authenticated::Authenticated;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::{CurrentView, EndedSessionView, EndedView, PrincipalView, SessionView};

pub fn scope() -> Scope {
    web::scope("/sessions")
        .service(
            web::resource("")
                .route(web::get().to(list))
                .route(web::delete().to(end_others)),
        )
        .service(web::resource("/current").route(web::get().to(current)))
        .service(web::resource("/history").route(web::get().to(history)))
        .service(web::resource("/{id}").route(web::delete().to(end_one)))
}

/// My live sessions, most recently active first.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My live sessions", body = [SessionView]),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn list(state: web::Data<AppState>, caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let current = caller.0.session.id;
    let sessions = state.sessions.list(&caller.0).await?;
    let views: Vec<SessionView> = sessions
        .iter()
        .map(|session| SessionView::new(session, current))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// This session and who I am ("whoami").
#[utoipa::path(
    get,
    path = "/api/v1/sessions/current",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The current session and user", body = CurrentView),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn current(caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let principal = &caller.0;
    let view = CurrentView {
        session: SessionView::current(&principal.session),
        user: PrincipalView::from(principal),
    };
    // Sized for the whole answer at once (serde_json starts at 128 bytes and grows).
    let mut body = Vec::with_capacity(CURRENT_VIEW_CAPACITY);
    serde_json::to_writer(&mut body, &view).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

/// Room for a `CurrentView` with a long browser and device name.
const CURRENT_VIEW_CAPACITY: usize = 768;

/// Ends one of my sessions; another user's session id is 404, as if it did not exist.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The session id")),
    responses(
        (status = 200, description = "Ended", body = EndedView),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 404, description = "No such session of mine"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn end_one(
    state: web::Data<AppState>,
    caller: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::session_id(&id)?;
    state.sessions.end_own(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(EndedView::one()))
}

/// Ends all my sessions but this one.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many ended", body = EndedView),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn end_others(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let revoked = state.sessions.end_others(&caller.0).await?;
    Ok(HttpResponse::Ok().json(EndedView::many(revoked, "other ")))
}

/// My ended sessions of the retention period, newest first, with why each ended.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/history",
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My ended sessions", body = [EndedSessionView]),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn history(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ended = state.sessions.history(&caller.0).await?;
    let views: Vec<EndedSessionView> = ended.iter().filter_map(EndedSessionView::new).collect();
    Ok(HttpResponse::Ok().json(views))
}
