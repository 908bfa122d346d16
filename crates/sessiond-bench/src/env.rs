//! The bench's own stores: a private `redis-server` on a free port (no persistence) and a
//! PostgreSQL database `sessiond_bench_<unix seconds>_<pid>`, migrated with
//! `sessiond_postgres::run_migrations`, dropped at the end. Nothing shared is touched.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use sessiond_domain::model::{SessionId, UserId};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A `redis-server` child process, stopped (by its own handle) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    pub url: String,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start redis-server (is it installed?): {e}"))?;
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if server.connection().await.is_ok() {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("redis-server on port {port} did not answer within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A fresh connection for the bench's own queries (INFO, MEMORY USAGE).
    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url.as_str())?
            .get_multiplexed_async_connection()
            .await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `INFO commandstats` as (command, calls).
pub async fn command_calls(
    conn: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<Vec<(String, u64)>> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    Ok(info
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, fields) = rest.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect())
}

/// `used_memory` from `INFO memory`.
pub async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO memory"))
}

/// How many keys match `pattern` (`SCAN`: the bench's own Redis, never sessiond's way).
pub async fn count_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> anyhow::Result<u64> {
    let mut cursor = 0u64;
    let mut count = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        count += keys.len() as u64;
        if next == 0 {
            return Ok(count);
        }
        cursor = next;
    }
}

/// The Redis key of a session, as sessiond names it with no key prefix (the bench's).
pub fn session_key(user_id: UserId, session_id: SessionId) -> String {
    format!("session:{{{user_id}}}:{session_id}")
}

/// The bench's database on the server named by `BENCH_DATABASE_URL` (default: the local
/// `postgres` superuser, as in the development setup).
#[derive(Debug)]
pub struct BenchDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl BenchDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let admin_url = std::env::var("BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .unwrap_or_else(|_| sessiond_postgres::testing::DEFAULT_ADMIN_URL.to_owned());
        let seconds = crate::now().unix_timestamp();
        let name = format!("sessiond_bench_{seconds}_{}", std::process::id());
        let admin = connect(&admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let url = sessiond_postgres::testing::with_database(&admin_url, &name);
        Ok(Self {
            admin_url,
            name,
            url,
        })
    }

    /// Drops the database (closing any connection still open to it).
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let admin = connect(&self.admin_url).await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// A plain connection for the bench's own SQL.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The rows of a simple query, each as text columns (`""` for NULL).
pub async fn rows(client: &Client, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for message in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = message {
            out.push(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or_default().to_owned())
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// The first column of the first row of `sql`, parsed.
pub async fn scalar<T: std::str::FromStr>(client: &Client, sql: &str) -> anyhow::Result<T> {
    rows(client, sql)
        .await?
        .first()
        .and_then(|row| row.first())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no value from: {sql}"))
}

/// The plan `explain` (an `EXPLAIN …` statement) prints, one line per row.
pub async fn plan(client: &Client, explain: &str) -> anyhow::Result<String> {
    Ok(rows(client, explain)
        .await?
        .into_iter()
        .map(|mut row| row.swap_remove(0))
        .collect::<Vec<_>>()
        .join("\n"))
}
