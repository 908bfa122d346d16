//! The bytes on the API's connections. actix's HTTP/1 parser answers a few requests itself,
//! below every middleware, with a status line and no body: a head over its 128 KiB buffer
//! or with more than 96 headers (431), a head it cannot parse (400), a head that takes longer
//! than the head timeout (408). [`ProblemWire`] sits between the socket and the parser and
//! gives those answers the problem body (RFC 9457) that every other error has.
//!
//! It recognises them by what no other answer of this service looks like: a 4xx or 5xx head
//! with `content-length: 0` and no `content-type` (every error the application makes is
//! `application/problem+json`, and a `HEAD` answer keeps the length of its body).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose body-less error answers get a problem body.
#[derive(Debug)]
pub struct ProblemWire<T> {
    io: T,
    /// A replacement answer not yet written, and how much of it is.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ProblemWire<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> ProblemWire<T> {
    /// Writes what is left of a replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemWire<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemWire<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        match bare_answer(buf) {
            // Earlier answers (pipelined) go out as they are first.
            Some(bare) if bare.start > 0 => {
                Pin::new(&mut this.io).poll_write(cx, &buf[..bare.start])
            }
            Some(bare) => {
                this.pending = bare.replacement;
                // Taken as written: the rest goes out on the next write, flush or shutdown.
                if let Poll::Ready(Err(error)) = this.drain(cx) {
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(Ok(bare.end))
            }
            None => Pin::new(&mut this.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// A body-less error answer found in the bytes being written: where its head starts and
/// ends, and the answer to write instead.
#[derive(Debug)]
struct Bare {
    start: usize,
    end: usize,
    replacement: Vec<u8>,
}

/// Where `needle` first occurs in `haystack`. Every answer's bytes pass through here, so
/// the search is memchr's vectorised one (a byte-by-byte scan of each body was 5 % of a
/// worker's time under load).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The first body-less 4xx/5xx answer in `bytes`, if any.
fn bare_answer(bytes: &[u8]) -> Option<Bare> {
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], b"HTTP/1.") {
        let start = from + at;
        from = start + 1;
        let head_length = find(&bytes[start..], b"\r\n\r\n")? + 4;
        let head = &bytes[start..start + head_length];
        let status = head
            .get(9..12)
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse::<u16>().ok());
        let Some(status) = status.filter(|status| (400..600).contains(status)) else {
            continue;
        };
        let lowered = head.to_ascii_lowercase();
        if find(&lowered, b"\r\ncontent-length: 0\r\n").is_none()
            || find(&lowered, b"\r\ncontent-type:").is_some()
        {
            continue;
        }
        return Some(Bare {
            start,
            end: start + head_length,
            replacement: with_problem(head, status),
        });
    }
    None
}

/// `head` (a body-less answer) with a problem body.
fn with_problem(head: &[u8], status: u16) -> Vec<u8> {
    let (code, title) = match status {
        400 => ("bad_request", "The request cannot be parsed"),
        408 => ("request_timeout", "The request head took too long"),
        413 => ("payload_too_large", "The request is too large"),
        431 => ("headers_too_large", "The request headers are too large"),
        _ if status >= 500 => ("internal_error", "Internal error"),
        _ => ("bad_request", "The request cannot be served"),
    };
    metrics::counter!(crate::metrics::PROBLEMS, "code" => code).increment(1);
    let body = json!({
        "type": format!("urn:sessiond:problem:{code}"),
        "title": title,
        "status": status,
        "detail": title,
        "code": code,
    })
    .to_string();
    let text = String::from_utf8_lossy(head);
    let mut answer = String::with_capacity(head.len() + body.len() + 200);
    for line in text.split("\r\n").filter(|line| !line.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("content-length:") {
            answer.push_str(line);
            answer.push_str("\r\n");
        }
    }
    answer.push_str("content-type: application/problem+json\r\n");
    answer.push_str(&format!("content-length: {}\r\n", body.len()));
    answer.push_str("x-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n");
    answer.push_str("cache-control: no-store\r\n\r\n");
    answer.push_str(&body);
    answer.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE_431: &[u8] =
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
        connection: close\r\ndate: Wed, 02 Dec 2026 07:42:16 GMT\r\n\r\n";

    #[test]
    fn a_bare_error_answer_gets_a_problem_body() {
        let bare = bare_answer(BARE_431).unwrap();
        assert_eq!((bare.start, bare.end), (0, BARE_431.len()));
        let text = String::from_utf8(bare.replacement).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("connection: close"));
        assert!(head.contains("date: Wed"));
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(!head.contains("content-length: 0"));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["code"], "headers_too_large");
        assert_eq!(problem["status"], 431);
    }

    #[test]
    fn answers_with_a_body_or_a_success_are_left_alone() {
        for answer in [
            &b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ncontent-type: application/problem+json\r\n\r\n",
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 164\r\ncontent-type: application/problem+json\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Req",
        ] {
            assert!(bare_answer(answer).is_none(), "{}", String::from_utf8_lossy(answer));
        }
    }

    #[test]
    fn a_bare_answer_after_pipelined_ones_is_found_where_it_starts() {
        let mut bytes = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        let start = bytes.len();
        bytes.extend_from_slice(BARE_431);
        let bare = bare_answer(&bytes).unwrap();
        assert_eq!((bare.start, bare.end), (start, bytes.len()));
    }
}
