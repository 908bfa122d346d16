//! `/auth`: register, sign in, refresh, sign out, and the proxies' check (`forward_auth`).

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, Scope, web};
use serde::Deserialize;
use sessiond_domain::model::{DeviceName, DeviceToken, Email, NewSessionContext, Password};
use sessiond_domain::service::{SignIn, SignedIn};

use super::no_content;
use crate::http::authenticated::Authenticated;
use crate::http::client::ClientInfo;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::{TokenView, UserView};

pub fn scope() -> Scope {
    web::scope("/auth")
        .service(web::resource("/register").route(web::post().to(register)))
        .service(web::resource("/login").route(web::post().to(login)))
        .service(web::resource("/refresh").route(web::post().to(refresh)))
        .service(web::resource("/logout").route(web::post().to(logout)))
        .service(super::forward_auth::resource())
        .service(super::forward_auth::resource_below())
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RegisterRequest {
    /// Stored in its normal form (NFKC, lower case): full-width letters or decomposed
    /// accents name the same account. Invisible characters (zero-width spaces and joiners,
    /// soft hyphens, text-direction controls) are refused.
    email: String,
    password: String,
}

/// Registers a new account with the role `guest`. Registrations are counted per client
/// address (successful or not): beyond `sessions.max_registrations_per_ip` (default 20) in
/// a throttle window (default 15 minutes), 429 until the window ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 409, description = "`email_taken`"),
        (status = 429, description = "`rate_limited`: too many registrations from this address; see `Retry-After`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn register(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = Email::parse(&body.email).map_err(|e| ApiError::validation(e.to_string()))?;
    let password = Password::new_secret(body.password, "password")
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let user = state.accounts.register(email, password, client.ip).await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// A sign-in, as the API and the web UI receive it.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LoginRequest {
    /// Compared in its normal form (NFKC, lower case).
    email: String,
    password: String,
    /// A name for this device, shown in the account's session lists: trimmed, at most 100
    /// characters, no control characters, line separators or text-direction controls.
    #[schema(max_length = 100)]
    device_name: Option<String>,
    /// The `device_token` of this device's last sign-in answer, if it kept one. A valid one
    /// makes this a known device: its failed sign-ins are counted on their own (5 per 15
    /// minutes by default), and failures of strangers on the account or the network
    /// address do not lock it out. An expired or unknown one is ignored.
    device_token: Option<String>,
}

impl LoginRequest {
    /// The domain's sign-in attempt from this body and the caller's connection.
    pub(crate) fn into_sign_in(self, client: ClientInfo) -> Result<SignIn, ApiError> {
        let password =
            Password::presented(self.password).map_err(|e| ApiError::validation(e.to_string()))?;
        let device_name = match self.device_name.as_deref().map(DeviceName::parse) {
            Some(parsed) => parsed.map_err(|e| ApiError::validation(e.to_string()))?,
            None => None,
        };
        Ok(SignIn {
            email: self.email,
            password,
            context: NewSessionContext {
                ip_address: client.ip,
                user_agent: client.user_agent,
                device_name: device_name.map(DeviceName::into_string),
                device_token: self.device_token.map(DeviceToken::presented),
            },
        })
    }
}

/// Signs in on this device: a new session and its token pair, and a `device_token` to send
/// back at the next sign-in.
///
/// Failed sign-ins are counted in 15-minute windows: 5 per account and 50 per client
/// address by default, then 429 until the window ends, even with the right password. A
/// sign-in that presents a valid `device_token` of the account (a device that signed in
/// before) is counted against that device alone, under the account's limit, and is not
/// refused because strangers exhausted the account's or the address's count.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenView),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 401, description = "`invalid_credentials`: wrong e-mail or password"),
        (status = 403, description = "`account_disabled`"),
        (status = 409, description = "`max_sessions_reached`: the role refuses sign-ins at its maximum"),
        (status = 429, description = "`rate_limited`: too many failed sign-ins for this account, address or device; see `Retry-After`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn login(
    state: web::Data<AppState>,
    client: ClientInfo,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = state
        .auth
        .sign_in(body.into_inner().into_sign_in(client)?)
        .await?;
    Ok(tokens(&state, &signed_in))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RefreshRequest {
    refresh_token: String,
}

/// Trades the refresh token for a new pair and slides the session's expiry. Each refresh
/// token works once.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A rotated token pair", body = TokenView),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 401, description = "`refresh_token_invalid`, `refresh_token_rotated`, `session_revoked` (a reused token ends the session) or `session_expired`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = state.auth.refresh(&body.refresh_token).await?;
    Ok(tokens(&state, &signed_in))
}

/// Ends the current session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn logout(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.sessions.sign_out(&caller.0).await?;
    Ok(no_content())
}

/// A token pair: never cached by anyone on the way.
fn tokens(state: &AppState, signed_in: &SignedIn) -> HttpResponse {
    let policy = state.auth.policy();
    let view = TokenView::new(signed_in, policy.refresh_threshold.whole_seconds());
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(view)
}
