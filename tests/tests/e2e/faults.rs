//! Backend faults under real traffic: a backend killed while it serves steady load, and backends
//! that accept a request and then never finish answering it. Each test asserts the bound the
//! gateway promises, not only that it survives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{client, fetch, pool, Backend, Gateway};

/// One request of the load: when it started and ended (since the load began), and what came back.
#[derive(Debug, Clone)]
struct Sample {
    start: Duration,
    end: Duration,
    outcome: Result<(u16, Option<String>), String>,
}

impl Sample {
    fn ok(&self) -> bool {
        matches!(self.outcome, Ok((200, _)))
    }

    fn from(&self, backend: &str) -> bool {
        matches!(&self.outcome, Ok((200, Some(b))) if b == backend)
    }
}

/// Steady load: `clients` loops, each sending one request every `every`, until stopped.
struct Load {
    t0: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, clients: usize, every: Duration) -> Load {
        let t0 = Instant::now();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|_| {
                let (url, samples, stop) = (url.clone(), Arc::clone(&samples), Arc::clone(&stop));
                tokio::spawn(async move {
                    let c = client();
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !stop.load(Ordering::SeqCst) {
                        tick.tick().await;
                        let start = t0.elapsed();
                        let outcome = fetch(&c, &url).await;
                        samples.lock().push(Sample {
                            start,
                            end: t0.elapsed(),
                            outcome,
                        });
                    }
                })
            })
            .collect();
        Load {
            t0,
            samples,
            stop,
            tasks,
        }
    }

    fn since(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.t0)
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().clone()
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        let s = self.samples.lock().clone();
        s
    }
}

