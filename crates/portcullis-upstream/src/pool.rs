use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use parking_lot::Mutex;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::discovery::Static;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::protocols::tls::CaType;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use portcullis_config::{HealthCheckKind, Upstream, UpstreamTls};

/// Why a pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The pool has no backend address at all.
    #[error("upstream `{0}` has no backend address")]
    NoBackends(String),
    /// Pingora refused the health-check request.
    #[error("upstream `{pool}`: invalid health check request: {message}")]
    HealthCheck {
        /// Pool name.
        pool: String,
        /// What went wrong.
        message: String,
    },
}

/// Health of one backend, for metrics and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    /// Address.
    pub address: SocketAddr,
    /// Relative weight.
    pub weight: u32,
    /// Active health (true until checks say otherwise, and always true without checks).
    pub healthy: bool,
    /// Currently ejected by passive health.
    pub ejected: bool,
}

#[derive(Debug, Default)]
struct Passive {
    consecutive_failures: u32,
    /// When the current ejection began (None when not ejected).
    ejected_at: Option<Instant>,
    ejected_until: Option<Instant>,
}

/// When the latest passing active checks of each backend started: at most `healthy_after` of them
/// (at most 100) per backend, oldest first, emptied by a failing check.
type PassStarts = Arc<Mutex<HashMap<SocketAddr, VecDeque<Instant>>>>;

/// Pingora's check with a record of each backend's current run of passes, so the pool can tell
/// whether the active checks saw a backend up *after* traffic ejected it. Pingora only reports
/// flips of its own health state, and a backend that died and came back between two rounds never
/// flips; without this record its ejection would run its full length.
struct ObservedCheck {
    inner: Box<dyn HealthCheck + Send + Sync>,
    passes: PassStarts,
    /// How many pass start times to keep: the pool's `healthy_after`.
    keep: usize,
}

#[async_trait]
impl HealthCheck for ObservedCheck {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let started = Instant::now();
        let result = self.inner.check(target).await;
        if let Some(addr) = target.addr.as_inet() {
            let mut passes = self.passes.lock();
            if result.is_ok() {
                let starts = passes.entry(*addr).or_default();
                if starts.len() >= self.keep {
                    starts.pop_front();
                }
                starts.push_back(started);
            } else {
                passes.remove(addr);
            }
        }
        result
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        self.inner.health_status_change(target, healthy).await;
    }

    fn backend_summary(&self, target: &Backend) -> String {
        self.inner.backend_summary(target)
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.inner.health_threshold(success)
    }
}

/// What every TLS connection of a pool carries, built once per pool.
struct PeerTls {
    /// SNI and verified name when `tls.sni` is set; else each backend's host.
    sni: Option<String>,
    ca: Option<Arc<CaType>>,
    client_cert: Option<Arc<CertKey>>,
    verify: bool,
}

impl PeerTls {
    fn from_spec(tls: &UpstreamTls) -> PeerTls {
        let ca = (!tls.ca.is_empty()).then(|| {
            let certs: Vec<WrappedX509> = tls
                .ca
                .iter()
                .map(|der| WrappedX509::new(der.clone(), parse_x509))
                .collect();
            Arc::<CaType>::from(certs.into_boxed_slice())
        });
        let client_cert = tls
            .client_cert
            .as_ref()
            .map(|c| Arc::new(CertKey::new(c.chain.clone(), c.key.0.clone())));
        PeerTls {
            sni: tls.sni.clone(),
            ca,
            client_cert,
            verify: tls.verify,
        }
    }

    /// Applies the pool's TLS settings to a peer (traffic or health check).
    fn apply(&self, peer: &mut HttpPeer, host: &str) {
        peer.sni = self.sni.clone().unwrap_or_else(|| host.to_owned());
        peer.options.ca = self.ca.clone();
        peer.client_cert_key = self.client_cert.clone();
        peer.options.verify_cert = self.verify;
        peer.options.verify_hostname = self.verify;
    }
}

