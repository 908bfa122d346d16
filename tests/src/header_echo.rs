//! An upstream that shows what reached it: every request is answered 200 with a JSON object
//! of the request's headers (names in lower case, each with all its values). The forward-auth
//! tests put it behind a proxy to see exactly which headers the proxy passed on.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The running upstream; dropping it stops accepting.
#[derive(Debug)]
pub struct HeaderEcho {
    port: u16,
    accepting: JoinHandle<()>,
}

impl HeaderEcho {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free local port");
        let port = listener.local_addr().expect("a bound address").port();
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        Self { port, accepting }
    }

    /// `127.0.0.1:<port>`, for a proxy's configuration.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for HeaderEcho {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Answers the requests of one connection until it closes.
async fn serve(stream: TcpStream) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut headers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
            if name == "content-length" {
                content_length = value.parse().unwrap_or(0);
            }
            headers.entry(name).or_default().push(Value::String(value));
        }
        let mut body = vec![0; content_length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let shown = serde_json::to_vec(&headers).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            shown.len()
        );
        let stream = stream.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(&shown).await.is_err()
        {
            return;
        }
    }
}
