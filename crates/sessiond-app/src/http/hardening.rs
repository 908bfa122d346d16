//! Request limits (the head's size, the time a body may take), `HEAD` wherever `GET` is,
//! response headers every answer carries, and CORS from a configured allow-list only.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode, Uri, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use futures::Stream;

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

/// `HEAD` is `GET` without the body (RFC 9110 §9.3.2): routed as `GET`, so every `GET`
/// route answers it with the same status and headers. The connection still knows the
/// request was `HEAD` and sends no body.
///
/// # Errors
/// The framework's own errors, passed through.
pub async fn head_as_get(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
    next.call(request).await
}

/// How request bodies are received.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    /// How long a body may take to arrive (`http.body_timeout_ms`).
    pub timeout: Duration,
    /// The largest JSON body (`http.json_limit`): no more of one is copied.
    pub json_limit: usize,
}

/// The first bytes of a JSON body as they arrived, so that a body that does not parse can
/// be answered with the field it went wrong at (see `http::json_error`).
#[derive(Debug, Clone, Default)]
pub(super) struct BodyCopy(Rc<RefCell<Vec<u8>>>);

impl BodyCopy {
    pub(super) fn bytes(&self) -> std::cell::Ref<'_, Vec<u8>> {
        self.0.borrow()
    }
}

/// Bounds the time to receive a request body: a body still incomplete `http.body_timeout_ms`
/// after the head is answered 408, and a body that is not read to its end (too slow, or of
/// no interest to the route) closes its connection once the answer is sent, so slow
/// senders cannot hold connections open (the head has actix's `client_request_timeout`).
/// Also keeps a copy of the first `http.json_limit` bytes of a JSON body for the JSON error
/// handler.
///
/// # Errors
/// The framework's own errors, passed through.
pub async fn body_deadline(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, Holding>>, actix_web::Error> {
    let rules = request
        .app_data::<web::Data<BodyRules>>()
        .map(|rules| *rules.get_ref());
    let has_body = request.headers().contains_key(header::CONTENT_LENGTH)
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let Some(rules) = rules.filter(|_| has_body) else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    // `application/json` and the `+json` types, as the JSON extractor takes them.
    let json = request
        .content_type()
        .to_ascii_lowercase()
        .ends_with("json");
    let copy = json.then(|| {
        let copy = BodyCopy::default();
        request.extensions_mut().insert(copy.clone());
        (copy, rules.json_limit)
    });
    let reader = Rc::new(RefCell::new(request.take_payload()));
    let state = Rc::new(BodyState::default());
    let payload = DeadlinePayload {
        reader: Rc::clone(&reader),
        deadline: Some(Box::pin(tokio::time::sleep(rules.timeout))),
        state: Rc::clone(&state),
        copy,
    };
    request.set_payload(Payload::Stream {
        payload: Box::pin(payload),
    });
    let response = next.call(request).await?;
    // While the reader lives, the server does not wait for the rest of the body: it
    // closes the connection after the answer (it would otherwise drain a chunked body at
    // the sender's pace, however slow).
    let unfinished = (!state.ended.get()).then_some(reader);
    if !state.expired.get() {
        return Ok(response
            .map_body(|_, body| Holding {
                body: BoxBody::new(body),
                _reader: unfinished,
            })
            .map_into_right_body());
    }
    let refused = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "The request body took too long",
    )
    .detail(format!(
        "send the whole body within {} ms",
        rules.timeout.as_millis()
    ));
    let mut answer: HttpResponse = refused.error_response();
    answer
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    let answer = answer.map_body(|_, body| Holding {
        body,
        _reader: unfinished,
    });
    Ok(response.into_response(answer).map_into_right_body())
}

/// An answer's body that keeps the request body's reader alive until the answer is sent.
pub struct Holding {
    body: BoxBody,
    _reader: Option<Rc<RefCell<Payload>>>,
}

impl std::fmt::Debug for Holding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holding")
            .field("holds_reader", &self._reader.is_some())
            .finish_non_exhaustive()
    }
}

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// How far a request body got.
#[derive(Debug, Default)]
struct BodyState {
    /// Read to its end.
    ended: Cell<bool>,
    /// Its deadline passed first.
    expired: Cell<bool>,
}

/// A request body that fails with a timeout once its deadline passes.
struct DeadlinePayload {
    reader: Rc<RefCell<Payload>>,
    /// `None` once the body is complete: from then on, no deadline.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    state: Rc<BodyState>,
    copy: Option<(BodyCopy, usize)>,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.state.expired.get() || this.state.ended.get() {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut *this.reader.borrow_mut()).poll_next(cx);
        match polled {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some((copy, limit)) = &this.copy {
                    let mut bytes = copy.0.borrow_mut();
                    let room = limit.saturating_sub(bytes.len());
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.state.ended.set(true);
                this.deadline = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    this.state.expired.set(true);
                    this.deadline = None;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body took too long",
                    )))))
                }
                _ => Poll::Pending,
            },
        }
    }
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
