//! What the connection says about the client: its address (believing forwarding headers
//! only from trusted proxies, SPEC §1) and its User-Agent.

use std::future::{Ready, ready};
use std::net::{IpAddr, SocketAddr};

use actix_web::dev::Payload;
use actix_web::http::header::{FORWARDED, USER_AGENT};
use actix_web::{FromRequest, HttpRequest, web};
use ipnet::IpNet;
use sessiond_domain::model::is_bidi_control;

use super::problem::ApiError;
use super::state::AppState;

/// Longest User-Agent kept, in bytes: enough for any real browser, bounded against abuse.
const MAX_USER_AGENT_BYTES: usize = 512;

/// The client's address and User-Agent.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl FromRequest for ClientInfo {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = request
            .app_data::<web::Data<AppState>>()
            .map(|state| state.http.trusted_proxies.as_slice())
            .unwrap_or_default();
        let user_agent = request
            .headers()
            .get(USER_AGENT)
            .map(|value| stored_user_agent(value.as_bytes()));
        ready(Ok(ClientInfo {
            ip: client_ip(request, trusted),
            user_agent,
        }))
    }
}

/// The User-Agent as sessiond keeps and shows it. A header is not a user's typing, so
/// nothing in it refuses the request: bytes that are not UTF-8, control characters (a tab,
/// DEL, C1) and text-direction controls each become U+FFFD, so that the stored text can
/// neither break a store nor reorder a session list on screen; the result is cut to
/// [`MAX_USER_AGENT_BYTES`] on a character boundary.
fn stored_user_agent(header: &[u8]) -> String {
    let decoded = String::from_utf8_lossy(header);
    let mut kept = String::with_capacity(decoded.len().min(MAX_USER_AGENT_BYTES));
    for c in decoded.trim().chars() {
        let c = if c.is_control() || is_bidi_control(c) {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        };
        if kept.len() + c.len_utf8() > MAX_USER_AGENT_BYTES {
            break;
        }
        kept.push(c);
    }
    kept
}

/// The peer address, or — when the peer is a trusted proxy — the nearest address in the
/// forwarding chain that is not a trusted proxy. `Forwarded` wins over `X-Forwarded-For`.
fn client_ip(request: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = request.peer_addr().map(|addr| addr.ip())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let headers = request.headers();
    let chain: Vec<&str> = if let Some(forwarded) = headers.get(FORWARDED) {
        forwarded_for(forwarded.to_str().ok()?)
    } else if let Some(xff) = headers.get("x-forwarded-for") {
        xff.to_str().ok()?.split(',').map(str::trim).collect()
    } else {
        return Some(peer);
    };
    let mut nearest = peer;
    for hop in chain.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // An unreadable hop: trust nothing beyond it.
            return Some(nearest);
        };
        if !is_trusted(&ip) {
            return Some(ip);
        }
        nearest = ip;
    }
    Some(nearest)
}

/// The `for=` values of a `Forwarded` header (RFC 7239), in order.
fn forwarded_for(header: &str) -> Vec<&str> {
    header
        .split(',')
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("for")
                .then(|| value.trim().trim_matches('"'))
        })
        .collect()
}

/// An address from a forwarding header: `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`, `::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn request(peer: &str, header: Option<(&str, &str)>) -> HttpRequest {
        let mut request = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(header) = header {
            request = request.insert_header(header);
        }
        request.to_http_request()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_user_agent_is_kept_whole_when_it_is_plain() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
        assert_eq!(stored_user_agent(ua.as_bytes()), ua);
    }

    #[test]
    fn control_and_direction_characters_in_the_user_agent_are_replaced() {
        let with_tab = TestRequest::default()
            .insert_header((USER_AGENT, "Evil\tAgent"))
            .to_http_request();
        let client = ClientInfo::from_request(&with_tab, &mut Payload::None)
            .into_inner()
            .unwrap();
        assert_eq!(client.user_agent.as_deref(), Some("Evil\u{FFFD}Agent"));
        // UTF-8 bytes (obs-text to HTTP) are kept, not dropped; broken ones are replaced.
        let utf8 = "Caf\u{e9}Browser/1 \u{202E}gpj.exe".as_bytes();
        assert_eq!(
            stored_user_agent(utf8),
            "Caf\u{e9}Browser/1 \u{FFFD}gpj.exe"
        );
        assert_eq!(
            stored_user_agent(b"a\xff\x00b\x7f\xc2\x85c"),
            "a\u{FFFD}\u{FFFD}b\u{FFFD}\u{FFFD}c"
        );
    }

    #[test]
    fn the_user_agent_is_bounded_in_bytes() {
        let ascii = "a".repeat(600);
        assert_eq!(
            stored_user_agent(ascii.as_bytes()).len(),
            MAX_USER_AGENT_BYTES
        );
        // Two-byte characters: 256 of them fill the bound; none is cut in half.
        let wide = "\u{e9}".repeat(600);
        let kept = stored_user_agent(wide.as_bytes());
        assert_eq!(kept.len(), MAX_USER_AGENT_BYTES);
        assert_eq!(kept.chars().count(), 256);
        let odd = format!("a{wide}");
        assert_eq!(
            stored_user_agent(odd.as_bytes()).len(),
            MAX_USER_AGENT_BYTES - 1
        );
    }

    #[test]
    fn forwarding_headers_from_strangers_are_ignored() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = request("203.0.113.5:4000", Some(("x-forwarded-for", "1.1.1.1")));
        assert_eq!(client_ip(&spoofed, &trusted), ip("203.0.113.5"));
    }

    #[test]
    fn the_nearest_untrusted_hop_behind_trusted_proxies_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let via_two = request(
            "10.0.0.2:4000",
            Some(("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.1")),
        );
        assert_eq!(client_ip(&via_two, &trusted), ip("198.51.100.7"));
        let forwarded = request(
            "10.0.0.2:4000",
            Some((
                "forwarded",
                "for=\"[2001:db8::5]:443\";proto=https, for=10.0.0.1",
            )),
        );
        assert_eq!(client_ip(&forwarded, &trusted), ip("2001:db8::5"));
        let garbage = request("10.0.0.2:4000", Some(("x-forwarded-for", "nonsense")));
        assert_eq!(client_ip(&garbage, &trusted), ip("10.0.0.2"));
        let direct = request("10.0.0.2:4000", None);
        assert_eq!(client_ip(&direct, &trusted), ip("10.0.0.2"));
    }
}
