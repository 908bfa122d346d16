//! The `Authenticated` extractor: a handler that takes it only runs for a valid access token
//! on a live session (SPEC §2).

use std::future::Future;
use std::pin::Pin;

use std::future::{Ready, ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use sessiond_domain::DomainError;
use sessiond_domain::model::Role;
use sessiond_domain::service::Principal;

use super::problem::ApiError;
use super::state::AppState;

/// The caller of an authenticated route.
#[derive(Debug)]
pub struct Authenticated(pub Principal);

/// The token of an `Authorization: Bearer <token>` header. Tokens anywhere else (a query
/// string, a cookie) are ignored on purpose: they leak into logs and histories.
///
/// # Errors
/// 400 for more than one `Authorization` header: which one counts would be a guess, and a
/// proxy in front may have guessed the other way.
fn bearer_token(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = request.headers().get_all(AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::validation(
            "send exactly one Authorization header",
        ));
    }
    // On bytes: `HeaderValue::to_str` checks every byte one at a time, and a token is long.
    let value = value.as_bytes();
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        return Ok(None);
    };
    let (scheme, token) = (&value[..space], value[space + 1..].trim_ascii());
    let Ok(token) = std::str::from_utf8(token) else {
        return Ok(None);
    };
    Ok((scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then(|| token.to_owned()))
}

/// Marks a request the client makes on its own (the web UI's periodic check): it is
/// validated like any other, but is no activity of the user's (`AuthService` says why).
pub(crate) const BACKGROUND_HEADER: &str = "x-sessiond-background";

/// Whether `request` says it is a background one (`X-Sessiond-Background: 1`).
pub(crate) fn in_background(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(BACKGROUND_HEADER)
        .is_some_and(|value| value.as_bytes() == b"1")
}

/// The principal of `token`; a refusal says that the token presented was refused
/// (`WWW-Authenticate: Bearer error="invalid_token"`, RFC 6750).
async fn authenticate(
    state: Option<web::Data<AppState>>,
    token: &str,
    background: bool,
) -> Result<Principal, ApiError> {
    let state = state.ok_or_else(|| ApiError::unauthenticated().detail("no state"))?;
    let principal = if background {
        state.auth.authenticate_in_background(token).await
    } else {
        state.auth.authenticate(token).await
    };
    principal.map_err(|error| ApiError::from(error).token_presented())
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(request);
        let background = in_background(request);
        Box::pin(async move {
            let token = token?.ok_or_else(ApiError::unauthenticated)?;
            Ok(Authenticated(
                authenticate(state, &token, background).await?,
            ))
        })
    }
}

/// The caller of an `/admin` route, as checked by [`require_admin`].
#[derive(Debug)]
pub struct AdminCaller(pub Principal);

/// Middleware of the `/admin` scope: authenticates the caller and requires a `system_admin`
/// session before anything else is read, so a non-admin gets 401/403 whatever the body
/// (handler extractors run concurrently, so this cannot be an extractor). The domain checks
/// again against the stored user.
///
/// # Errors
/// 401 without a valid session, 403 for other roles.
pub async fn require_admin(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let principal = match admin_principal(&request).await {
        Ok(principal) => principal,
        // Answered here, as a response: outer middleware then sees it like any other.
        Err(refused) => {
            return Ok(request
                .into_response(refused.error_response())
                .map_into_right_body());
        }
    };
    request.extensions_mut().insert(principal);
    Ok(next.call(request).await?.map_into_left_body())
}

async fn admin_principal(request: &ServiceRequest) -> Result<Principal, ApiError> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let token = bearer_token(request.request())?.ok_or_else(ApiError::unauthenticated)?;
    let principal = authenticate(state, &token, false).await?;
    if principal.role != Role::SystemAdmin {
        return Err(DomainError::Forbidden.into());
    }
    Ok(principal)
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = request.extensions().get::<Principal>().cloned();
        ready(
            principal
                .map(AdminCaller)
                .ok_or_else(ApiError::unauthenticated),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn only_a_bearer_header_carries_a_token() {
        let with = |value: &str| {
            bearer_token(
                &TestRequest::default()
                    .insert_header((AUTHORIZATION, value))
                    .to_http_request(),
            )
            .unwrap()
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(with("Bearertoken"), None);
        assert_eq!(with("Token abc"), None);
        let query = TestRequest::with_uri("/x?access_token=abc").to_http_request();
        assert_eq!(bearer_token(&query).unwrap(), None);
    }

    #[test]
    fn two_authorization_headers_are_refused_whatever_they_say() {
        for (first, second) in [
            ("Bearer abc", "Bearer def"),
            ("Bearer abc", "Bearer abc"),
            ("Basic x", "Bearer abc"),
        ] {
            let request = TestRequest::default()
                .append_header((AUTHORIZATION, first))
                .append_header((AUTHORIZATION, second))
                .to_http_request();
            let refused = bearer_token(&request).unwrap_err();
            assert_eq!(
                refused.status_code(),
                actix_web::http::StatusCode::BAD_REQUEST
            );
            assert_eq!(refused.code(), "validation_failed");
        }
    }
}
