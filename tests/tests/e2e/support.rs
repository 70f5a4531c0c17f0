//! The harness: real HTTP backends on ephemeral ports and the real `portcullis` binary, started
//! on a config written to a temporary directory and killed when the test ends.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A request as a backend saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// Method.
    pub(crate) method: String,
    /// Path and query.
    pub(crate) target: String,
    /// Headers, names lowercased, in arrival order.
    pub(crate) headers: Vec<(String, String)>,
}

impl Seen {
    /// The first value of a header.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct BackendState {
    hits: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    healthy: AtomicBool,
}

/// An HTTP/1.1 backend on 127.0.0.1. `GET /slow?ms=N` answers after N ms; `/healthz` answers 200
/// unless [`Backend::set_healthy`] said otherwise; everything else answers 200 with a body naming
/// the backend. Requests other than health checks are counted and recorded.
pub(crate) struct Backend {
    /// Name written in every answer (`x-backend` header and the body).
    pub(crate) name: String,
    /// Where it listens (kept across stop/start).
    pub(crate) addr: SocketAddr,
    state: Arc<BackendState>,
    stop: Option<watch::Sender<bool>>,
}

impl Backend {
    /// Starts a backend on an ephemeral port.
    pub(crate) async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let state = Arc::new(BackendState::default());
        state.healthy.store(true, Ordering::SeqCst);
        let mut b = Backend {
            name: name.to_owned(),
            addr,
            state,
            stop: None,
        };
        b.serve(listener);
        b
    }

    fn serve(&mut self, listener: TcpListener) {
        let (tx, rx) = watch::channel(false);
        self.stop = Some(tx);
        let state = Arc::clone(&self.state);
        let name = self.name.clone();
        tokio::spawn(async move {
            let mut stop = rx.clone();
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    accepted = listener.accept() => {
                        let Ok((sock, _)) = accepted else { continue };
                        let state = Arc::clone(&state);
                        let name = name.clone();
                        let mut stop = rx.clone();
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = stop.changed() => {}
                                _ = connection(sock, &state, &name) => {}
                            }
                        });
                    }
                }
            }
        });
    }

    /// Stops accepting and closes every open connection.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
    }

    /// Listens again on the same address.
    pub(crate) async fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Makes `/healthz` answer 503 (false) or 200 (true).
    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Requests served (health checks excluded).
    pub(crate) fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The targets of every request recorded, in order.
    pub(crate) fn seen_targets(&self) -> Vec<String> {
        self.state
            .seen
            .lock()
            .iter()
            .map(|s| s.target.clone())
            .collect()
    }

    /// The most recent request recorded.
    pub(crate) fn last(&self) -> Seen {
        self.state
            .seen
            .lock()
            .last()
            .cloned()
            .expect("the backend saw a request")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn connection(sock: TcpStream, state: &BackendState, name: &str) {
    let mut r = BufReader::new(sock);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut h = String::new();
            match r.read_line(&mut h).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                let n = n.trim().to_ascii_lowercase();
                let v = v.trim().to_owned();
                if n == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                if n == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
                headers.push((n, v));
            }
        }
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            match read_chunked(&mut r).await {
                Some(b) => b,
                None => return,
            }
        } else {
            let mut body = vec![0u8; length];
            if r.read_exact(&mut body).await.is_err() {
                return;
            }
            body
        };
        let (status, text) = if target == "/healthz" {
            if state.healthy.load(Ordering::SeqCst) {
                (200, "ok".to_owned())
            } else {
                (503, "sick".to_owned())
            }
        } else {
            state.hits.fetch_add(1, Ordering::SeqCst);
            state.seen.lock().push(Seen {
                method: method.clone(),
                target: target.clone(),
                headers,
            });
            if let Some(ms) = target.strip_prefix("/slow?ms=") {
                let ms = ms.parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if target.starts_with("/echo") {
                (200, String::from_utf8_lossy(&body).into_owned())
            } else {
                (200, format!("{name} {method} {target} {}\n", body.len()))
            }
        };
        let reason = if status == 200 {
            "OK"
        } else {
            "Service Unavailable"
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nx-backend: {name}\r\nserver: demo\r\nconnection: keep-alive\r\nkeep-alive: timeout=60\r\n\r\n",
            text.len()
        );
        let sock = r.get_mut();
        if sock.write_all(head.as_bytes()).await.is_err()
            || sock.write_all(text.as_bytes()).await.is_err()
        {
            return;
        }
        if close {
            return;
        }
    }
}

