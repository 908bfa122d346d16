//! Request limits, response headers every answer carries, and CORS from a configured
//! allow-list only.

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::http::{StatusCode, Uri, header};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use super::problem::ApiError;

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
        let url = url_length(request.uri());
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

/// The length of the URL as the client sent it (`Uri`'s `Display`), without building it.
fn url_length(uri: &Uri) -> usize {
    let origin = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => scheme.len() + "://".len() + authority.as_str().len(),
        (None, Some(authority)) => authority.as_str().len(),
        _ => 0,
    };
    origin + uri.path_and_query().map_or(0, |path| path.as_str().len())
}

/// The headers every answer carries: `nosniff`, no referrer, and HSTS when configured (only
/// behind HTTPS). Added by `observe` to answers that do not set them; routes that need
/// more (the web UI's Content-Security-Policy, `no-store` on tokens) add it themselves.
#[derive(Debug, Clone, Copy)]
pub struct SecurityHeaders {
    pub hsts: bool,
}

impl SecurityHeaders {
    pub fn add_to(self, headers: &mut HeaderMap) {
        let hsts = self.hsts.then_some((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ));
        let always = [
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ];
        for (name, value) in always.into_iter().chain(hsts) {
            if !headers.contains_key(&name) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_length_is_the_length_of_the_url_as_sent() {
        for url in [
            "/",
            "/api/v1/sessions?limit=5&x=%20y",
            "http://example.com:8080/api/v1/sessions?q=1",
            "https://example.com",
            "example.com:443",
            "*",
        ] {
            let uri: Uri = url.parse().unwrap();
            assert_eq!(url_length(&uri), uri.to_string().len(), "{url}");
        }
    }

    #[test]
    fn security_headers_fill_in_what_a_route_did_not_set() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        SecurityHeaders { hsts: false }.add_to(&mut headers);
        assert_eq!(headers.get(header::REFERRER_POLICY).unwrap(), "same-origin");
        assert_eq!(
            headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        SecurityHeaders { hsts: true }.add_to(&mut headers);
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }
}
