//! The validated configuration. Constructed only by `validate`; bad states are unrepresentable
//! where the type system allows (weights are non-zero, regexes compiled, addresses parsed).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use regex::Regex;

/// A whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Process settings (apply at start; a reload that changes them logs that a restart is needed).
    pub server: Server,
    /// The admin listener, if any.
    pub admin: Option<Admin>,
    /// Access-log settings.
    pub access_log: AccessLog,
    /// Traffic listeners (apply at start).
    pub listeners: Vec<Listener>,
    /// Upstream pools by name.
    pub upstreams: BTreeMap<String, Upstream>,
    /// Routes in match order: the first route that matches wins.
    pub routes: Vec<Route>,
    /// Redis, behavioural bans, IP lists and in-flight limits.
    pub protection: crate::ratelimit::Protection,
}

impl Config {
    /// Every TLS file the config reads (certificates, keys, CA bundles), so a reload can notice
    /// a changed file and the watcher can watch their directories.
    #[must_use]
    pub fn tls_files(&self) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut cert = |c: &crate::tls::TlsCertificate| {
            out.push(c.cert_file.clone());
            out.push(c.key_file.clone());
        };
        for l in &self.listeners {
            if let Some(t) = &l.tls {
                t.certificates.iter().for_each(&mut cert);
            }
        }
        for u in self.upstreams.values() {
            if let Some(c) = u.tls.as_ref().and_then(|t| t.client_cert.as_ref()) {
                cert(c);
            }
        }
        for l in &self.listeners {
            if let Some(ca) = l.tls.as_ref().and_then(|t| t.client_auth.as_ref()) {
                out.push(ca.ca_file.clone());
            }
        }
        for u in self.upstreams.values() {
            if let Some(ca) = u.tls.as_ref().and_then(|t| t.ca_file.clone()) {
                out.push(ca);
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Process-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Worker threads per service.
    pub threads: usize,
    /// After SIGTERM, time to keep serving while load balancers notice the pod is not ready.
    pub grace_period: Duration,
    /// Then, time in-flight requests get to finish.
    pub graceful_shutdown_timeout: Duration,
    /// Idle upstream connections kept.
    pub upstream_keepalive_pool_size: usize,
    /// Work stealing between worker threads.
    pub work_stealing: bool,
    /// Reload when the config directory changes.
    pub watch_config: bool,
    /// Debounce between a change and the reload.
    pub reload_debounce: Duration,
    /// Peers whose X-Forwarded-For decides the client address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Longest a client may take to send a whole request head (slowloris bound).
    pub request_header_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub client_body_timeout: Duration,
    /// How long an idle keep-alive client connection stays open between requests.
    pub keepalive_timeout: Duration,
    /// Requests served on one client connection before it is closed (0: no limit).
    pub keepalive_requests: usize,
    /// Client connections open at once, all listeners together; more are closed at accept.
    pub max_connections: usize,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            threads: 1,
            grace_period: Duration::from_secs(5),
            graceful_shutdown_timeout: Duration::from_secs(10),
            upstream_keepalive_pool_size: 128,
            work_stealing: true,
            watch_config: true,
            reload_debounce: Duration::from_millis(500),
            trusted_proxies: Vec::new(),
            request_header_timeout: Duration::from_secs(10),
            client_body_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(60),
            keepalive_requests: 1000,
            max_connections: 16_384,
        }
    }
}

/// The admin listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Bound address.
    pub address: SocketAddr,
}

/// Access-log settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// Whether lines are written.
    pub enabled: bool,
    /// Lowercased query parameter names whose values are redacted.
    pub redact_query_params: Vec<String>,
}

/// Query parameters redacted in access logs whatever the config says.
pub const DEFAULT_REDACTED_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "code",
    "id_token",
    "key",
    "password",
    "refresh_token",
    "secret",
    "sig",
    "signature",
    "token",
];

/// A traffic listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Unique name.
    pub name: String,
    /// Bound address.
    pub address: SocketAddr,
    /// Accept h2c (HTTP/2 prior knowledge) as well as HTTP/1.1.
    pub h2c: bool,
    /// TLS termination (None: plain HTTP).
    pub tls: Option<crate::tls::ListenerTls>,
}