/// Polls `cond` every 20 ms until it holds; panics after `limit`. Returns how long it took.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn healthy_metric(b: &Backend, healthy: bool) -> String {
    format!(
        "portcullis_upstream_backend_healthy{{backend=\"{}\",upstream=\"pool\"}} {}",
        b.addr,
        u8::from(healthy)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backend_killed_under_load_fails_only_requests_in_flight_and_returns() {
    const INTERVAL: Duration = Duration::from_millis(200);
    const TIMEOUT: Duration = Duration::from_millis(200);
    const UNHEALTHY_AFTER: u32 = 2;
    const HEALTHY_AFTER: u32 = 2;
    // Scheduling noise on a shared 2-core machine, on top of what the thresholds allow.
    const SLACK: Duration = Duration::from_millis(1000);
    const CLIENTS: usize = 8;
    // Every request spends 20 ms in the backend, so some are always in flight when it dies.
    const BACKEND_MS: u64 = 20;

    let a = Backend::start("a").await;
    let mut b = Backend::start("b").await;
    let extra = format!(
        "    health_check: {{ type: http, path: /healthz, interval: {}ms, timeout: {}ms, unhealthy_after: {UNHEALTHY_AFTER}, healthy_after: {HEALTHY_AFTER} }}\n    passive_health: {{ consecutive_failures: 3, ejection: 10s }}\n    retries: 1\n",
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    );
    let cfg = format!(
        "{}routes:\n  - name: all\n    upstream: pool\n",
        pool(&[(&a, 1), (&b, 1)], &extra)
    );
    let gw = Gateway::start(&cfg).await;

    // 8 clients, one request each every 50 ms: up to 160 requests a second.
    let load = Load::start(
        gw.url(&format!("/slow?ms={BACKEND_MS}")),
        CLIENTS,
        Duration::from_millis(50),
    );
    wait_for(
        "both backends serve the load",
        Duration::from_secs(10),
        || {
            let s = load.snapshot();
            async move {
                s.iter().filter(|x| x.from("a")).count() >= 30
                    && s.iter().filter(|x| x.from("b")).count() >= 30
            }
        },
    )
    .await;

    // At least a second of steady load before the kill.
    let warm = Duration::from_secs(1).saturating_sub(load.t0.elapsed());
    tokio::time::sleep(warm).await;
    // Drop b's listener and every open connection at once, as SIGKILL would.
    let killed = Instant::now();
    b.stop();
    let gone = healthy_metric(&b, false);
    let ejected_after = wait_for("b ejected", Duration::from_secs(5), || {
        let gw = &gw;
        let gone = gone.clone();
        async move { gw.metrics().await.contains(&gone) }
    })
    .await;
    // The worst case is a check round just before the kill: `unhealthy_after` more rounds, the
    // last of which may wait out its timeout (a refused connect does not).
    let eject_bound = INTERVAL * UNHEALTHY_AFTER + TIMEOUT + SLACK;
    assert!(
        ejected_after <= eject_bound,
        "ejected after {ejected_after:?}, bound {eject_bound:?}"
    );

    // Serve a while on a alone, then bring b back on the same port.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.restart().await;
    let restarted = Instant::now();
    let back = healthy_metric(&b, true);
    let healthy_after = wait_for("b healthy again", Duration::from_secs(5), || {
        let gw = &gw;
        let back = back.clone();
        async move { gw.metrics().await.contains(&back) }
    })
    .await;
    let return_bound = INTERVAL * HEALTHY_AFTER + TIMEOUT + SLACK;
    assert!(
        healthy_after <= return_bound,
        "healthy after {healthy_after:?}, bound {return_bound:?}"
    );
    // Healthy is not enough: real requests must reach it again, within the same bound.
    let since_restart = load.since(restarted);
    let serving_after = wait_for("b back in rotation", Duration::from_secs(12), || {
        let s = load.snapshot();
        async move { s.iter().any(|x| x.start >= since_restart && x.from("b")) }
    })
    .await;
    let serving_after = healthy_after.max(serving_after);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kill_at = load.since(killed);
    let ran = load.t0.elapsed();
    let samples = load.finish().await;

    let failed: Vec<&Sample> = samples.iter().filter(|s| !s.ok()).collect();
    let in_flight_at_kill = samples
        .iter()
        .filter(|s| s.start <= kill_at && s.end >= kill_at)
        .count();
    eprintln!(
        "requests: {} in {ran:?}, failed: {}, in flight at the kill: {in_flight_at_kill}, ejected after {ejected_after:?}, healthy after restart {healthy_after:?}, serving after restart {serving_after:?}",
        samples.len(),
        failed.len()
    );
    // Only a request already sent to b when it died can fail: a new one that meets the closed
    // port is retried on a (connect failure, `retries: 1`), one on a dead pooled connection is
    // retried by Pingora. So every failure was in flight at the kill (20 ms of scheduling slack
    // for `stop` to reach b's tasks), and there are at most as many as there are clients.
    let slack = Duration::from_millis(20);
    for f in &failed {
        assert!(
            f.start <= kill_at + slack && f.end >= kill_at,
            "a request not in flight at the kill failed: {f:?} (kill at {kill_at:?})"
        );
        assert!(
            matches!(f.outcome, Ok((502, _))),
            "an in-flight request fails as 502: {f:?}"
        );
    }
    assert!(
        failed.len() <= in_flight_at_kill && in_flight_at_kill <= CLIENTS,
        "{} failed, {in_flight_at_kill} in flight: {failed:?}",
        failed.len()
    );
    // The load was real: at least half the nominal 160 requests a second, all the way through.
    let rate = samples.len() as f64 / ran.as_secs_f64();
    assert!(rate >= 80.0, "{} requests in {ran:?}", samples.len());
    assert!(
        serving_after <= return_bound,
        "b healthy after {healthy_after:?} but serving again only after {serving_after:?}, bound {return_bound:?}"
    );
}

/// How a [`StuckBackend`] treats a request.
#[derive(Clone, Copy)]
enum Stuck {
    /// Reads the request and never answers.
    Silent,
    /// Sends the head and part of a 1000-byte body, then nothing.
    MidBody,
}

/// A backend that takes requests and never finishes an answer; counts heads read and
/// connections the gateway closed.
struct StuckBackend {
    addr: SocketAddr,
    heads: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl StuckBackend {
    async fn start(mode: Stuck) -> StuckBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (h, c) = (Arc::clone(&heads), Arc::clone(&closed));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let (h, c) = (Arc::clone(&h), Arc::clone(&c));
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read the head (health checks are not configured, so every head is a request).
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => {
                                c.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    if let Stuck::MidBody = mode {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nx-backend: stuck\r\n\r\npartial")
                            .await;
                    }
                    // Then nothing, until the gateway gives up and closes.
                    loop {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        StuckBackend {
            addr,
            heads,
            closed,
        }
    }

    fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

/// Timeout of the stuck pools; every bound below is stated against it.
const READ_TIMEOUT: Duration = Duration::from_millis(3000);

async fn stuck_gateway() -> (StuckBackend, StuckBackend, Backend, Gateway) {
    let silent = StuckBackend::start(Stuck::Silent).await;
    let mid_body = StuckBackend::start(Stuck::MidBody).await;
    let ok = Backend::start("ok").await;
    let timeouts = format!(
        "    timeouts: {{ connect: 1s, read: {}ms, write: 1s, idle: 60s }}\n    retries: 1\n",
        READ_TIMEOUT.as_millis()
    );
    let cfg = format!(
        "upstreams:\n  silent:\n    backends: [{{ address: \"{}\" }}]\n{timeouts}  midbody:\n    backends: [{{ address: \"{}\" }}]\n{timeouts}  ok:\n    backends: [{{ address: \"{}\" }}]\nroutes:\n  - name: silent\n    match: {{ path_prefix: /silent }}\n    upstream: silent\n  - name: midbody\n    match: {{ path_prefix: /midbody }}\n    upstream: midbody\n  - name: ok\n    upstream: ok\n",
        silent.addr, mid_body.addr, ok.addr
    );
    let gw = Gateway::start(&cfg).await;
    (silent, mid_body, ok, gw)
}

/// What one request to a stuck backend ended with, and when.
#[derive(Debug)]
struct Ending {
    after: Duration,
    status: Option<u16>,
    body: Result<usize, String>,
}

fn spawn_stuck_requests(
    gw: &Gateway,
    path: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Ending>> {
    (0..n)
        .map(|_| {
            let url = gw.url(path);
            tokio::spawn(async move {
                let start = Instant::now();
                match client().get(&url).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.bytes().await.map(|b| b.len()).map_err(|e| e.to_string());
                        Ending {
                            after: start.elapsed(),
                            status: Some(status),
                            body,
                        }
                    }
                    Err(e) => Ending {
                        after: start.elapsed(),
                        status: None,
                        body: Err(e.to_string()),
                    },
                }
            })
        })
        .collect()
}

/// Answers from the healthy route while the gateway's threads (2) are outnumbered by stuck
/// requests: each must come back well before the stuck ones time out.
async fn other_route_answers_promptly(gw: &Gateway, ok: &Backend) -> Duration {
    let c = client();
    let before = ok.hits();
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let r = c.get(gw.url("/fine")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        slowest = slowest.max(t.elapsed());
    }
    assert_eq!(ok.hits() - before, 20);
    assert!(
        slowest < Duration::from_secs(1),
        "a request on another route took {slowest:?} while backends hang (20 in {:?})",
        start.elapsed()
    );
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_backend_gets_504_after_the_read_timeout_without_stalling_other_routes() {
    // More stuck requests than the gateway has worker threads (`threads: 2`).
    const STUCK: usize = 8;
    let (silent, _mid, ok, gw) = stuck_gateway().await;
    let sent = Instant::now();
    let stuck = spawn_stuck_requests(&gw, "/silent", STUCK);
    wait_for(
        "all stuck requests reach the backend",
        Duration::from_secs(5),
        || {
            let n = silent.heads();
            async move { n == STUCK }
        },
    )
    .await;

    let slowest = other_route_answers_promptly(&gw, &ok).await;
    assert!(
        stuck.iter().all(|t| !t.is_finished()),
        "the other route was answered while every stuck request still hung ({:?} after sending)",
        sent.elapsed()
    );

    let mut endings = Vec::new();
    for t in stuck {
        endings.push(t.await.unwrap());
    }
    eprintln!("slowest answer on the other route: {slowest:?}; stuck: {endings:?}");
    for e in &endings {
        assert_eq!(e.status, Some(504), "{e:?}");
        assert!(e.body.is_ok(), "the 504 is a whole answer: {e:?}");
        // The timer starts when the request was written upstream, after the client sent it.
        assert!(
            e.after >= READ_TIMEOUT && e.after <= READ_TIMEOUT + Duration::from_secs(2),
            "answered after {:?}, read timeout {READ_TIMEOUT:?}",
            e.after
        );
    }
    // A read timeout is not retried: the backend may be working on the request.
    assert_eq!(silent.heads(), STUCK);
    // Nothing leaks: the gateway closed every connection it gave up on.
    wait_for("stuck connections closed", Duration::from_secs(2), || {
        let n = silent.closed();
        async move { n == STUCK }
    })
    .await;
    let r = client().get(gw.url("/fine")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let log = gw.wait_log_lines(STUCK + 21).await;
    let timeouts = log
        .iter()
        .filter(|l| l["status"] == 504 && l["route"] == "silent")
        .count();
    assert_eq!(timeouts, STUCK, "every stuck request is logged as 504");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backend_stalling_mid_body_is_cut_after_the_read_timeout() {
    const STUCK: usize = 4;
    let (_silent, mid, ok, gw) = stuck_gateway().await;
    let sent = Instant::now();
    let stuck = spawn_stuck_requests(&gw, "/midbody", STUCK);
    wait_for(
        "all stuck requests reach the backend",
        Duration::from_secs(5),
        || {
            let n = mid.heads();
            async move { n == STUCK }
        },
    )
    .await;
    other_route_answers_promptly(&gw, &ok).await;
    assert!(
        stuck.iter().all(|t| !t.is_finished()),
        "the other route was answered while every stuck request still hung ({:?} after sending)",
        sent.elapsed()
    );

    for t in stuck {
        let e = t.await.unwrap();
        // The 200 head is already out: the only honest signal left is a body cut short.
        assert_eq!(e.status, Some(200), "{e:?}");
        assert!(
            e.body.is_err(),
            "the truncated body must not look complete: {e:?}"
        );
        assert!(
            e.after >= READ_TIMEOUT && e.after <= READ_TIMEOUT + Duration::from_secs(2),
            "cut after {:?}, read timeout {READ_TIMEOUT:?}",
            e.after
        );
    }
    assert_eq!(mid.heads(), STUCK);
    wait_for("stuck connections closed", Duration::from_secs(2), || {
        let n = mid.closed();
        async move { n == STUCK }
    })
    .await;
    let r = client().get(gw.url("/fine")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