/// The host part of `host:port` (IPv6 brackets removed).
fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// One upstream pool.
pub struct Pool {
    spec: Upstream,
    tls: Option<PeerTls>,
    /// The host each resolved address was written with (SNI default).
    hosts: HashMap<SocketAddr, String>,
    lb: LoadBalancer<RoundRobin>,
    weights: HashMap<SocketAddr, u32>,
    passive: Mutex<HashMap<SocketAddr, Passive>>,
    next_check: Mutex<Instant>,
    health: Mutex<HashMap<SocketAddr, bool>>,
    /// Start times of the latest passing active checks (empty without active checks).
    passes: PassStarts,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Builds a pool (no I/O: addresses were resolved when the config loaded).
    pub fn from_spec(spec: &Upstream) -> Result<Pool, UpstreamError> {
        let mut set = BTreeSet::new();
        let mut weights = HashMap::new();
        let mut hosts = HashMap::new();
        let tls = spec.tls.as_ref().map(PeerTls::from_spec);
        if spec.tls.as_ref().is_some_and(|t| !t.verify) {
            tracing::warn!(upstream = %spec.name, "TLS verification of the backends is off (tls.verify: false)");
        }
        for b in &spec.backends {
            for addr in &b.resolved {
                hosts.insert(*addr, host_of(&b.address));
                let weight = b.weight.get();
                let backend = Backend {
                    addr: pingora::protocols::l4::socket::SocketAddr::Inet(*addr),
                    weight: usize::try_from(weight).unwrap_or(1),
                    ext: Default::default(),
                };
                set.insert(backend);
                weights.insert(*addr, weight);
            }
        }
        if set.is_empty() {
            return Err(UpstreamError::NoBackends(spec.name.clone()));
        }
        let mut backends = Backends::new(Static::new(set));
        let passes = PassStarts::default();
        let keep = spec
            .health_check
            .as_ref()
            .map_or(1, |hc| hc.healthy_after.get() as usize);
        let observed = |inner: Box<dyn HealthCheck + Send + Sync>| {
            Box::new(ObservedCheck {
                inner,
                passes: Arc::clone(&passes),
                keep,
            })
        };
        if let Some(hc) = &spec.health_check {
            let (ok, fail) = (
                hc.healthy_after.get() as usize,
                hc.unhealthy_after.get() as usize,
            );
            match &hc.kind {
                HealthCheckKind::Tcp => {
                    let mut check = TcpHealthCheck::new();
                    check.consecutive_success = ok;
                    check.consecutive_failure = fail;
                    check.peer_template.options.connection_timeout = Some(hc.timeout);
                    backends.set_health_check(observed(check));
                }
                HealthCheckKind::Http { path, host } => {
                    let host = host.clone().unwrap_or_else(|| {
                        spec.backends
                            .first()
                            .map(|b| b.address.clone())
                            .unwrap_or_default()
                    });
                    let mut check = HttpHealthCheck::new(&host, tls.is_some());
                    if let Some(t) = &tls {
                        t.apply(&mut check.peer_template, &host_of(&host));
                    }
                    check.consecutive_success = ok;
                    check.consecutive_failure = fail;
                    check.peer_template.options.connection_timeout = Some(hc.timeout);
                    check.peer_template.options.read_timeout = Some(hc.timeout);
                    check.req = health_request(path, &host).map_err(|message| {
                        UpstreamError::HealthCheck {
                            pool: spec.name.clone(),
                            message,
                        }
                    })?;
                    check.validator = Some(Box::new(|resp: &ResponseHeader| {
                        let code = resp.status.as_u16();
                        if (200..400).contains(&code) {
                            Ok(())
                        } else {
                            Err(pingora::Error::explain(
                                pingora::ErrorType::Custom("health check status"),
                                format!("status {code}"),
                            ))
                        }
                    }));
                    backends.set_health_check(observed(Box::new(check)));
                }
            }
        }
        let lb = LoadBalancer::from_backends(backends);
        // Static discovery never awaits; a pending or failed update leaves the pool empty,
        // which selection reports as "no healthy backend" rather than panicking.
        if let Some(Err(e)) = lb.update().now_or_never() {
            tracing::warn!(upstream = %spec.name, error = %e, "backend discovery failed");
        }
        Ok(Pool {
            spec: spec.clone(),
            tls,
            hosts,
            lb,
            weights,
            passive: Mutex::new(HashMap::new()),
            next_check: Mutex::new(Instant::now()),
            health: Mutex::new(HashMap::new()),
            passes,
        })
    }

    /// Pool name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The definition this pool was built from.
    #[must_use]
    pub fn spec(&self) -> &Upstream {
        &self.spec
    }

    /// Picks a backend by weight among healthy ones not in `tried`. Passively ejected backends
    /// are skipped while any other candidate exists.
    #[must_use]
    pub fn select(&self, tried: &[SocketAddr], now: Instant) -> Option<SocketAddr> {
        let max_iterations = self.weights.len().saturating_mul(4).max(16);
        let ejected: Vec<SocketAddr> = {
            let passive = self.passive.lock();
            passive
                .iter()
                .filter(|(_, p)| p.ejected_until.is_some_and(|t| t > now))
                .map(|(a, _)| *a)
                .collect()
        };
        let pick = |skip_ejected: bool| {
            self.lb
                .select_with(b"", max_iterations, |b, healthy| {
                    let Some(addr) = b.addr.as_inet() else {
                        return false;
                    };
                    healthy && !tried.contains(addr) && !(skip_ejected && ejected.contains(addr))
                })
                .and_then(|b| b.addr.as_inet().copied())
        };
        pick(true).or_else(|| {
            if ejected.is_empty() {
                None
            } else {
                pick(false)
            }
        })
    }

