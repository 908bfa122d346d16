//! `/admin`: system administrators find users, see the system's figures, manage users and
//! end anyone's sessions.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header::LINK;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use sessiond_domain::model::{
    Email, EmailPrefix, PageSize, Password, Role, UserFilter, UserPosition, UserQuery,
};
use sessiond_domain::ports::UserChange;
use sessiond_domain::service::NewAccount;

use crate::http::authenticated::{AdminCaller, require_admin};
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use crate::http::views::{
    EndedView, RoleSchema, SessionView, StatisticsView, UserDetailView, UserPageView, UserView,
};

/// The search's path, for the `Link` to the next page.
const USERS_PATH: &str = "/api/v1/admin/users";

pub fn scope() -> impl HttpServiceFactory {
    web::scope("/admin")
        .wrap(from_fn(require_admin))
        .service(
            web::resource("/users")
                .route(web::get().to(search_users))
                .route(web::post().to(create_user)),
        )
        .service(
            web::resource("/users/{user_id}")
                .route(web::get().to(user_detail))
                .route(web::patch().to(update_user)),
        )
        .service(web::resource("/stats").route(web::get().to(statistics)))
        .service(
            web::resource("/users/{user_id}/sessions")
                .route(web::get().to(user_sessions))
                .route(web::delete().to(end_user_sessions)),
        )
        .service(web::resource("/sessions/{session_id}").route(web::delete().to(end_session)))
}

/// The search's query string. Every value is text here and parsed below, so that a bad one
/// gets a problem that names it; an empty value is the same as none (a search form's
/// blank fields).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// Users whose e-mail address starts with this, compared in the addresses' normal form
    /// (NFKC, lower case: `ÉVE` finds `éve@…`); `%` and `_` match themselves.
    #[param(value_type = Option<String>, max_length = 254)]
    email: Option<String>,
    #[param(value_type = Option<RoleSchema>)]
    role: Option<String>,
    #[param(value_type = Option<bool>)]
    is_active: Option<String>,
    /// Users per page, 1 to 100; 20 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    page_size: Option<String>,
    /// The `next_page_token` of the previous page (opaque), with the same filters.
    #[param(value_type = Option<String>)]
    page_token: Option<String>,
}

/// A parameter's value, `None` when absent or empty.
fn given(value: Option<&String>) -> Option<&str> {
    value
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
}

impl SearchParams {
    fn query(&self) -> Result<UserQuery, ApiError> {
        let invalid = |e: sessiond_domain::model::InvalidInput| ApiError::validation(e.to_string());
        let email_prefix = match given(self.email.as_ref()) {
            Some(raw) => EmailPrefix::parse(raw).map_err(invalid)?,
            None => None,
        };
        let role = given(self.role.as_ref())
            .map(|raw| {
                raw.parse::<Role>().map_err(|_| {
                    ApiError::validation(
                        "role: must be one of guest, hotel_employee, vendor_admin, system_admin",
                    )
                })
            })
            .transpose()?;
        let is_active = given(self.is_active.as_ref())
            .map(|raw| match raw {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::validation("is_active: must be true or false")),
            })
            .transpose()?;
        let page_size = match given(self.page_size.as_ref()) {
            Some(raw) => raw
                .parse::<u32>()
                .map_err(|_| ApiError::validation("page_size: must be between 1 and 100"))
                .and_then(|size| PageSize::new(size).map_err(invalid))?,
            None => PageSize::default(),
        };
        let after = given(self.page_token.as_ref())
            .map(|raw| UserPosition::from_token(raw).map_err(invalid))
            .transpose()?;
        Ok(UserQuery {
            filter: UserFilter {
                email_prefix,
                role,
                is_active,
            },
            page_size,
            after,
        })
    }
}

/// `/api/v1/admin/users?…` for the page after `next` of `query`, its filters as parsed.
fn next_page_link(query: &UserQuery, next: &str) -> String {
    let mut link = format!("{USERS_PATH}?");
    let filter = &query.filter;
    if let Some(prefix) = &filter.email_prefix {
        link.push_str(&format!("email={}&", percent_encoded(prefix.as_str())));
    }
    if let Some(role) = filter.role {
        link.push_str(&format!("role={role}&"));
    }
    if let Some(is_active) = filter.is_active {
        link.push_str(&format!("is_active={is_active}&"));
    }
    link.push_str(&format!(
        "page_size={}&page_token={}",
        query.page_size.get(),
        percent_encoded(next)
    ));
    link
}

