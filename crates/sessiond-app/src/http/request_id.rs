//! The request id: the client's `X-Request-Id` when it is plain, else a made-up one, known to
//! everything that runs for the request (its log lines, its 5xx problem body).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The header that carries the id, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of a request with `headers`: the client's own when it is plain, else a new one.
pub fn of(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(accepted_id)
        .unwrap_or_else(new_request_id)
}

/// Runs `future` as the request `id`: what it runs can ask for [`current`].
pub fn scope<F: Future>(id: String, future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, future)
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A fresh id: a random per-process prefix and a counter. Unique across instances and
/// restarts, and no system call per request (a v4 UUID each time cost one).
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| Uuid::new_v4().simple().to_string());
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    // By hand: `format!` was the largest part of the request middleware's own time.
    let digits = (64 - count.leading_zeros()).div_ceil(4).max(1);
    let mut id = String::with_capacity(prefix.len() + 1 + digits as usize);
    id.push_str(prefix);
    id.push('-');
    for shift in (0..digits).rev() {
        let digit = u32::try_from((count >> (shift * 4)) & 0xf).unwrap_or(0);
        id.push(char::from_digit(digit, 16).unwrap_or('0'));
    }
    id
}

/// A client's request id is kept when it is short and plain; anything else is replaced,
/// so ids stay safe to log and to echo.
fn accepted_id(value: &HeaderValue) -> Option<String> {
    let id = value.to_str().ok()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    (!id.is_empty() && id.len() <= 64 && id.chars().all(plain)).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_ids_are_a_process_prefix_and_a_hex_counter() {
        let first = new_request_id();
        let second = new_request_id();
        let (prefix, count) = first.rsplit_once('-').unwrap();
        assert_eq!(prefix.len(), 32);
        let next = u64::from_str_radix(count, 16).unwrap() + 1;
        // Other tests of this process may draw ids in between.
        let (second_prefix, second_count) = second.rsplit_once('-').unwrap();
        assert_eq!(second_prefix, prefix);
        assert!(u64::from_str_radix(second_count, 16).unwrap() >= next);
        assert!(accepted_id(&HeaderValue::from_str(&first).unwrap()).is_some());
    }

    #[test]
    fn client_request_ids_are_kept_only_when_plain_and_short() {
        let id = |s: &str| accepted_id(&HeaderValue::from_str(s).unwrap());
        assert_eq!(id("abc-123_x.y:z").as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(id(""), None);
        assert_eq!(id("has space"), None);
        assert_eq!(id("evil\"quote"), None);
        assert_eq!(id(&"a".repeat(65)), None);
    }
}
