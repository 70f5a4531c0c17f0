//! Helpers shared by the integration tests: a fake clock, config builders, a request view, and a
//! real redis-server on 127.0.0.1 and an ephemeral port, in a temporary directory.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
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

/// A real redis-server on 127.0.0.1 and an ephemeral port, in a temp dir; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

const REDIS_BIN: &str = "redis-server";

/// A port the kernel just handed out; redis-server binds it right after (and `start` retries
/// with another one in the unlikely case something took it in between).
fn ephemeral_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self {
            child: None,
            dir,
            port: 0,
        };
        for _ in 0..5 {
            s.port = ephemeral_port();
            if s.spawn() {
                return s;
            }
        }
        panic!("redis-server could not bind an ephemeral port in 5 attempts");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts again on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The old listener may linger for a moment after the kill.
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers, the way a
    /// overloaded or partitioned Redis looks to a client.
    pub fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("redis-server is running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Spawns on `self.port`; false when the server exits before answering (port taken).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new(REDIS_BIN)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {REDIS_BIN} ({e}): these tests need a real Redis; install it with `apt-get install redis-server` (the Makefile does)")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                self.child = Some(child);
                return true;
            }
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server did not answer PING on port {} within 10s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A paused server must be able to die.
            let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ping(port: u16) -> bool {
    let url = format!("redis://127.0.0.1:{port}");
    redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
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

/// Like [`eventually`] for a condition that has to await.
pub async fn eventually_async<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
