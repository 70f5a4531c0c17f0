//! Slow and idle clients: a request head trickled byte by byte, a connection that never speaks, a
//! stalled body and idle keep-alive connections are all closed on their deadlines, and the number
//! of open client connections is capped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{free_port, pool, Backend, Gateway};

/// A gateway with short client deadlines and a small connection cap.
async fn gateway(app: &Backend) -> Gateway {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        "server:\n  threads: 2\n  grace_period: 0s\n  watch_config: false\n  \
         request_header_timeout: 1s\n  client_body_timeout: 1s\n  keepalive_timeout: 3s\n  \
         max_connections: 6\n\
         admin:\n  address: \"{admin}\"\n\
         listeners:\n  - name: public\n    address: \"{addr}\"\n\
         {}routes:\n  - name: all\n    upstream: pool\n",
        pool(&[(app, 1)], "")
    );
    Gateway::start_with(&config, addr, admin).await
}

/// Reads until the gateway closes the connection (or `limit`); returns what arrived and when the
/// close was seen (`None`: still open at `limit`).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), None),
            Ok(Ok(0) | Err(_)) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    Some(start.elapsed()),
                )
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one request and reads one small response on a kept-alive connection.
async fn exchange(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !response_complete(&out) {
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut buf))
            .await
            .expect("response within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response_complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_request_head_is_cut_at_the_header_deadline() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.unwrap();
    let start = Instant::now();
    // One byte every 150 ms: no single read waits long, only the whole head is late.
    let mut sent = 0;
    let closed = loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if s.write_all(b"X").await.is_err() {
            break start.elapsed();
        }
        sent += 1;
        let mut probe = [0u8; 64];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await {
            assert!(matches!(r, Ok(0) | Err(_)), "answered a partial head");
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "still open after 4 s of trickling (timeout 1 s)"
        );
    };
    assert!(sent >= 3, "closed before the trickle began: {closed:?}");
    assert!(
        closed >= Duration::from_millis(800),
        "closed too early: {closed:?}"
    );
    assert_eq!(app.hits(), 0);
    assert!(
        gw.metric("portcullis_request_header_timeouts_total", &[])
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_closed_and_keepalive_idle_is_bounded() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;

    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(4)).await;
    let closed = closed.expect("a silent connection is closed");
    assert!(closed >= Duration::from_millis(800), "{closed:?}");

    // Idle time between requests is not a slow head: 1.5 s idle (> the 1 s head deadline,
    // < the 3 s keep-alive) and the next request is served on the same connection.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    assert!(exchange(&mut s, "/one").await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(exchange(&mut s, "/two").await.starts_with("HTTP/1.1 200"));
    // Then idle beyond the keep-alive timeout: closed.
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(6)).await;
    let closed = closed.expect("an idle keep-alive connection is closed");
    assert!(closed >= Duration::from_millis(2500), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_times_out() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    let closed = closed.unwrap_or_else(|| panic!("a stalled body is cut; got {answer:?}"));
    assert!(closed >= Duration::from_millis(800), "{closed:?}");
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "a half-sent body was answered 200: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_are_capped() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    // Six connections (the cap) kept open with a request each.
    let mut held = Vec::new();
    for i in 0..6 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        assert!(exchange(&mut s, &format!("/held{i}"))
            .await
            .starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // The seventh is accepted by the kernel and closed at once, unanswered.
    let mut extra = TcpStream::connect(gw.addr).await.unwrap();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(3)).await;
    assert!(closed.is_some(), "over the cap but kept open");
    assert!(answer.is_empty(), "over the cap but answered: {answer}");
    assert!(
        gw.metric("portcullis_client_connections_refused_total", &[])
            .await
            >= 1.0
    );
    // The held ones still work; closing one makes room again.
    assert!(exchange(&mut held[0], "/again")
        .await
        .starts_with("HTTP/1.1 200"));
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        if s.write_all(b"GET /room HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .is_ok()
        {
            let (answer, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no room after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
