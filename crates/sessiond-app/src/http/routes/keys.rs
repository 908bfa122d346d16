//! `GET /.well-known/jwks.json` (issue 17): the public keys of the access tokens, so that
//! other services verify them offline (RFC 8414's well-known location of a JWKS). Public,
//! outside `/api/v1`, and cacheable by anyone: it holds no secret and changes only when
//! the keys do, at a restart. With HS256 the set is empty, never the secret: a JWKS client
//! then finds no key for any `kid` rather than failing on a 404.

use actix_web::http::header::{CACHE_CONTROL, ContentType, HeaderValue};
use actix_web::{HttpResponse, Resource, web};

use crate::http::state::AppState;
use crate::http::views::JwkSetView;

/// How long a verifier may reuse the set: a new key published this long ahead of the
/// rotation that makes it sign is known to every verifier that honours the header (see
/// README, "Asymmetric access tokens").
pub const CACHE_CONTROL_VALUE: &str = "public, max-age=300";

pub fn resource() -> Resource {
    web::resource("/.well-known/jwks.json").route(web::get().to(jwks))
}

/// The public keys that verify access tokens: the current one first, then the previous
/// ones still accepted. Empty with HS256 (its keys are secrets): use
/// `GET /api/v1/sessions/current` then. A token that verifies offline may still belong to
/// a session ended since it was issued; only sessiond can tell, until the token expires.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    responses((
        status = 200,
        description = "The JSON Web Key Set",
        body = JwkSetView,
        headers(("Cache-Control" = String, description = "`public, max-age=300`")),
    ))
)]
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE)))
        .insert_header(ContentType::json())
        .body(state.jwks.clone())
}

/// The set's body, rendered once.
pub(crate) fn render(keys: &[sessiond_jwt::PublicJwk]) -> web::Bytes {
    // Strings only: serialising them cannot fail; an empty set is the safe answer if it did.
    serde_json::to_vec(&JwkSetView::new(keys))
        .map_or_else(|_| web::Bytes::from_static(br#"{"keys":[]}"#), Into::into)
}