/// `text` as a query-string value: every byte but RFC 3986's unreserved ones as `%XX`.
fn percent_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Finds users: filters, newest first, a page at a time.
///
/// Pages are cut by position, not offset: walking them while users are created meanwhile
/// repeats no user and skips none of those that existed when the walk began.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    params(SearchParams),
    responses(
        (status = 200, description = "A page of users, newest first. When there is a next \
            page, a `Link: <…>; rel=\"next\"` header names it too.", body = UserPageView,
            headers(("Link" = String, description = "`<next page URL>; rel=\"next\"`, when there is one"))),
        (status = 400, description = "A filter, `page_size` or `page_token` is not valid"),
        (status = 414, description = "`uri_too_long`: the query string takes the URL over `http.max_url_bytes`"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn search_users(
    state: web::Data<AppState>,
    caller: AdminCaller,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.query()?;
    let page = state.admin.search_users(&caller.0, &query).await?;
    let view = UserPageView::from(&page);
    let mut response = HttpResponse::Ok();
    if let Some(next) = &view.next_page_token {
        let link = next_page_link(&query, next);
        response.insert_header((LINK, format!("<{link}>; rel=\"next\"")));
    }
    Ok(response.json(view))
}

/// One account: the user, their live sessions and their recent history (who ended each
/// session, and which administrator), in one answer.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{user_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The user id")),
    responses(
        (status = 200, description = "The account", body = UserDetailView),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such user"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn user_detail(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::user_id(&path)?;
    let detail = state.admin.user_detail(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(UserDetailView::new(&detail, caller.0.session.id)))
}

/// The whole system: sessions live by role, and per hour over the last 24 hours sign-ins,
/// failed sign-ins and sessions ended by reason. Read from counters kept as sessions
/// change: the cost does not grow with the sessions.
#[utoipa::path(
    get,
    path = "/api/v1/admin/stats",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The figures", body = StatisticsView),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn statistics(
    state: web::Data<AppState>,
    caller: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let statistics = state.admin.statistics(&caller.0).await?;
    Ok(HttpResponse::Ok().json(StatisticsView::from(&statistics)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    /// Stored in its normal form (NFKC, lower case); invisible characters are refused.
    email: String,
    password: String,
    #[schema(value_type = RoleSchema)]
    role: Role,
    hotel_id: Option<i64>,
}

/// Creates a user of any role.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 409, description = "`email_taken`"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn create_user(
    state: web::Data<AppState>,
    caller: AdminCaller,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = NewAccount {
        email: Email::parse(&body.email).map_err(|e| ApiError::validation(e.to_string()))?,
        password: Password::new_secret(body.password, "password")
            .map_err(|e| ApiError::validation(e.to_string()))?,
        role: body.role,
        hotel_id: body.hotel_id,
    };
    let user = state.admin.create_user(&caller.0, account).await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserRequest {
    #[schema(value_type = Option<RoleSchema>)]
    role: Option<Role>,
    is_active: Option<bool>,
}

/// Changes a user's role or active flag; either ends all the user's sessions
/// (`role_changed`, `account_disabled`).
#[utoipa::path(
    patch,
    path = "/api/v1/admin/users/{user_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The user id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The user as changed", body = UserView),
        (status = 400, description = "Malformed JSON or a field out of range"),
        (status = 413, description = "The body is over the JSON limit"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such user"),
        (status = 409, description = "`last_admin`: the last active system_admin cannot be demoted or disabled"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn update_user(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: web::Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = super::user_id(&path)?;
    let change = UserChange {
        role: body.role,
        is_active: body.is_active,
    };
    let user = state.admin.update_user(&caller.0, id, change).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// Any user's live sessions.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{user_id}/sessions",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user's live sessions", body = [SessionView]),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such user"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn user_sessions(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::user_id(&path)?;
    let sessions = state.admin.user_sessions(&caller.0, id).await?;
    let current = caller.0.session.id;
    let views: Vec<SessionView> = sessions
        .iter()
        .map(|session| SessionView::new(session, current))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Ends all of a user's sessions (`admin_revoked`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{user_id}/sessions",
    tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path, description = "The user id")),
    responses(
        (status = 200, description = "How many ended", body = EndedView),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such user"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn end_user_sessions(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::user_id(&path)?;
    let revoked = state.admin.end_user_sessions(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(EndedView::many(revoked, "")))
}

/// Ends one session of anyone (`admin_revoked`).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/sessions/{session_id}",
    tag = "admin",
    security(("bearer" = [])),
    params(("session_id" = uuid::Uuid, Path, description = "The session id")),
    responses(
        (status = 200, description = "Ended", body = EndedView),
        (status = 400, description = "The id is not a UUID"),
        (status = 401, description = "No, a bad or an expired access token, or the session ended (`reason` says why)"),
        (status = 403, description = "`forbidden`: the caller is not a `system_admin`"),
        (status = 404, description = "No such session"),
        (status = 503, description = "A store is unavailable; retry shortly"),
    )
)]
async fn end_session(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::session_id(&path)?;
    state.admin.end_session(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(EndedView::one()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<UserQuery, ApiError> {
        let query: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}&", percent_encoded(v)))
            .collect();
        let parsed: SearchParams = parse(&query);
        parsed.query()
    }

    /// The query string as actix's `web::Query` reads it.
    fn parse(query: &str) -> SearchParams {
        web::Query::<SearchParams>::from_query(query)
            .map(web::Query::into_inner)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    #[test]
    fn blank_values_are_no_filter_and_bad_ones_are_refused() {
        let query = params(&[("email", " "), ("role", ""), ("page_size", "")]).unwrap();
        assert_eq!(query, UserQuery::default());
        for bad in [
            ("role", "emperor"),
            ("is_active", "yes"),
            ("page_size", "0"),
            ("page_size", "101"),
            ("page_size", "-1"),
            ("page_token", "garbage"),
            ("email", "a b"),
        ] {
            let refused = params(&[bad]).unwrap_err();
            assert_eq!(refused.code(), "validation_failed", "{bad:?}");
        }
    }

    #[test]
    fn the_next_link_repeats_the_filters_as_parsed() {
        let query = params(&[
            ("email", "ÉVE+%"),
            ("role", "guest"),
            ("is_active", "false"),
            ("page_size", "5"),
        ])
        .unwrap();
        assert_eq!(
            next_page_link(&query, "tok-en_"),
            "/api/v1/admin/users?email=%C3%A9ve%2B%25&role=guest&is_active=false&page_size=5\
             &page_token=tok-en_"
        );
        let position = UserPosition {
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            id: sessiond_domain::model::UserId::from_uuid(uuid::Uuid::nil()),
        };
        let link = next_page_link(&query, &position.to_token());
        let parsed = parse(link.trim_start_matches("/api/v1/admin/users?"));
        let next = parsed.query().unwrap();
        assert_eq!(next.filter, query.filter);
        assert_eq!(next.after, Some(position));
    }
}
