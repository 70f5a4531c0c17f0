//! Raw serde types: the YAML exactly as written. They never leave this crate; `validate` turns
//! them into the model. Every struct rejects unknown keys.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// One config file. Sections may be split across files in the config directory: listeners and
/// routes are concatenated, upstreams merged by name, singletons defined at most once.
/// Only read through its JSON Schema: files are split into items and each item is read alone.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    /// Process-wide settings (threads, drain periods). Not hot-reloadable.
    pub server: Option<RawServer>,
    /// The admin listener: /metrics, /healthz, /readyz.
    pub admin: Option<RawAdmin>,
    /// Access-log settings.
    pub access_log: Option<RawAccessLog>,
    /// Traffic listeners.
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    /// Upstream pools by name.
    #[serde(default)]
    pub upstreams: BTreeMap<String, RawUpstream>,
    /// Routes, matched in the documented priority order.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Redis connection for shared rate limits and bans.
    pub redis: Option<crate::ratelimit::RawRedis>,
    /// Behavioural protection: counters per client and ban rules.
    pub abuse: Option<crate::ratelimit::RawAbuse>,
    /// Named IP allow/deny lists.
    pub ip_lists: Option<BTreeMap<String, crate::ratelimit::RawIpList>>,
    /// Most requests in flight per route and per upstream pool.
    pub concurrency: Option<crate::ratelimit::RawConcurrency>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    /// Worker threads per listener service (default 1).
    pub threads: Option<i64>,
    /// After SIGTERM, how long to keep accepting while load balancers notice (default 5s).
    pub grace_period: Option<String>,
    /// After the grace period, how long in-flight requests get to finish (default 10s).
    pub graceful_shutdown_timeout: Option<String>,
    /// Idle upstream connections kept per process (default 128).
    pub upstream_keepalive_pool_size: Option<i64>,
    /// Let idle worker threads steal work (default true).
    pub work_stealing: Option<bool>,
    /// Watch the config directory and reload on change (default true).
    pub watch_config: Option<bool>,
    /// Debounce between a change on disk and the reload (default 500ms).
    pub reload_debounce: Option<String>,
    /// Longest a client may take to send a whole request head, from its first byte (from the
    /// connection's start for a new connection); the connection is closed after (default 10s).
    pub request_header_timeout: Option<String>,
    /// Longest wait for the next bytes of a request body (default 30s).
    pub client_body_timeout: Option<String>,
    /// How long an idle keep-alive client connection stays open between requests (default 60s).
    pub keepalive_timeout: Option<String>,
    /// Requests served on one client connection before it is closed; 0: no limit (default 1000).
    pub keepalive_requests: Option<i64>,
    /// Client connections open at once, all listeners together; more are closed at accept
    /// (default 16384).
    pub max_connections: Option<i64>,
    /// Peers (CIDRs) whose X-Forwarded-For is believed: the client is the rightmost address
    /// not in this list (default: none; the TCP peer is the client).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    /// host:port of the admin listener; keep it off public interfaces.
    pub address: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessLog {
    /// Write one JSON line per request to stdout (default true).
    pub enabled: Option<bool>,
    /// Query parameters whose values are replaced by `[REDACTED]` (added to the built-in list).
    #[serde(default)]
    pub redact_query_params: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    /// Unique listener name.
    pub name: String,
    /// host:port to bind.
    pub address: String,
    /// Accept HTTP/2 with prior knowledge (h2c) besides HTTP/1.1 (default false).
    pub h2c: Option<bool>,
    /// TLS termination: certificates by SNI, client certificates, lowest version.
    pub tls: Option<crate::tls::RawListenerTls>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    /// Backends with address and weight.
    pub backends: Vec<RawBackend>,
    /// Active health check.
    pub health_check: Option<RawHealthCheck>,
    /// Passive ejection on connect failures.
    pub passive_health: Option<RawPassiveHealth>,
    /// Connection timeouts.
    pub timeouts: Option<RawTimeouts>,
    /// Extra attempts on another backend after a connect failure (nothing was sent, so any method
    /// may retry), when an untried healthy backend exists (default 1).
    pub retries: Option<i64>,
    /// TLS (and mTLS) to the backends.
    pub tls: Option<crate::tls::RawUpstreamTls>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackend {
    /// host:port or ip:port; names are resolved at load and on every reload.
    pub address: String,
    /// Relative weight, at least 1 (default 1).
    pub weight: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthCheck {
    /// `http` (default) or `tcp`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Path requested by an HTTP check (default /).
    pub path: Option<String>,
    /// Host header of an HTTP check (default the backend address).
    pub host: Option<String>,
    /// Time between checks (default 5s).
    pub interval: Option<String>,
    /// Connect and read timeout of one check (default 1s).
    pub timeout: Option<String>,
    /// Consecutive failures that mark a backend down (default 3).
    pub unhealthy_after: Option<i64>,
    /// Consecutive successes that bring it back (default 2).
    pub healthy_after: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPassiveHealth {
    /// Consecutive connect failures that eject a backend (default 3).
    pub consecutive_failures: Option<i64>,
    /// How long an ejected backend is skipped (default 10s).
    pub ejection: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    /// TCP connect timeout (default 2s).
    pub connect: Option<String>,
    /// Timeout for each read from the backend (default 30s).
    pub read: Option<String>,
    /// Timeout for each write to the backend (default 30s).
    pub write: Option<String>,
    /// How long an idle pooled connection is kept (default 60s).
    pub idle: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    /// Unique route name (used in metrics and logs).
    pub name: String,
    /// What the route matches; an empty match matches everything.
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// Higher priorities are tried first (default 0).
    pub priority: Option<i64>,
    /// Upstream pool to proxy to.
    pub upstream: Option<String>,
    /// Answer directly instead of proxying.
    pub direct_response: Option<RawDirectResponse>,
    /// Header edits on the request sent upstream.
    pub request_headers: Option<RawHeaderOps>,
    /// Header edits on the response sent downstream.
    pub response_headers: Option<RawHeaderOps>,
    /// Web application firewall.
    pub waf: Option<crate::waf::RawWaf>,
    /// Rate-limit policies.
    pub rate_limit: Option<crate::ratelimit::RawRouteRateLimit>,
    /// Authentication and authorization.
    pub auth: Option<crate::auth::RawRouteAuth>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    /// Host names; `*.example.com` matches one or more labels below example.com.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The path equals this.
    pub path_exact: Option<String>,
    /// The path starts with this, at a segment boundary when it does not end in `/`.
    pub path_prefix: Option<String>,
    /// The path matches this regular expression (anchored at both ends).
    pub path_regex: Option<String>,
    /// Methods (uppercase).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Header conditions, all of which must hold.
    #[serde(default)]
    pub headers: Vec<RawHeaderMatch>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaderMatch {
    /// Header name.
    pub name: String,
    /// Exact value.
    pub value: Option<String>,
    /// Regular expression on the value (anchored).
    pub regex: Option<String>,
    /// When true the header must be present; when false absent.
    pub present: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirectResponse {
    /// Status code, 200-599.
    pub status: i64,
    /// Body text.
    #[serde(default)]
    pub body: String,
    /// Response headers (e.g. Location for a redirect, Content-Type).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaderOps {
    /// Set (replace) these headers.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Append these headers.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Remove these headers.
    #[serde(default)]
    pub remove: Vec<String>,
}
