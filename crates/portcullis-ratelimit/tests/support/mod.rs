//! Helpers shared by the integration tests: a fake clock, config builders, a request view, and a
//! real redis-server on a unix socket in a temporary directory.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use portcullis_core::{Clock, RequestView};

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FakeClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl FakeClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }
    pub fn advance(&self, d: Duration) {
        *self.offset.lock() += d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock()
    }
    fn unix(&self) -> Duration {
        Duration::from_secs(1_700_000_000) + *self.offset.lock()
    }
}

/// The route's rate-limit section and top-level sections parsed from YAML snippets.
pub fn config(rate_limit: &str, extra: &str) -> portcullis_config::Config {
    let text = format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\n\
         upstreams: {{ app: {{ backends: [{{ address: \"127.0.0.1:9001\" }}] }} }}\n\
         routes: [{{ name: r, upstream: app, rate_limit: {rate_limit} }}]\n{extra}"
    );
    match portcullis_config::parse_str("t.yaml", &text) {
        Ok(c) => c,
        Err(e) => panic!("test config does not parse:\n{e}"),
    }
}

pub fn route_limits(cfg: &portcullis_config::Config) -> portcullis_config::RouteRateLimit {
    cfg.routes[0].rate_limit.clone().expect("rate_limit")
}

pub fn view<'a>(headers: &'a http::HeaderMap, ip: &str) -> RequestView<'a> {
    RequestView {
        method: "GET",
        path: "/",
        query: None,
        host: Some("example.com"),
        headers,
        client_ip: ip.parse::<IpAddr>().unwrap(),
        route: "r",
    }
}

pub fn header<'a>(d: &'a portcullis_core::Deny, name: &str) -> &'a str {
    d.headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {d:?}"))
}

/// A real redis-server listening only on a unix socket in a temp dir; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

const REDIS_BIN: &str = "redis-server";

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let mut s = Self {
            child: None,
            dir,
            socket,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Starts (again) on the same socket and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(REDIS_BIN)
            .args(["--port", "0", "--unixsocket"])
            .arg(&self.socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {REDIS_BIN} ({e}): these tests need a real Redis; install it with `apt-get install redis-server` (the Makefile does)")
            });
        self.child = Some(child);
        wait_for_ping(&self.socket);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_ping(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = format!("redis+unix://{}", socket.display());
    loop {
        let ok = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok();
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not answer PING on {} within 10s",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` every 10ms until it holds, failing after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
