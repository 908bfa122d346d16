//! The web UI's page and assets (SPEC §6): the files of `crates/sessiond-app/web/`, embedded
//! in the binary with `include_bytes!` and served at `/`. No build step: what is in `web/` is
//! what runs.
//!
//! `GET /` answers the page; its scripts and styles live under `/assets/<version>/…`, where
//! the version is a digest of every asset, so they can be cached for a year (`immutable`) and
//! a new binary is never mixed with an old script. Every UI response carries a strict
//! Content-Security-Policy (no inline script or style) and the usual hardening headers.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder, Resource, web};

use crate::http::problem::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("chart.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("format.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html"));

/// What the page may load and do: only this origin's scripts, styles and API; no inline
/// code, no plugins, no framing; DOM sinks only through Trusted Types (the UI uses none).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
    trusted-types 'none'";

/// A digest of every asset: it changes whenever one of them does.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across Rust releases and builds, enough to tell versions apart.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bodies = ASSETS
        .iter()
        .map(|asset| asset.body)
        .chain([INDEX_TEMPLATE.as_bytes()]);
    for body in bodies {
        for byte in body {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
});

/// The page, pointing at this build's assets.
static INDEX: LazyLock<String> =
    LazyLock::new(|| INDEX_TEMPLATE.replace("{{version}}", VERSION.as_str()));

/// `GET /` and `GET /assets/{version}/{name}`. Nothing else: unknown paths keep falling to
/// the API's 404 problem handler.
pub fn resources() -> (Resource, Resource) {
    (
        web::resource("/").route(web::get().to(index)),
        web::resource("/assets/{version}/{name}").route(web::get().to(asset)),
    )
}

/// Adds the headers every UI response carries.
pub fn harden(response: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        ))
        .insert_header((
            "cross-origin-resource-policy",
            HeaderValue::from_static("same-origin"),
        ))
        .insert_header((
            "permissions-policy",
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
        ))
}

async fn index() -> HttpResponse {
    harden(&mut HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        // Always revalidate the page: it names the current assets.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(INDEX.as_str())
}

async fn asset(path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (version, name) = path.into_inner();
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or_else(|| ApiError::not_found().detail(format!("no asset {name}")))?;
    // An old page asking for an old version (a deploy in between) still gets today's file,
    // but nobody may keep it.
    let cache = if version == *VERSION {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(harden(&mut HttpResponse::Ok())
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .body(asset.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_versioned_assets_that_exist() {
        assert!(!INDEX.contains("{{version}}"));
        for name in ["app.js", "style.css", "favicon.svg"] {
            let path = format!("/assets/{}/{name}", *VERSION);
            assert!(INDEX.contains(&path), "index.html does not load {path}");
            assert!(ASSETS.iter().any(|asset| asset.name == name));
        }
    }

    #[test]
    fn the_policy_allows_no_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!INDEX.contains("<style"));
        assert!(!INDEX.contains("style="));
        assert!(!INDEX.contains("<script>"));
    }
}