    /// The peer for one attempt at `addr`, with the pool's timeouts.
    #[must_use]
    pub fn peer(&self, addr: SocketAddr) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(addr, self.tls.is_some(), String::new());
        if let Some(tls) = &self.tls {
            let host = self.hosts.get(&addr).map_or("", String::as_str);
            tls.apply(&mut peer, host);
        }
        let t = &self.spec.timeouts;
        peer.options.connection_timeout = Some(t.connect);
        peer.options.read_timeout = Some(t.read);
        peer.options.write_timeout = Some(t.write);
        peer.options.idle_timeout = Some(t.idle);
        Box::new(peer)
    }

    /// Extra attempts allowed after a connect failure.
    #[must_use]
    pub fn retries(&self) -> u32 {
        self.spec.retries
    }

    /// Records a failed connect; returns true when this failure ejected the backend.
    pub fn record_connect_failure(&self, addr: SocketAddr, now: Instant) -> bool {
        let cfg = &self.spec.passive_health;
        let mut passive = self.passive.lock();
        let state = passive.entry(addr).or_default();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        if state.consecutive_failures >= cfg.consecutive_failures.get()
            && state.ejected_until.is_none_or(|t| t <= now)
        {
            state.ejected_at = Some(now);
            state.ejected_until = Some(now + cfg.ejection);
            state.consecutive_failures = 0;
            tracing::warn!(upstream = %self.spec.name, backend = %addr, ejection = ?cfg.ejection, "backend ejected after consecutive connect failures");
            return true;
        }
        false
    }

    /// Records a successful exchange with a backend (clears its failure streak).
    pub fn record_success(&self, addr: SocketAddr) {
        let mut passive = self.passive.lock();
        if let Some(state) = passive.get_mut(&addr) {
            state.consecutive_failures = 0;
            state.ejected_at = None;
            state.ejected_until = None;
        }
    }

    /// Runs one round of active checks if one is due; returns whether it ran.
    pub async fn health_check_if_due(&self, now: Instant) -> bool {
        let Some(hc) = &self.spec.health_check else {
            return false;
        };
        {
            let mut next = self.next_check.lock();
            if *next > now {
                return false;
            }
            *next = now + hc.interval;
        }
        self.lb.backends().run_health_check(true).await;
        self.readmit_seen_up(hc.healthy_after.get(), now);
        let mut previous = self.health.lock();
        for status in self.status(Instant::now()) {
            let before = previous.insert(status.address, status.healthy);
            if before.is_some_and(|b| b != status.healthy) || (before.is_none() && !status.healthy)
            {
                if status.healthy {
                    tracing::info!(upstream = %self.spec.name, backend = %status.address, "backend healthy");
                } else {
                    tracing::warn!(upstream = %self.spec.name, backend = %status.address, "backend unhealthy");
                }
            }
        }
        true
    }

    /// Ends the ejection of every backend that passed `healthy_after` active checks in a row,
    /// all started after the ejection began: the connect failures that ejected it belong to an
    /// outage the checks saw end, so it returns within the health-check thresholds rather than
    /// when the ejection runs out (as Envoy's outlier detection does after a passing check).
    fn readmit_seen_up(&self, healthy_after: u32, now: Instant) {
        let passes = self.passes.lock();
        let mut passive = self.passive.lock();
        for (addr, state) in passive.iter_mut() {
            let (Some(at), Some(until)) = (state.ejected_at, state.ejected_until) else {
                continue;
            };
            let seen_up = passes.get(addr).is_some_and(|starts| {
                starts.len() >= healthy_after as usize && starts.front().is_some_and(|&t| t >= at)
            });
            if seen_up && until > now {
                state.consecutive_failures = 0;
                state.ejected_at = None;
                state.ejected_until = None;
                tracing::info!(upstream = %self.spec.name, backend = %addr, "ejected backend readmitted: active checks pass again");
            }
        }
    }

    /// Time until the next active check is due (None without checks).
    #[must_use]
    pub fn check_interval(&self) -> Option<Duration> {
        self.spec.health_check.as_ref().map(|h| h.interval)
    }

    /// Health of every backend.
    #[must_use]
    pub fn status(&self, now: Instant) -> Vec<BackendStatus> {
        let passive = self.passive.lock();
        let mut out: Vec<BackendStatus> = self
            .lb
            .backends()
            .get_backend()
            .iter()
            .filter_map(|b| {
                let addr = *b.addr.as_inet()?;
                Some(BackendStatus {
                    address: addr,
                    weight: self.weights.get(&addr).copied().unwrap_or(1),
                    healthy: self.lb.backends().ready(b),
                    ejected: passive
                        .get(&addr)
                        .is_some_and(|p| p.ejected_until.is_some_and(|t| t > now)),
                })
            })
            .collect();
        out.sort_by_key(|s| s.address);
        out
    }
}

