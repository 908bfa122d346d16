//! The one error type at the HTTP edge: RFC 9457 problem details with a stable `code`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use sessiond_domain::model::InvalidationReason;
use sessiond_domain::{DomainError, ErrorChain};

use super::views::ReasonSchema;

/// An error answer. Clients see `title`, `detail`, `code` and `reason`; the source chain
/// goes to the log once, for 5xx answers only.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    reason: Option<InvalidationReason>,
    retry_after: Option<u64>,
    /// A 401 for a token the client presented (not for a missing one): RFC 6750's
    /// `error="invalid_token"`.
    token_presented: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The body of every error answer (`application/problem+json`), as documented in OpenAPI.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(super) struct Problem<'a> {
    /// `urn:sessiond:problem:<code>`.
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    /// Stable, snake_case: what a client matches on.
    code: &'a str,
    /// Why the session ended, on `session_revoked` and `session_expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ReasonSchema>)]
    reason: Option<&'a str>,
    /// On 5xx answers: the id to quote when reporting the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str) -> Self {
        Self {
            status,
            code,
            title,
            detail: title.to_owned(),
            reason: None,
            retry_after: None,
            token_presented: false,
            source: None,
        }
    }

    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    fn reason(mut self, reason: InvalidationReason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Marks a refusal as one of the access token the client presented.
    #[must_use]
    pub fn token_presented(mut self) -> Self {
        self.token_presented = true;
        self
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn source(mut self, source: Box<dyn std::error::Error + Send + Sync>) -> Self {
        self.source = Some(source);
        self
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "The request is not valid",
        )
        .detail(detail)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication is required",
        )
        .detail("send an access token as `Authorization: Bearer <token>`")
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found")
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.code, self.detail)
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        use StatusCode as S;
        match error {
            DomainError::Validation(e) => ApiError::validation(e.to_string()),
            DomainError::InvalidCredentials => ApiError::new(
                S::UNAUTHORIZED,
                "invalid_credentials",
                "Wrong e-mail or password",
            ),
            DomainError::WrongPassword => ApiError::new(
                S::FORBIDDEN,
                "wrong_password",
                "The current password is wrong",
            ),
            DomainError::AccountDisabled => {
                ApiError::new(S::FORBIDDEN, "account_disabled", "This account is disabled")
            }
            DomainError::EmailTaken => ApiError::new(
                S::CONFLICT,
                "email_taken",
                "This e-mail address is already registered",
            ),
            DomainError::TokenExpired => ApiError::new(
                S::UNAUTHORIZED,
                "token_expired",
                "The access token has expired",
            )
            .detail("refresh the access token and retry"),
            DomainError::TokenInvalid => ApiError::new(
                S::UNAUTHORIZED,
                "token_invalid",
                "The access token is not valid",
            ),
            DomainError::RefreshTokenInvalid => ApiError::new(
                S::UNAUTHORIZED,
                "refresh_token_invalid",
                "The refresh token is not valid",
            ),
            DomainError::RefreshTokenRotated => ApiError::new(
                S::UNAUTHORIZED,
                "refresh_token_rotated",
                "The refresh token was just used",
            )
            .detail("another request refreshed this session a moment ago; use its tokens"),
            DomainError::SessionRevoked(reason) => {
                ApiError::new(S::UNAUTHORIZED, "session_revoked", "The session has ended")
                    .detail(format!("the session ended: {reason}"))
                    .reason(reason)
            }
            DomainError::SessionExpired => ApiError::new(
                S::UNAUTHORIZED,
                "session_expired",
                "The session has expired",
            )
            .reason(InvalidationReason::Expired),
            DomainError::MaxSessionsReached => ApiError::new(
                S::CONFLICT,
                "max_sessions_reached",
                "Too many active sessions",
            )
            .detail("sign out on another device first"),
            DomainError::RateLimited {
                retry_after_seconds,
            } => ApiError::new(S::TOO_MANY_REQUESTS, "rate_limited", "Too many attempts")
                .detail(format!("try again in {retry_after_seconds} s"))
                .retry_after(retry_after_seconds),
            DomainError::LastActiveAdmin => ApiError::new(
                S::CONFLICT,
                "last_admin",
                "The last active system_admin cannot be demoted or disabled",
            ),
            DomainError::NotFound => ApiError::not_found(),
            DomainError::Forbidden => ApiError::new(S::FORBIDDEN, "forbidden", "Not allowed"),
            DomainError::Unavailable(source) => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "A dependency is unavailable",
            )
            .detail("try again shortly")
            .source(source),
            DomainError::Internal(source) => {
                ApiError::new(S::INTERNAL_SERVER_ERROR, "internal_error", "Internal error")
                    .source(source)
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            let chain = self
                .source
                .as_deref()
                .map(|source| ErrorChain(source).to_string())
                .unwrap_or_default();
            tracing::error!(code = self.code, error.chain = %chain, "request failed");
        }
        let problem = Problem {
            kind: format!("urn:sessiond:problem:{}", self.code),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            reason: self.reason.map(InvalidationReason::as_str),
            request_id: self
                .status
                .is_server_error()
                .then(super::request_id::current)
                .flatten(),
        };
        metrics::counter!(crate::metrics::PROBLEMS, "code" => self.code).increment(1);
        let mut response = HttpResponse::build(self.status);
        response.content_type("application/problem+json");
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: the scheme on every 401, the error when a token was refused.
            let challenge = if self.token_presented {
                HeaderValue::from_static("Bearer realm=\"sessiond\", error=\"invalid_token\"")
            } else {
                HeaderValue::from_static("Bearer realm=\"sessiond\"")
            };
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(problem)
    }
}
