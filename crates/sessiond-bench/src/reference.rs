//! The two reference servers sessiond is measured against, on the same actix-web runtime
//! shape (same worker count) and under the same load:
//!
//! - **floor**: one Redis `GET` per request over ONE shared multiplexed connection, keyed by
//!   the bearer value: the practical limit of any Redis-backed validation. The connection is
//!   opened at start-up on the servers' runtime, as `RedisSessionCache::connect` opens
//!   sessiond's (its start-up `PING`), so both drive their connection from the same threads;
//! - **ceiling**: the same handler reading an in-process map: what no network costs.
//!
//! The bearer value the load generator sends them is the session's Redis key itself, so
//! neither does any token decoding: everything sessiond does beyond that one `GET` (JWT
//! verification, decoding the cached value, JSON rendering) shows up in the ratio.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use deadpool_redis::redis::{self, aio::MultiplexedConnection};

struct Floor {
    conn: MultiplexedConnection,
}

fn bearer(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn floor(state: web::Data<Floor>, request: HttpRequest) -> HttpResponse {
    let Some(key) = bearer(&request) else {
        return HttpResponse::Unauthorized().finish();
    };
    let mut conn = state.conn.clone();
    let value: redis::RedisResult<Option<Vec<u8>>> =
        redis::cmd("GET").arg(key).query_async(&mut conn).await;
    match value {
        Ok(Some(bytes)) => HttpResponse::Ok().body(bytes),
        Ok(None) => HttpResponse::Unauthorized().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn ceiling(state: web::Data<HashMap<String, Bytes>>, request: HttpRequest) -> HttpResponse {
    match bearer(&request).and_then(|key| state.get(key)) {
        Some(bytes) => HttpResponse::Ok().body(bytes.clone()),
        None => HttpResponse::Unauthorized().finish(),
    }
}

/// Starts the floor server on a free port; returns its address.
pub async fn spawn_floor(redis_url: &str, workers: usize) -> anyhow::Result<SocketAddr> {
    let conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let state = web::Data::new(Floor { conn });
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/floor", web::get().to(floor))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(addr)
}

/// Starts the ceiling server on a free port over `values` (key → cached value).
pub fn spawn_ceiling(values: HashMap<String, Bytes>, workers: usize) -> anyhow::Result<SocketAddr> {
    let state = web::Data::new(values);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/ceiling", web::get().to(ceiling))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(addr)
}