/// Reads a chunked body (no trailers expected beyond the empty line).
async fn read_chunked(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).await.ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                r.read_line(&mut trailer).await.ok()?;
                if trailer.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let mut chunk = vec![0u8; size + 2];
        r.read_exact(&mut chunk).await.ok()?;
        body.extend_from_slice(&chunk[..size]);
    }
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The `portcullis` binary: `PORTCULLIS_BIN`, or the debug build beside this test executable,
/// brought up to date first.
pub(crate) fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PORTCULLIS_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("current exe");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir");
        // Build (a no-op when up to date) so a test never runs a stale binary.
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "portcullis"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p portcullis failed");
        dir.join("portcullis")
    })
    .clone()
}

/// A running gateway process, killed on drop.
pub(crate) struct Gateway {
    /// Public listener.
    pub(crate) addr: SocketAddr,
    /// Admin listener.
    pub(crate) admin: SocketAddr,
    /// The config directory (write files here and reload).
    pub(crate) dir: tempfile::TempDir,
    child: Option<Child>,
}

/// The config the tests start from: `{listen}` and `{admin}` are filled in.
pub(crate) fn base_config(listen: SocketAddr, admin: SocketAddr, rest: &str) -> String {
    format!(
        "server:\n  threads: 2\n  grace_period: 0s\n  graceful_shutdown_timeout: 10s\n  watch_config: false\nadmin:\n  address: \"{admin}\"\nlisteners:\n  - name: public\n    address: \"{listen}\"\n    h2c: true\n{rest}"
    )
}

impl Gateway {
    /// Writes `gateway.yaml` (the text after `listeners`, see [`base_config`]) and starts the
    /// binary, waiting until `/readyz` answers 200.
    pub(crate) async fn start(rest: &str) -> Gateway {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        Gateway::start_with(&base_config(addr, admin, rest), addr, admin).await
    }

    /// Starts the binary on a full config text that listens on `addr` and `admin`.
    pub(crate) async fn start_with(config: &str, addr: SocketAddr, admin: SocketAddr) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("gateway.yaml"), config).expect("write config");
        let stdout = std::fs::File::create(dir.path().join("stdout.log")).expect("stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr file");
        let child = Command::new(binary())
            .arg("run")
            .arg("--config")
            .arg(dir.path())
            .env("PORTCULLIS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn portcullis");
        let mut g = Gateway {
            addr,
            admin,
            dir,
            child: Some(child),
        };
        g.wait_ready().await;
        g
    }

    async fn wait_ready(&mut self) {
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "gateway exited early ({status}); stderr:\n{}",
                    self.stderr()
                );
            }
            if let Ok(r) = client
                .get(format!("http://{}/readyz", self.admin))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway not ready in 30s; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://addr` + path.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Replaces `gateway.yaml` by writing a sibling and renaming it over, as an editor would.
    pub(crate) fn write_config(&self, text: &str) {
        let tmp = self.dir.path().join(".gateway.yaml.tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, self.dir.path().join("gateway.yaml")).expect("rename config");
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal to the process.
    pub(crate) fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().expect("running").id();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
        nix::sys::signal::kill(pid, sig).expect("kill");
    }

    /// Waits for the process to exit, at most `limit`.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self
                .child
                .as_mut()
                .expect("running")
                .try_wait()
                .expect("wait")
            {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The Prometheus text from the admin listener.
    pub(crate) async fn metrics(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The sum of every sample of `name` whose labels contain all of `labels` (`k="v"` strings).
    pub(crate) async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        sum_metric(&self.metrics().await, name, labels)
    }

    /// What the process wrote to stdout (the access log).
    pub(crate) fn stdout(&self) -> String {
        read(&self.dir.path().join("stdout.log"))
    }

    /// What the process wrote to stderr (its own log).
    pub(crate) fn stderr(&self) -> String {
        read(&self.dir.path().join("stderr.log"))
    }

    /// Access-log lines parsed as JSON.
    pub(crate) fn access_log(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad access log line {l:?}: {e}"))
            })
            .collect()
    }

    /// Waits until the access log holds at least `n` lines.
    pub(crate) async fn wait_log_lines(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.access_log();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn read(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Sums the samples of a metric family that carry every label given.
pub(crate) fn sum_metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, r)) => (m, r),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// An HTTP client that never uses a proxy from the environment.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

