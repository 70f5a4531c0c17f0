//! Request framing the gateway refuses to interpret. A proxy and a backend that read one message
//! two ways are a request-smuggling vulnerability; the only safe answer to an ambiguous message is
//! to refuse it and close the connection, never to pick an interpretation and forward it. Pure
//! over `http` types so that it is unit-tested and fuzzed without a server.

use http::{HeaderMap, Method, Version};

use crate::Deny;

fn bad(message: &'static str) -> Deny {
    Deny::new(400, "malformed_request", message)
}

/// Longest request target accepted (414 above).
pub const MAX_TARGET_BYTES: usize = 16 * 1024;
/// Most header fields accepted (431 above).
pub const MAX_HEADERS: usize = 128;
/// Most bytes of header names and values accepted, all fields together (431 above).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Checks what decides where a request ends and what it addresses: the request target, Host,
/// Upgrade, Content-Length and Transfer-Encoding, and the size of the head. `None`: unambiguous;
/// otherwise the deny to answer with (and close the connection).
#[must_use]
pub fn check(
    method: &Method,
    version: Version,
    target: &[u8],
    headers: &HeaderMap,
) -> Option<Deny> {
    if target.len() > MAX_TARGET_BYTES {
        return Some(Deny::new(
            414,
            "uri_too_long",
            "the request target is too long",
        ));
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(Deny::new(
            431,
            "headers_too_large",
            "the request headers are too large",
        ));
    }
    // Request target: origin-form, absolute-form, or `*` for OPTIONS (RFC 9112 3.2).
    let target_ok = target.first() == Some(&b'/')
        || (target == b"*" && method == Method::OPTIONS)
        || target.starts_with(b"http://")
        || target.starts_with(b"https://");
    if !target_ok {
        return Some(bad("the request target is not a path or an absolute URL"));
    }
    // Host: exactly one on HTTP/1.1 (RFC 9112 3.2); never several.
    let hosts = headers.get_all(http::header::HOST).iter().count();
    if hosts > 1 {
        return Some(bad("more than one Host header"));
    }
    if hosts == 0 && version == Version::HTTP_11 {
        return Some(bad("an HTTP/1.1 request needs a Host header"));
    }
    if headers.get(http::header::HOST).is_some_and(|h| {
        h.as_bytes()
            .iter()
            .any(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'@')
    }) {
        return Some(bad("the Host header is not a host name"));
    }
    // An h2c upgrade would turn the connection into a tunnel the gateway no longer inspects.
    let h2c = headers.get_all(http::header::UPGRADE).iter().any(|v| {
        v.to_str().map_or(true, |t| {
            t.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c"))
        })
    });
    if h2c {
        return Some(bad("upgrading to h2c through the gateway is not allowed"));
    }
    let lengths: Vec<_> = headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .collect();
    if lengths.len() > 1 {
        return Some(bad("more than one Content-Length header"));
    }
    if let Some(cl) = lengths.first() {
        let digits = cl.as_bytes();
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return Some(bad("Content-Length is not a decimal number"));
        }
        // `010` is ten here and eight to a parser that reads a leading zero as octal.
        if digits.len() > 1 && digits[0] == b'0' {
            return Some(bad("Content-Length has a leading zero"));
        }
    }
    let mut codings = Vec::new();
    for value in headers.get_all(http::header::TRANSFER_ENCODING) {
        let Ok(text) = value.to_str() else {
            return Some(bad("Transfer-Encoding is not text"));
        };
        codings.extend(text.split(',').map(str::trim));
    }
    // HTTP/2 frames bodies itself; `te: trailers` is its only legal use of the header.
    if codings.is_empty() || version == Version::HTTP_2 {
        return None;
    }
    if version == Version::HTTP_10 {
        return Some(bad("Transfer-Encoding is not defined for HTTP/1.0"));
    }
    if !lengths.is_empty() {
        return Some(bad("both Content-Length and Transfer-Encoding"));
    }
    // Exactly one coding, `chunked`: anything else is either malformed (empty elements,
    // `chunked` twice, odd spelling) or a coding a backend may not decode the way we frame it.
    if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") || codings[0].len() != 7 {
        return Some(Deny::new(
            501,
            "unsupported_transfer_encoding",
            "only Transfer-Encoding: chunked is accepted",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn verdict(target: &str, pairs: &[(&str, &str)]) -> Option<(u16, &'static str)> {
        check(
            &Method::POST,
            Version::HTTP_11,
            target.as_bytes(),
            &headers(pairs),
        )
        .map(|d| (d.status, d.reason))
    }

    #[test]
    fn plain_requests_pass() {
        assert_eq!(verdict("/a?b=c", &[("host", "example.com")]), None);
        assert_eq!(
            verdict("/", &[("host", "a"), ("content-length", "12")]),
            None
        );
        assert_eq!(
            verdict("/", &[("host", "a"), ("transfer-encoding", "Chunked")]),
            None
        );
        assert_eq!(verdict("http://a/x", &[("host", "a")]), None);
        let options = check(
            &Method::OPTIONS,
            Version::HTTP_11,
            b"*",
            &headers(&[("host", "a")]),
        );
        assert_eq!(options, None);
    }

    #[test]
    fn ambiguous_length_is_refused() {
        let bad = Some((400, "malformed_request"));
        assert_eq!(
            verdict(
                "/",
                &[
                    ("host", "a"),
                    ("content-length", "5"),
                    ("transfer-encoding", "chunked")
                ]
            ),
            bad
        );
        assert_eq!(
            verdict(
                "/",
                &[
                    ("host", "a"),
                    ("content-length", "5"),
                    ("content-length", "5")
                ]
            ),
            bad
        );
        assert_eq!(
            verdict("/", &[("host", "a"), ("content-length", "+5")]),
            bad
        );
        assert_eq!(
            verdict("/", &[("host", "a"), ("content-length", "0x5")]),
            bad
        );
        let unsupported = Some((501, "unsupported_transfer_encoding"));
        assert_eq!(
            verdict("/", &[("host", "a"), ("transfer-encoding", ",chunked")]),
            unsupported
        );
        assert_eq!(
            verdict(
                "/",
                &[
                    ("host", "a"),
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ]
            ),
            unsupported
        );
        assert_eq!(
            verdict(
                "/",
                &[("host", "a"), ("transfer-encoding", "gzip, chunked")]
            ),
            unsupported
        );
        assert_eq!(
            verdict("/", &[("host", "a"), ("transfer-encoding", "chunkedx")]),
            unsupported
        );
        let http10 = check(
            &Method::POST,
            Version::HTTP_10,
            b"/",
            &headers(&[("transfer-encoding", "chunked")]),
        );
        assert_eq!(http10.map(|d| d.status), Some(400));
    }

    #[test]
    fn oversized_heads_are_refused() {
        let long = format!("/{}", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(
            verdict(&long, &[("host", "a")]),
            Some((414, "uri_too_long"))
        );
        let big = "b".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            verdict("/", &[("host", "a"), ("x-big", &big)]),
            Some((431, "headers_too_large"))
        );
        let names: Vec<String> = (0..=MAX_HEADERS).map(|i| format!("x-h{i}")).collect();
        let many: Vec<(&str, &str)> = names
            .iter()
            .map(|n| (n.as_str(), "1"))
            .chain([("host", "a")])
            .collect();
        assert_eq!(verdict("/", &many), Some((431, "headers_too_large")));
    }

    #[test]
    fn targets_and_hosts_are_checked() {
        let bad = Some((400, "malformed_request"));
        assert_eq!(verdict("!", &[("host", "a")]), bad);
        assert_eq!(
            verdict("*", &[("host", "a")]),
            bad,
            "`*` is for OPTIONS only"
        );
        assert_eq!(verdict("/", &[]), bad, "HTTP/1.1 without Host");
        assert_eq!(verdict("/", &[("host", "a"), ("host", "b")]), bad);
        assert_eq!(verdict("/", &[("host", "a b")]), bad);
        assert_eq!(verdict("/", &[("host", "evil@a")]), bad);
        assert_eq!(verdict("/", &[("host", "a"), ("upgrade", "h2c")]), bad);
        assert_eq!(
            verdict("/", &[("host", "a"), ("upgrade", "websocket")]),
            None
        );
        let http10 = check(&Method::GET, Version::HTTP_10, b"/", &HeaderMap::new());
        assert_eq!(http10, None, "HTTP/1.0 may omit Host");
    }
}