/// An upstream pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upstream {
    /// Pool name.
    pub name: String,
    /// Backends, each resolved to one or more socket addresses.
    pub backends: Vec<Backend>,
    /// Active health check, if configured.
    pub health_check: Option<HealthCheck>,
    /// Passive ejection settings.
    pub passive_health: PassiveHealth,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Extra attempts on another backend after a connect failure (nothing reached the backend).
    pub retries: u32,
    /// TLS to the backends (None: plain HTTP).
    pub tls: Option<crate::tls::UpstreamTls>,
}

/// One backend as configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    /// The address as written (`host:port`).
    pub address: String,
    /// Addresses it resolved to at load.
    pub resolved: Vec<SocketAddr>,
    /// Relative weight.
    pub weight: NonZeroU32,
}

/// Which protocol an active health check speaks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HealthCheckKind {
    /// Open a TCP connection.
    Tcp,
    /// Send `GET path` and expect a 2xx or 3xx.
    Http {
        /// Request path.
        path: String,
        /// Host header (None: the backend address).
        host: Option<String>,
    },
}

/// Active health check settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    /// Protocol.
    pub kind: HealthCheckKind,
    /// Time between rounds.
    pub interval: Duration,
    /// Timeout of one check.
    pub timeout: Duration,
    /// Consecutive failures before a backend is marked down.
    pub unhealthy_after: NonZeroU32,
    /// Consecutive successes before it is marked up again.
    pub healthy_after: NonZeroU32,
}

/// Passive ejection: connect failures take a backend out for a while.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PassiveHealth {
    /// Consecutive connect failures that eject a backend.
    pub consecutive_failures: NonZeroU32,
    /// How long it stays ejected.
    pub ejection: Duration,
}

/// Upstream timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Each read.
    pub read: Duration,
    /// Each write.
    pub write: Duration,
    /// Idle pooled connection lifetime.
    pub idle: Duration,
}

/// A route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Unique name.
    pub name: String,
    /// Match conditions.
    pub matcher: RouteMatch,
    /// Explicit priority (higher first).
    pub priority: i64,
    /// What happens to a matching request.
    pub action: RouteAction,
    /// Edits of the upstream request headers.
    pub request_headers: HeaderOps,
    /// Edits of the downstream response headers.
    pub response_headers: HeaderOps,
    /// WAF settings (None: no WAF on this route).
    pub waf: Option<crate::waf::WafSpec>,
    /// Rate limits (None: not limited).
    pub rate_limit: Option<crate::ratelimit::RouteRateLimit>,
    /// Authentication and authorization (None: no auth on this route).
    pub auth: Option<crate::auth::RouteAuth>,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Proxy to the named upstream pool.
    Proxy {
        /// Pool name (validated to exist).
        upstream: String,
    },
    /// Answer directly.
    Direct(DirectResponse),
}

/// A fixed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectResponse {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: String,
    /// Headers (validated names and values).
    pub headers: Vec<(String, String)>,
}

/// Route match conditions; all present conditions must hold.
#[derive(Debug, Clone, Default)]
pub struct RouteMatch {
    /// Host patterns (empty: any host).
    pub hosts: Vec<HostMatch>,
    /// Path condition.
    pub path: Option<PathMatch>,
    /// Methods (empty: any).
    pub methods: Vec<String>,
    /// Header conditions.
    pub headers: Vec<HeaderMatch>,
}

/// A host pattern, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// The host equals this name.
    Exact(String),
    /// The host ends with this suffix (stored with its leading dot, e.g. `.example.com`).
    Wildcard(String),
}

/// A path condition.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// Equal to.
    Exact(String),
    /// Starts with, at a segment boundary.
    Prefix(String),
    /// Matches the anchored regular expression.
    Regex(Regex),
}

/// A header condition.
#[derive(Debug, Clone)]
pub struct HeaderMatch {
    /// Lowercased header name.
    pub name: String,
    /// The condition on its value.
    pub condition: HeaderCondition,
}

/// The condition on one header.
#[derive(Debug, Clone)]
pub enum HeaderCondition {
    /// Present with exactly this value.
    Equals(String),
    /// Present with a value matching this anchored regex.
    Matches(Regex),
    /// Present (true) or absent (false).
    Present(bool),
}

/// Header edits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOps {
    /// Replace these.
    pub set: Vec<(String, String)>,
    /// Append these.
    pub add: Vec<(String, String)>,
    /// Remove these (lowercased names).
    pub remove: Vec<String>,
}

impl HeaderOps {
    /// True when there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}
