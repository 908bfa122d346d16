//! Request limits, response headers every answer carries, and CORS from a configured
//! allow-list only.

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{ResponseError, web};

use super::ApiError;

/// How large a request's head may be.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_url_bytes: usize,
    pub max_header_bytes: usize,
}

/// Refuses oversized URLs (414) and headers (431) before anything reads them.
///
/// # Errors
/// The framework's own errors, passed through.
pub async fn enforce_limits(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limits = request
        .app_data::<web::Data<RequestLimits>>()
        .map(|limits| *limits.get_ref());
    if let Some(limits) = limits {
        let url = request.uri().to_string().len();
        let headers: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        let refused = if url > limits.max_url_bytes {
            Some(ApiError::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                "The URL is too long",
            ))
        } else if headers > limits.max_header_bytes {
            Some(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "The request headers are too large",
            ))
        } else {
            None
        };
        if let Some(refused) = refused {
            return Ok(request
                .into_response(refused.error_response())
                .map_into_right_body());
        }
    }
    Ok(next.call(request).await?.map_into_left_body())
}

/// `nosniff`, no referrer, and HSTS when configured (only behind HTTPS). Routes that need
/// more (the web UI's Content-Security-Policy, `no-store` on tokens) add it themselves.
pub fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"));
    if hsts {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// Cross-origin calls from the listed origins only; with none listed, browsers get no CORS
/// grant at all (the web UI is same-origin and needs none). Other origins are not refused
/// here, just not granted: the browser then withholds the answer from the calling page,
/// and same-origin requests (which carry an `Origin` too) pass untouched.
pub fn cors(allowed_origins: &[String]) -> Cors {
    allowed_origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::HeaderName::from_static("x-request-id")])
        .max_age(600)
        .block_on_origin_mismatch(false)
}
