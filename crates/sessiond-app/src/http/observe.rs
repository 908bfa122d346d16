//! What every request goes through first: its request id (echoed back, on every log line of
//! the request), one log line per request, HTTP metrics, the security headers of every
//! answer, `Cache-Control: no-store` on the API's, and problem+json for the bare error
//! answers the framework makes itself (405, 431, ...).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use tracing::Instrument;

use super::hardening::SecurityHeaders;
use super::problem::ApiError;
use super::request_id;
use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS};

/// The method as a metric label: the standard ones by name, any other as `OTHER`, so that
/// made-up methods cannot grow the label set without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The metric handles of one route, method and status.
struct RouteMetrics {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// Route pattern → (method label, status) → handles.
type MetricsByRoute = HashMap<String, HashMap<(&'static str, u16), RouteMetrics>>;

thread_local! {
    /// Handles resolved once per worker thread, not per request: building the labels and
    /// looking them up in the registry was the costliest part of this middleware. Bounded
    /// by routes × methods × statuses (unmatched paths share one label).
    static ROUTE_METRICS: RefCell<MetricsByRoute> = RefCell::new(HashMap::new());
}

fn count(route: Option<String>, method: &'static str, status: u16, elapsed: f64) {
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    ROUTE_METRICS.with_borrow_mut(|routes| {
        let by_outcome = match routes.get_mut(route.as_str()) {
            Some(found) => found,
            None => routes.entry(route.clone()).or_default(),
        };
        let handles = by_outcome.entry((method, status)).or_insert_with(|| {
            let labels = [
                ("route", route.clone()),
                ("method", method.to_owned()),
                ("status", status.to_string()),
            ];
            RouteMetrics {
                requests: metrics::counter!(HTTP_REQUESTS, &labels),
                duration: metrics::histogram!(HTTP_DURATION, &labels[..1]),
            }
        });
        handles.requests.increment(1);
        handles.duration.record(elapsed);
    });
}

/// The middleware (`from_fn`).
///
/// # Errors
/// The framework's own errors, passed through.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id::of(request.headers());
    let method = request.method().clone();
    // The path only: a query string may carry what must never be logged.
    let path = request.path().to_owned();
    let span =
        tracing::info_span!("request", request.id = %id, http.method = %method, http.path = %path);
    let started = Instant::now();

    // No clone of the request may live across `next.call`: routing needs it unshared.
    // Middleware inside answers its refusals as responses, so errors here are the
    // framework's own and pass through as they are.
    let served = request_id::scope(id.clone(), async move {
        next.call(request)
            .await
            .map(|response| as_problem(response.map_into_boxed_body()))
    });
    let mut response = served.instrument(span.clone()).await?;

    let status = response.status();
    let route = response.request().match_pattern();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(
            http.route = route.as_deref().unwrap_or("unmatched"),
            http.status = status.as_u16(),
            // Three decimals (a microsecond) are all a reader needs of a request's time.
            duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            "request served"
        );
    });
    let security = response
        .request()
        .app_data::<web::Data<SecurityHeaders>>()
        .map(|headers| *headers.get_ref());
    if let Some(security) = security {
        security.add_to(response.headers_mut());
    }
    if is_private(&path) && !response.headers().contains_key(CACHE_CONTROL) {
        // Sessions, accounts, tokens and their errors: for this client only, and not for
        // a disk cache either.
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    count(
        route,
        method_label(&method),
        status.as_u16(),
        elapsed.as_secs_f64(),
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    Ok(response)
}

/// Whether answers under `path` are about one user (the API and the UI's sign-in): never
/// stored by a cache.
fn is_private(path: &str) -> bool {
    path.starts_with("/api/v1/") || path.starts_with("/ui/auth/")
}

/// Error answers without a body (the framework's 405, 413 on headers, ...) become
/// problem details like every other error.
fn as_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let bare = (status.is_client_error() || status.is_server_error())
        && !response.headers().contains_key(CONTENT_TYPE);
    if !bare {
        return response;
    }
    let problem = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "This method is not allowed here",
        ),
        _ if status.is_server_error() => ApiError::new(status, "internal_error", "Internal error"),
        _ => ApiError::new(status, "bad_request", "The request cannot be served"),
    };
    let allow = response.headers().get("allow").cloned();
    let mut replacement: HttpResponse = problem.error_response();
    if let Some(allow) = allow {
        replacement
            .headers_mut()
            .insert(HeaderName::from_static("allow"), allow);
    }
    response.into_response(replacement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_metric_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
    }
}
