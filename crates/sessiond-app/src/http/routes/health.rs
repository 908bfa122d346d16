//! Liveness: the process answers.

use actix_web::{HttpResponse, Scope, web};
use serde_json::json;

pub fn scope() -> Scope {
    web::scope("/health").route("/live", web::get().to(live))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}
