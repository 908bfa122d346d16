//! The HTTP API (SPEC §4): routes, extractors, wire types and errors.

mod authenticated;
mod client;
pub mod hardening;
mod json;
pub mod observe;
pub mod openapi;
mod problem;
mod request_id;
mod routes;
mod state;
mod views;
pub mod wire;

use actix_web::web;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, error};

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
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::validation(format!("invalid query string: {err}")).into()
        }))
        .service(routes::health::scope())
        .service(routes::keys::resource())
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

/// Mounts `GET /metrics`, the only route of the metrics listener (`METRICS_ADDR`): never on
/// the API listener (SPEC §4).
pub fn configure_metrics(config: &mut web::ServiceConfig) {
    config
        .service(routes::metrics::resource())
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
fn json_error(err: error::JsonPayloadError, request: &HttpRequest) -> error::Error {
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
        E::Deserialize(e) => {
            let copy = request.extensions().get::<hardening::BodyCopy>().cloned();
            let body = copy.as_ref().map(|copy| copy.bytes());
            ApiError::validation(json::explain(e, body.as_deref().map(Vec::as_slice)))
        }
        _ => ApiError::validation("the body could not be read"),
    };
    api_error.into()
}
