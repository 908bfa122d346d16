//! The two reference servers sessiond is measured against, on the same actix-web runtime
//! shape (same worker count) and under the same load:
//!
//! - **floor**: one Redis `GET` per request over ONE shared multiplexed connection, keyed by
//!   the bearer value: the practical limit of any Redis-backed validation. The connection is
//!   opened at start-up on the servers' runtime, as `RedisSessionCache::connect` opens
//!   sessiond's (its start-up `PING`), so both drive their connection from the same threads;
//! - **floor, per worker**: the same `GET`, over a connection per actix worker opened on the
//!   worker's first request (so driven on the worker's own thread), as sessiond's are: what
//!   the same connection shape costs without sessiond's own work. Reported beside the
//!   floor, which stays the target's reference;
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

/// A worker's own connection, opened by its first request.
struct WorkerFloor {
    url: String,
    conn: tokio::sync::OnceCell<MultiplexedConnection>,
}

fn bearer(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The one `GET` both floors make, and its answer.
async fn answer_from(conn: &MultiplexedConnection, key: &str) -> HttpResponse {
    let mut conn = conn.clone();
    let value: redis::RedisResult<Option<Vec<u8>>> =
        redis::cmd("GET").arg(key).query_async(&mut conn).await;
    match value {
        Ok(Some(bytes)) => HttpResponse::Ok().body(bytes),
        Ok(None) => HttpResponse::Unauthorized().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn floor(state: web::Data<Floor>, request: HttpRequest) -> HttpResponse {
    match bearer(&request) {
        Some(key) => answer_from(&state.conn, key).await,
        None => HttpResponse::Unauthorized().finish(),
    }
}

async fn floor_per_worker(state: web::Data<WorkerFloor>, request: HttpRequest) -> HttpResponse {
    let Some(key) = bearer(&request) else {
        return HttpResponse::Unauthorized().finish();
    };
    let opened = state
        .conn
        .get_or_try_init(|| async {
            redis::Client::open(state.url.as_str())?
                .get_multiplexed_async_connection()
                .await
        })
        .await;
    match opened {
        Ok(conn) => answer_from(conn, key).await,
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn ceiling(state: web::Data<HashMap<String, Bytes>>, request: HttpRequest) -> HttpResponse {
    match bearer(&request).and_then(|key| state.get(key)) {
        Some(bytes) => HttpResponse::Ok().body(bytes.clone()),
        None => HttpResponse::Unauthorized().finish(),
    }
}

/// Serves `configure`'s routes on a free port with `workers` actix workers (the factory,
/// so `configure`, runs once per worker); returns the address.
fn serve<F>(workers: usize, configure: F) -> anyhow::Result<SocketAddr>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(workers)
        .listen(listener)?
        .run();
    tokio::spawn(server);
    Ok(addr)
}

/// Starts the floor server on a free port; returns its address.
pub async fn spawn_floor(redis_url: &str, workers: usize) -> anyhow::Result<SocketAddr> {
    let conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let state = web::Data::new(Floor { conn });
    serve(workers, move |config| {
        config
            .app_data(state.clone())
            .route("/floor", web::get().to(floor));
    })
}

/// Starts the per-worker floor server on a free port; returns its address.
pub fn spawn_floor_per_worker(redis_url: &str, workers: usize) -> anyhow::Result<SocketAddr> {
    let url = redis_url.to_owned();
    serve(workers, move |config| {
        // Once per worker: each gets its own (lazily opened) connection.
        config
            .app_data(web::Data::new(WorkerFloor {
                url: url.clone(),
                conn: tokio::sync::OnceCell::new(),
            }))
            .route("/floor", web::get().to(floor_per_worker));
    })
}

/// Starts the ceiling server on a free port over `values` (key → cached value).
pub fn spawn_ceiling(values: HashMap<String, Bytes>, workers: usize) -> anyhow::Result<SocketAddr> {
    let state = web::Data::new(values);
    serve(workers, move |config| {
        config
            .app_data(state.clone())
            .route("/ceiling", web::get().to(ceiling));
    })
}