/// One GET read to its end: the status and the answering backend (`x-backend`), or why it
/// failed.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    url: &str,
) -> Result<(u16, Option<String>), String> {
    let r = client.get(url).send().await.map_err(|e| e.to_string())?;
    let backend = r
        .headers()
        .get("x-backend")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = r.status().as_u16();
    r.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, backend))
}

/// Sends `n` GETs to `url`, `concurrency` at a time, and counts answers by backend name (the
/// `x-backend` header) and by status.
pub(crate) async fn hammer(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    concurrency: usize,
) -> Tally {
    use futures::StreamExt as _;
    let results: Vec<Result<(u16, Option<String>), String>> = futures::stream::iter(0..n)
        .map(|_| async move { fetch(client, url).await })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut tally = Tally::default();
    for r in results {
        match r {
            Ok((status, backend)) => {
                *tally.status.entry(status).or_default() += 1;
                if let Some(b) = backend {
                    *tally.backend.entry(b).or_default() += 1;
                }
            }
            Err(e) => tally.errors.push(e),
        }
    }
    tally
}

/// Answers counted by [`hammer`].
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// By status code.
    pub(crate) status: HashMap<u16, usize>,
    /// By backend name.
    pub(crate) backend: HashMap<String, usize>,
    /// Transport errors.
    pub(crate) errors: Vec<String>,
}

impl Tally {
    /// Answers from this backend.
    pub(crate) fn from(&self, b: &str) -> usize {
        self.backend.get(b).copied().unwrap_or(0)
    }

    /// Answers that were not 200, plus transport errors.
    pub(crate) fn failures(&self) -> usize {
        self.status
            .iter()
            .filter(|(s, _)| **s != 200)
            .map(|(_, n)| n)
            .sum::<usize>()
            + self.errors.len()
    }
}

/// An `upstreams:` block with one pool named `pool` over `backends` (name, weight), with an HTTP
/// health check every `interval`.
pub(crate) fn pool(backends: &[(&Backend, u32)], extra: &str) -> String {
    let mut s = String::from("upstreams:\n  pool:\n    backends:\n");
    for (b, w) in backends {
        s.push_str(&format!(
            "      - {{ address: \"{}\", weight: {w} }}\n",
            b.addr
        ));
    }
    s.push_str(extra);
    s
}

/// A real `redis-server` on an ephemeral port, without persistence; killed on drop.
pub(crate) struct Redis {
    /// Its port (kept across restarts).
    pub(crate) port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts `redis-server` (installed by `make test`).
    pub(crate) async fn start() -> Redis {
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.restart().await;
        r
    }

    /// Starts it again on the same port.
    pub(crate) async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (make test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)).await {
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").await.is_ok()
                    && s.read(&mut buf)
                        .await
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills it (SIGKILL: no goodbye to clients).
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
