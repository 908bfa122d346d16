//! The HTTP API (SPEC §4): routes, extractors, wire types and errors.

mod authenticated;
mod client;
pub mod hardening;
pub mod observe;
pub mod openapi;
mod problem;
mod request_id;
mod routes;
mod state;
mod views;

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse, error};

pub use problem::ApiError;
pub use state::AppState;

/// Mounts every route and the error handlers for malformed requests.
pub fn configure(config: &mut web::ServiceConfig, json_limit: usize) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(json_error),
        )
        .app_data(
            web::PathConfig::default().error_handler(|err, _| {
                ApiError::validation(format!("invalid path: {err}")).into()
            }),
        )
        .service(routes::health::scope())
        .service(routes::metrics::resource())
        .service(
            web::scope("/api/v1")
                .service(routes::auth::scope())
                .service(routes::sessions::scope())
                .service(routes::account::scope())
                .service(routes::admin::scope()),
        )
        .service(openapi::resource())
        .service(routes::ui_auth::scope())
        .service(routes::assets::resources())
        .default_service(web::to(not_found));
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found().detail(format!(
        "no route for {} {}",
        request.method(),
        request.path()
    )))
}

/// Malformed JSON bodies are the client's mistake: 4xx with a clear detail, never a 5xx.
fn json_error(err: error::JsonPayloadError, _: &HttpRequest) -> error::Error {
    use actix_web::http::StatusCode;
    use error::JsonPayloadError as E;
    let api_error = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is too large",
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json",
        ),
        E::Deserialize(e) => ApiError::validation(format!("invalid JSON body: {e}")),
        _ => ApiError::validation(format!("unreadable body: {err}")),
    };
    api_error.into()
}
