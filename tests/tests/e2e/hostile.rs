//! Hostile HTTP/1: framing a proxy and a backend could read two ways is refused (or, where the
//! RFC defines one reading, forwarded as exactly one well-formed request); slow clients time out.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{pool, Backend, Gateway};

/// Sends raw bytes, returns everything the gateway answered before closing (or 3 s).
async fn raw(gw: &Gateway, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn gateway() -> (Backend, Gateway) {
    let app = Backend::start("app").await;
    let gw = Gateway::start(&format!(
        "{}routes:\n  - name: all\n    upstream: pool\n",
        pool(&[(&app, 1)], "")
    ))
    .await;
    (app, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_before_the_backend() {
    let (app, gw) = gateway().await;
    let cases: &[(&str, &[u8], u16)] = &[
        ("duplicate Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        ("signed Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400),
        ("Content-Length with a leading zero", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 010\r\n\r\n01234567", 400),
        ("leading comma in Transfer-Encoding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 501),
        ("chunked twice", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
        ("unknown coding before chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 501),
        ("Transfer-Encoding on HTTP/1.0", b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("no Host on HTTP/1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("target that is not a path", b"GET ! HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("h2c upgrade", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n", 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n", 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
        ("bare CR in a header", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        ("invalid chunk size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ];
    for (what, bytes, want) in cases {
        let before = app.hits();
        let answer = raw(&gw, bytes).await;
        let got = status(&answer);
        assert!(
            got == *want || (got == 0 && answer.is_empty()),
            "{what}: answered {got}, want {want}:\n{answer}"
        );
        if *what != "invalid chunk size" {
            assert_eq!(app.hits(), before, "{what}: reached the backend");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_chunked_is_forwarded_once_without_the_length() {
    let (app, gw) = gateway().await;
    // RFC 9112 6.3: Transfer-Encoding wins; the length is removed and the connection closed, so
    // the smuggled `G` can never start a second request.
    let answer = raw(&gw, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG").await;
    assert!(
        answer.starts_with("HTTP/1.1 200") || status(&answer) == 400,
        "{answer}"
    );
    if status(&answer) == 200 {
        assert_eq!(
            app.seen_targets(),
            vec!["/x"],
            "exactly one request reached the backend"
        );
        let seen = app.last();
        assert_eq!(seen.header("content-length"), None);
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_each_forwarded_whole() {
    let (app, gw) = gateway().await;
    let answer = raw(
        &gw,
        b"POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nPOST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 34\r\n\r\nGET /three HTTP/1.1\r\nHost: a\r\n\r\nGET /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    // Pipelining may be served or cut short, but the body of /two is never a request, and every
    // answer belongs to a request the backend saw, in order.
    let targets = app.seen_targets();
    let expected = ["/one", "/two", "/four"];
    assert!(!targets.is_empty() && targets.len() <= 3, "{targets:?}");
    assert_eq!(targets, expected[..targets.len()].to_vec(), "{answer}");
    assert_eq!(
        answer.matches("HTTP/1.1 200").count(),
        targets.len(),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_are_refused() {
    let (_app, gw) = gateway().await;
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let got = status(&raw(&gw, huge.as_bytes()).await);
    assert!(matches!(got, 0 | 431), "answered {got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_target_and_host_must_agree() {
    let (app, gw) = gateway().await;
    // Two hosts for one request: the gateway could route on one and the backend on the other.
    let answer = raw(
        &gw,
        b"GET http://other.test/abs HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&answer), 400, "{answer}");
    assert_eq!(app.hits(), 0);
    // One host: forwarded in origin-form with that host, the only reading the backend can make.
    let answer = raw(
        &gw,
        b"GET http://other.test/abs?x=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    let seen = app.last();
    assert_eq!(seen.target, "/abs?x=1");
    let hosts: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(n, _)| n == "host")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(hosts, ["other.test"]);
}