fn health_request(path: &str, host: &str) -> Result<RequestHeader, String> {
    let mut req = RequestHeader::build("GET", path.as_bytes(), None).map_err(|e| e.to_string())?;
    req.insert_header("Host", host).map_err(|e| e.to_string())?;
    req.insert_header("User-Agent", "portcullis-health-check")
        .map_err(|e| e.to_string())?;
    Ok(req)
}

/// Pools by name, reusing a pool from the previous generation when its definition is unchanged
/// so health and ejection state survive a reload.
#[derive(Debug, Default, Clone)]
pub struct PoolSet {
    /// foldhash: every request looks its pool up by name (twice), and SipHash cost more than
    /// the rest of the lookup; the names come from the config, not from requests.
    pools: HashMap<String, Arc<Pool>, foldhash::fast::RandomState>,
}

impl PoolSet {
    /// Builds the pools of a config, taking unchanged ones from `previous`.
    pub fn build<'a>(
        upstreams: impl IntoIterator<Item = &'a Upstream>,
        previous: Option<&PoolSet>,
    ) -> Result<PoolSet, UpstreamError> {
        let mut pools = HashMap::default();
        for spec in upstreams {
            let reused = previous
                .and_then(|p| p.pools.get(&spec.name))
                .filter(|p| p.spec == *spec)
                .cloned();
            let pool = match reused {
                Some(p) => p,
                None => Arc::new(Pool::from_spec(spec)?),
            };
            pools.insert(spec.name.clone(), pool);
        }
        Ok(PoolSet { pools })
    }

    /// The pool with this name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.get(name)
    }

    /// All pools.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Pool>> {
        self.pools.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_backends: &str) -> Upstream {
        let cfg = portcullis_config::parse_str(
            "t.yaml",
            &format!(
                "listeners: [{{ name: w, address: \"127.0.0.1:1\" }}]\nupstreams:\n  app:\n    backends: {yaml_backends}\n    passive_health: {{ consecutive_failures: 2, ejection: 1s }}\nroutes: [{{ name: r, upstream: app }}]\n"
            ),
        )
        .unwrap();
        cfg.upstreams["app"].clone()
    }

    #[test]
    fn weights_split_traffic_proportionally() {
        let pool = Pool::from_spec(&spec(
            "[{ address: \"127.0.0.1:9001\", weight: 3 }, { address: \"127.0.0.1:9002\", weight: 1 }]",
        ))
        .unwrap();
        let now = Instant::now();
        let mut first = 0;
        for _ in 0..4000 {
            if pool.select(&[], now).unwrap().port() == 9001 {
                first += 1;
            }
        }
        assert!(
            (2880..=3120).contains(&first),
            "3:1 weights gave {first}/4000"
        );
    }

    #[test]
    fn skips_tried_backends_and_reports_exhaustion() {
        let pool = Pool::from_spec(&spec(
            "[{ address: \"127.0.0.1:9001\" }, { address: \"127.0.0.1:9002\" }]",
        ))
        .unwrap();
        let now = Instant::now();
        let a = pool.select(&[], now).unwrap();
        let b = pool.select(&[a], now).unwrap();
        assert_ne!(a, b);
        assert_eq!(pool.select(&[a, b], now), None);
    }

    #[test]
    fn ejects_after_consecutive_failures_and_readmits_after_the_ejection() {
        let pool = Pool::from_spec(&spec(
            "[{ address: \"127.0.0.1:9001\" }, { address: \"127.0.0.1:9002\" }]",
        ))
        .unwrap();
        let bad: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let now = Instant::now();
        assert!(!pool.record_connect_failure(bad, now));
        assert!(pool.record_connect_failure(bad, now));
        for _ in 0..20 {
            assert_ne!(pool.select(&[], now), Some(bad));
        }
        // Only the ejected backend left: it is still tried rather than failing outright.
        let other: SocketAddr = "127.0.0.1:9002".parse().unwrap();
        assert_eq!(pool.select(&[other], now), Some(bad));
        let later = now + Duration::from_secs(2);
        assert!((0..50).any(|_| pool.select(&[], later) == Some(bad)));
    }

    /// A pool of `addr` and `other` with TCP checks every 100 ms and an hour-long ejection after
    /// one connect failure.
    fn checked_pool(
        addr: SocketAddr,
        other: SocketAddr,
        unhealthy_after: u32,
        healthy_after: u32,
    ) -> Pool {
        let cfg = portcullis_config::parse_str(
            "t.yaml",
            &format!(
                "listeners: [{{ name: w, address: \"127.0.0.1:1\" }}]\nupstreams:\n  app:\n    backends: [{{ address: \"{addr}\" }}, {{ address: \"{other}\" }}]\n    health_check: {{ type: tcp, interval: 100ms, timeout: 500ms, unhealthy_after: {unhealthy_after}, healthy_after: {healthy_after} }}\n    passive_health: {{ consecutive_failures: 1, ejection: 1h }}\nroutes: [{{ name: r, upstream: app }}]\n"
            ),
        )
        .unwrap();
        Pool::from_spec(&cfg.upstreams["app"]).unwrap()
    }

    /// (healthy, ejected) of `addr`.
    fn health_of(pool: &Pool, addr: SocketAddr) -> (bool, bool) {
        pool.status(Instant::now())
            .into_iter()
            .find(|s| s.address == addr)
            .map(|s| (s.healthy, s.ejected))
            .unwrap()
    }

    fn listen() -> std::net::TcpListener {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    }

    #[tokio::test]
    async fn active_check_readmits_a_backend_it_saw_come_back() {
        let (a, b) = (listen(), listen());
        let addr = a.local_addr().unwrap();
        let pool = checked_pool(addr, b.local_addr().unwrap(), 1, 1);
        let t0 = Instant::now();
        assert!(pool.health_check_if_due(t0).await);
        assert!(pool.record_connect_failure(addr, t0));
        drop(a);
        assert!(pool.health_check_if_due(t0 + Duration::from_secs(1)).await);
        assert_eq!(health_of(&pool, addr), (false, true));
        // Back on the same port: the check that sees it up also lifts the hour-long ejection.
        let _a = std::net::TcpListener::bind(addr).unwrap();
        assert!(pool.health_check_if_due(t0 + Duration::from_secs(2)).await);
        assert_eq!(health_of(&pool, addr), (true, false));
        assert!((0..50).any(|_| pool.select(&[], Instant::now()) == Some(addr)));
    }

    #[tokio::test]
    async fn ejection_ends_after_healthy_after_passes_that_began_after_it() {
        // The backend never fails an active check: it died and came back between two rounds,
        // so Pingora's health never flips, yet traffic ejected it meanwhile.
        let (up, other) = (listen(), listen());
        let addr = up.local_addr().unwrap();
        let pool = checked_pool(addr, other.local_addr().unwrap(), 3, 2);
        let t0 = Instant::now();
        // Two passes before the ejection do not count for it.
        assert!(pool.health_check_if_due(t0).await);
        assert!(pool.health_check_if_due(t0 + Duration::from_secs(1)).await);
        assert!(pool.record_connect_failure(addr, Instant::now()));
        assert_eq!(health_of(&pool, addr), (true, true));
        // One pass after it is fewer than `healthy_after`.
        assert!(pool.health_check_if_due(t0 + Duration::from_secs(2)).await);
        assert_eq!(health_of(&pool, addr), (true, true));
        assert!((0..50).all(|_| pool.select(&[], Instant::now()) != Some(addr)));
        // The second one in a row ends the hour-long ejection.
        assert!(pool.health_check_if_due(t0 + Duration::from_secs(3)).await);
        assert_eq!(health_of(&pool, addr), (true, false));
        assert!((0..50).any(|_| pool.select(&[], Instant::now()) == Some(addr)));
    }

    #[test]
    fn reuses_unchanged_pools_across_builds() {
        let a = spec("[{ address: \"127.0.0.1:9001\" }]");
        let first = PoolSet::build([&a], None).unwrap();
        let second = PoolSet::build([&a], Some(&first)).unwrap();
        assert!(Arc::ptr_eq(
            first.get("app").unwrap(),
            second.get("app").unwrap()
        ));
        let changed = spec("[{ address: \"127.0.0.1:9002\" }]");
        let third = PoolSet::build([&changed], Some(&second)).unwrap();
        assert!(!Arc::ptr_eq(
            second.get("app").unwrap(),
            third.get("app").unwrap()
        ));
    }
}
