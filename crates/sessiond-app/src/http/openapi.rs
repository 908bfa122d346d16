//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the API, generated from the route
//! annotations and the wire types (utoipa). The domain knows nothing of it: domain enums that
//! reach the wire (`Role`, the invalidation reasons) are described by mirrors next to the
//! views, and the tests below keep each mirror equal to the domain's list.
//!
//! Route annotations list only the statuses a route really answers; error statuses carry just
//! a description there, and `ProblemResponses` gives each of them the problem-details body,
//! so the annotations stay short and every error is described the same way.

use std::sync::LazyLock;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, Resource, web};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::problem::Problem;
use super::routes::{account, admin, auth, forward_auth, health, keys, sessions};
use super::views::{
    AdminEndedSessionView, AdministratorView, CurrentView, EndedSessionView, EndedView, HourView,
    JwkSetView, JwkView, Liveness, PrincipalView, Readiness, ReadinessChecks, ReasonSchema,
    RedisClusterCheck, RoleCountsView, RoleSchema, SessionView, StatisticsView, StoreStatus,
    TokenView, UserDetailView, UserPageView, UserView,
};

/// The name of the Bearer security scheme in the document.
pub const BEARER: &str = "bearer";

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        description = "Session management: sign-in on many devices, token refresh, listing and \
            ending sessions, administration. JSON under `/api/v1`; errors are RFC 9457 \
            `application/problem+json` with a stable `code`. Authenticated routes take \
            `Authorization: Bearer <access token>`. With `jwt.algorithm` ES256 or EdDSA, \
            other services can verify access tokens offline with the public keys at \
            `GET /.well-known/jwks.json`; a token verified so may belong to a session ended \
            since (it stays valid until it expires): for a live answer ask sessiond \
            (`GET /api/v1/sessions/current`, or forward-auth's `/api/v1/auth/check`). Not \
            described here: the web UI (`/`) and \
            its cookie endpoints under `/ui/auth`, which serve only the same-origin page, and \
            `GET /metrics` (Prometheus text), which is served on a listener of its own \
            (`METRICS_ADDR`, default `127.0.0.1:9464`), never on this one.",
        license(name = "MIT"),
    ),
    paths(
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        forward_auth::check,
        forward_auth::check_below,
        sessions::list,
        sessions::end_others,
        sessions::current,
        sessions::history,
        sessions::end_one,
        account::profile,
        account::change_password,
        admin::search_users,
        admin::create_user,
        admin::user_detail,
        admin::update_user,
        admin::statistics,
        admin::user_sessions,
        admin::end_user_sessions,
        admin::end_session,
        health::live,
        health::ready,
        keys::jwks,
    ),
    components(schemas(
        Problem,
        RoleSchema,
        ReasonSchema,
        SessionView,
        EndedSessionView,
        UserView,
        UserPageView,
        UserDetailView,
        AdminEndedSessionView,
        AdministratorView,
        StatisticsView,
        RoleCountsView,
        HourView,
        TokenView,
        CurrentView,
        PrincipalView,
        EndedView,
        Liveness,
        Readiness,
        ReadinessChecks,
        RedisClusterCheck,
        StoreStatus,
        JwkSetView,
        JwkView,
    )),
    modifiers(&BearerScheme, &ProblemResponses),
    tags(
        (name = "auth", description = "Registration, sign-in, refresh, sign-out"),
        (name = "sessions", description = "The caller's own sessions"),
        (name = "account", description = "The caller's account"),
        (name = "admin", description = "System administrators only (403 for other roles)"),
        (name = "operations", description = "Health"),
        (name = "keys", description = "Public keys of the access tokens, for offline verification"),
    )
)]
pub struct ApiDoc;

/// The document as served, rendered once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|e| format!(r#"{{"error":"cannot render the OpenAPI document: {e}"}}"#))
});

pub fn resource() -> Resource {
    web::resource("/api/openapi.json").route(web::get().to(document))
}

async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(DOCUMENT.as_str())
}

/// The Bearer scheme of the authenticated routes.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access token of `POST /api/v1/auth/login` or `/auth/refresh`",
                    ))
                    .build(),
            ),
        );
    }
}

/// Gives every 4xx/5xx answer declared without a body the problem-details body, and adds
/// the answers the HTTP edge gives on any route of a kind: 400 where an `Authorization`
/// header is read (two of them are refused), 408 where a body is read (one that takes
/// longer than `http.body_timeout_ms`).
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let problem = ContentBuilder::new()
            .schema(Some(RefOr::<utoipa::openapi::schema::Schema>::Ref(
                Ref::from_schema_name("Problem"),
            )))
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    responses.entry("400".to_owned()).or_insert_with(|| {
                        RefOr::T(Response::new(
                            "A malformed request, e.g. more than one `Authorization` header",
                        ))
                    });
                }
                if operation.request_body.is_some() {
                    responses.entry("408".to_owned()).or_insert_with(|| {
                        RefOr::T(Response::new(
                            "The body did not arrive within `http.body_timeout_ms`",
                        ))
                    });
                }
                for (status, response) in responses {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let RefOr::T(response) = response
                        && is_error
                        && response.content.is_empty()
                    {
                        response
                            .content
                            .insert("application/problem+json".to_owned(), problem.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sessiond_domain::model::{InvalidationReason, Role};

    use super::*;

    fn enum_values(schema: &str) -> Vec<String> {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_role_mirror_lists_every_role() {
        let domain: Vec<String> = Role::ALL.iter().map(|r| r.as_str().to_owned()).collect();
        assert_eq!(enum_values("Role"), domain);
    }

    #[test]
    fn the_reason_mirror_lists_every_reason() {
        let domain: Vec<String> = InvalidationReason::ALL
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        assert_eq!(enum_values("InvalidationReason"), domain);
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3.1"));
    }
}
