//! The `Authenticated` extractor: a handler that takes it only runs for a valid access token
//! on a live session (SPEC §2).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use sessiond_domain::service::Principal;

use super::{ApiError, AppState};

/// The caller of an authenticated route.
#[derive(Debug)]
pub struct Authenticated(pub Principal);

/// The token of an `Authorization: Bearer <token>` header. Tokens anywhere else (a query
/// string, a cookie) are ignored on purpose: they leak into logs and histories.
fn bearer_token(request: &HttpRequest) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(request);
        Box::pin(async move {
            let token = token.ok_or_else(ApiError::unauthenticated)?;
            let state = state.ok_or_else(|| ApiError::unauthenticated().detail("no state"))?;
            let principal = state.auth.authenticate(&token).await?;
            Ok(Authenticated(principal))
        })
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
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearer"), None);
        let query = TestRequest::with_uri("/x?access_token=abc").to_http_request();
        assert_eq!(bearer_token(&query), None);
    }
}
