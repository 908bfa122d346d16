//! What every request goes through first: a request id (accepted from `X-Request-Id` or
//! made up, echoed back, on every log line of the request and in 5xx problem bodies), one
//! log line per request, HTTP metrics, the security headers of every answer, and
//! problem+json for the bare error answers the framework makes itself (405, 431, ...).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use tracing::Instrument;
use uuid::Uuid;

use super::ApiError;
use super::hardening::SecurityHeaders;
use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS};

tokio::task_local! {
    static REQUEST_ID: String;
}

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A fresh id: a random per-process prefix and a counter. Unique across instances and
/// restarts, and no system call per request (a v4 UUID each time cost one).
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| Uuid::new_v4().simple().to_string());
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    // By hand: `format!` was the largest part of this middleware's own time.
    let digits = (64 - count.leading_zeros()).div_ceil(4).max(1);
    let mut id = String::with_capacity(prefix.len() + 1 + digits as usize);
    id.push_str(prefix);
    id.push('-');
    for shift in (0..digits).rev() {
        let digit = u32::try_from((count >> (shift * 4)) & 0xf).unwrap_or(0);
        id.push(char::from_digit(digit, 16).unwrap_or('0'));
    }
    id
}

/// A client's request id is kept when it is short and plain; anything else is replaced,
/// so ids stay safe to log and to echo.
fn accepted_id(value: &HeaderValue) -> Option<String> {
    let id = value.to_str().ok()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    (!id.is_empty() && id.len() <= 64 && id.chars().all(plain)).then(|| id.to_owned())
}

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
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(accepted_id)
        .unwrap_or_else(new_request_id);
    let method = request.method().clone();
    // The path only: a query string may carry what must never be logged.
    let path = request.path().to_owned();
    let span =
        tracing::info_span!("request", request.id = %id, http.method = %method, http.path = %path);
    let started = Instant::now();

    // No clone of the request may live across `next.call`: routing needs it unshared.
    // Middleware inside answers its refusals as responses, so errors here are the
    // framework's own and pass through as they are.
    let served = REQUEST_ID.scope(id.clone(), async move {
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
            duration_ms = elapsed.as_secs_f64() * 1000.0,
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
    count(
        route,
        method_label(&method),
        status.as_u16(),
        elapsed.as_secs_f64(),
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
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
    fn made_up_ids_are_a_process_prefix_and_a_hex_counter() {
        let first = new_request_id();
        let second = new_request_id();
        let (prefix, count) = first.rsplit_once('-').unwrap();
        assert_eq!(prefix.len(), 32);
        let next = u64::from_str_radix(count, 16).unwrap() + 1;
        // Other tests of this process may draw ids in between.
        let (second_prefix, second_count) = second.rsplit_once('-').unwrap();
        assert_eq!(second_prefix, prefix);
        assert!(u64::from_str_radix(second_count, 16).unwrap() >= next);
        assert!(accepted_id(&HeaderValue::from_str(&first).unwrap()).is_some());
    }

    #[test]
    fn made_up_methods_share_one_metric_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
    }

    #[test]
    fn client_request_ids_are_kept_only_when_plain_and_short() {
        let id = |s: &str| accepted_id(&HeaderValue::from_str(s).unwrap());
        assert_eq!(id("abc-123_x.y:z").as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(id(""), None);
        assert_eq!(id("has space"), None);
        assert_eq!(id("evil\"quote"), None);
        assert_eq!(id(&"a".repeat(65)), None);
    }
}
