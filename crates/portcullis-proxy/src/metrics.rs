//! Prometheus metrics of the gateway, in one registry served on the admin listener.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the gateway exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: IntCounterVec,
    /// Request latency by route.
    pub latency: HistogramVec,
    /// Requests currently being handled.
    pub in_flight: IntGauge,
    /// Denies by route and reason.
    pub denied: IntCounterVec,
    /// Backend health (1 healthy, 0 not) by upstream and backend.
    pub backend_healthy: IntGaugeVec,
    /// Connect failures by upstream and backend.
    pub connect_failures: IntCounterVec,
    /// Retries by upstream.
    pub retries: IntCounterVec,
    /// Config reloads by result (`ok`, `failed`).
    pub reloads: IntCounterVec,
    /// Unix time of the last successful (re)load.
    pub last_reload_success: IntGauge,
    /// Access-log lines dropped because the writer fell behind.
    pub access_log_dropped: IntCounter,
    /// Time to build a runtime from config.
    pub reload_duration: Histogram,
    /// WAF findings by route and action (`blocked`, `detected`).
    pub waf_findings: IntCounterVec,
    /// Response DLP outcomes by route and action (`masked`, `blocked`).
    pub dlp: IntCounterVec,
    /// Client connections open, all listeners together.
    pub client_connections: IntGauge,
    /// Client connections closed at accept because `max_connections` were open.
    pub client_connections_refused: IntCounter,
    /// Client connections closed because a request head missed `request_header_timeout`.
    pub request_header_timeouts: IntCounter,
    /// TLS handshakes that failed or missed the deadline, by reason.
    pub tls_handshake_failures: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "portcullis_requests_total",
                "Requests handled, by route, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_request_duration_seconds",
                "Time from request head to the end of the response, by route.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route"],
        )?;
        let in_flight = IntGauge::new("portcullis_requests_in_flight", "Requests being handled.")?;
        let denied = IntCounterVec::new(
            Opts::new(
                "portcullis_denied_total",
                "Requests refused by the gateway, by route and reason.",
            ),
            &["route", "reason"],
        )?;
        let backend_healthy = IntGaugeVec::new(
            Opts::new(
                "portcullis_upstream_backend_healthy",
                "1 when a backend passes its health checks.",
            ),
            &["upstream", "backend"],
        )?;
        let connect_failures = IntCounterVec::new(
            Opts::new(
                "portcullis_upstream_connect_failures_total",
                "Failed connects to a backend.",
            ),
            &["upstream", "backend"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "portcullis_upstream_retries_total",
                "Requests retried on another backend.",
            ),
            &["upstream"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "portcullis_config_reloads_total",
                "Config reloads by result.",
            ),
            &["result"],
        )?;
        let last_reload_success = IntGauge::new(
            "portcullis_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load.",
        )?;
        let access_log_dropped = IntCounter::new(
            "portcullis_access_log_dropped_total",
            "Access-log lines dropped because stdout could not keep up.",
        )?;
        let reload_duration = Histogram::with_opts(HistogramOpts::new(
            "portcullis_config_reload_duration_seconds",
            "Time to validate a config and build its runtime.",
        ))?;
        let waf_findings = IntCounterVec::new(
            Opts::new(
                "portcullis_waf_findings_total",
                "Requests on which the WAF found something, by route and action (blocked, detected).",
            ),
            &["route", "action"],
        )?;
        let dlp = IntCounterVec::new(
            Opts::new(
                "portcullis_dlp_total",
                "Responses the DLP rules changed, by route and action (masked, blocked).",
            ),
            &["route", "action"],
        )?;
        let client_connections = IntGauge::new(
            "portcullis_client_connections",
            "Client connections open, all listeners together.",
        )?;
        let client_connections_refused = IntCounter::new(
            "portcullis_client_connections_refused_total",
            "Client connections closed at accept because max_connections were open.",
        )?;
        let request_header_timeouts = IntCounter::new(
            "portcullis_request_header_timeouts_total",
            "Client connections closed because a request head took longer than request_header_timeout.",
        )?;
        let tls_handshake_failures = IntCounterVec::new(
            Opts::new(
                "portcullis_tls_handshake_failures_total",
                "Client TLS handshakes that failed (error) or took longer than request_header_timeout (timeout).",
            ),
            &["reason"],
        )?;
        for reason in ["error", "timeout"] {
            tls_handshake_failures.with_label_values(&[reason]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new("portcullis_build_info", "Build information; always 1."),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(in_flight.clone()),
            Box::new(denied.clone()),
            Box::new(backend_healthy.clone()),
            Box::new(connect_failures.clone()),
            Box::new(retries.clone()),
            Box::new(reloads.clone()),
            Box::new(last_reload_success.clone()),
            Box::new(client_connections.clone()),
            Box::new(client_connections_refused.clone()),
            Box::new(request_header_timeouts.clone()),
            Box::new(tls_handshake_failures.clone()),
            Box::new(access_log_dropped.clone()),
            Box::new(reload_duration.clone()),
            Box::new(waf_findings.clone()),
            Box::new(dlp.clone()),
            Box::new(build_info),
        ] {
            registry.register(c)?;
        }
        // Make both reload series exist from the start so alerts on `failed` have a baseline.
        reloads.with_label_values(&["ok"]);
        reloads.with_label_values(&["failed"]);
        Ok(Self {
            registry,
            requests,
            latency,
            in_flight,
            denied,
            backend_healthy,
            connect_failures,
            retries,
            reloads,
            last_reload_success,
            access_log_dropped,
            reload_duration,
            waf_findings,
            dlp,
            client_connections,
            client_connections_refused,
            request_header_timeouts,
            tls_handshake_failures,
        })
    }

    /// Registers another collector (filters' metrics).
    pub fn register(
        &self,
        c: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(c)
    }

    /// The Prometheus text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Appends counters kept outside the registry (filter crates count with atomics) in the
/// Prometheus text format.
pub(crate) fn render_counters(out: &mut Vec<u8>, counters: &[(&str, &str, u64)]) {
    use std::io::Write as _;
    for (name, help, value) in counters {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }
}

/// Like [`render_counters`] with an explicit type per sample (`counter` or `gauge`).
pub(crate) fn render_counters_typed(out: &mut Vec<u8>, samples: &[(&str, &str, &str, u64)]) {
    use std::io::Write as _;
    for (name, help, kind, value) in samples {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    }
}

/// Appends one labelled family kept outside the registry, in the Prometheus text format.
/// Label values are config names (policy, route), never request data.
pub(crate) fn render_family(
    out: &mut Vec<u8>,
    (name, help, kind): (&str, &str, &str),
    label: &str,
    samples: &[(String, u64)],
) {
    use std::io::Write as _;
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    for (value, n) in samples {
        let value = value.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

/// The method labels, in the order of [`method_index`]; unknown methods are folded into `OTHER`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// The position of a method's label in [`METHODS`].
fn method_index(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// A bounded label for the request method (unknown methods are folded into `OTHER`).
#[must_use]
pub(crate) fn method_label(method: &str) -> &'static str {
    METHODS
        .get(method_index(method))
        .copied()
        .unwrap_or("OTHER")
}

/// Statuses whose request counters a route keeps at hand (others are looked up by label).
const STATUSES: [u16; 15] = [
    0, 200, 204, 301, 302, 304, 400, 401, 403, 404, 429, 500, 502, 503, 504,
];

/// The metric handles of one route, resolved on first use: a request then increments atomics
/// instead of hashing its label set and taking the metric family's lock. The series are the ones
/// `with_label_values` gives (same names and labels), created only when first counted.
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    route: String,
    latency: Histogram,
    /// `requests{route, method, status}`, by method index and position in [`STATUSES`].
    requests: Box<[OnceLock<IntCounter>]>,
}

impl RouteMetrics {
    fn new(metrics: &Metrics, route: &str) -> Self {
        Self {
            route: route.to_owned(),
            latency: metrics.latency.with_label_values(&[route]),
            requests: (0..METHODS.len() * STATUSES.len())
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    /// Counts one finished request and its latency.
    pub(crate) fn observe(&self, metrics: &Metrics, method: &str, status: u16, seconds: f64) {
        let m = method_index(method);
        let slot = STATUSES
            .iter()
            .position(|s| *s == status)
            .and_then(|s| self.requests.get(m * STATUSES.len() + s));
        let label = METHODS.get(m).copied().unwrap_or("OTHER");
        match slot {
            Some(cell) => cell
                .get_or_init(|| {
                    metrics
                        .requests
                        .with_label_values(&[&self.route, label, &status_label(status)])
                })
                .inc(),
            None => metrics
                .requests
                .with_label_values(&[&self.route, label, &status_label(status)])
                .inc(),
        }
        self.latency.observe(seconds);
    }
}

/// The metric handles of every route of one runtime generation (and of `none`, for requests no
/// route matched), each resolved when the route first finishes a request.
#[derive(Debug)]
pub(crate) struct RouteMetricsCache {
    routes: Box<[OnceLock<RouteMetrics>]>,
}

impl RouteMetricsCache {
    /// An empty cache for `routes` routes.
    pub(crate) fn new(routes: usize) -> Self {
        Self {
            routes: (0..=routes).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The handles of route `index` (None: no route, labelled `none`) named `name`.
    pub(crate) fn get(
        &self,
        metrics: &Metrics,
        index: Option<usize>,
        name: &str,
    ) -> Option<&RouteMetrics> {
        let slot = index.unwrap_or(self.routes.len().saturating_sub(1));
        self.routes
            .get(slot)
            .map(|cell| cell.get_or_init(|| RouteMetrics::new(metrics, name)))
    }
}

/// The status code as a label without allocating for common codes.
#[must_use]
pub(crate) fn status_label(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        0 => "0".into(),
        200 => "200".into(),
        204 => "204".into(),
        301 => "301".into(),
        302 => "302".into(),
        304 => "304".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        429 => "429".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_handles_count_into_the_series_label_lookups_name() {
        let m = Metrics::new().unwrap();
        let cache = RouteMetricsCache::new(2);
        let orders = cache.get(&m, Some(1), "orders").unwrap();
        orders.observe(&m, "GET", 200, 0.001);
        orders.observe(&m, "GET", 200, 0.001);
        orders.observe(&m, "BREW", 418, 0.002);
        cache
            .get(&m, None, "none")
            .unwrap()
            .observe(&m, "POST", 404, 0.0);
        assert!(cache.get(&m, Some(3), "beyond").is_none());
        // Only what was counted exists: nothing is created ahead of time.
        let text = String::from_utf8(m.render()).unwrap();
        assert_eq!(text.matches("portcullis_requests_total{").count(), 3);
        let count = |labels: &[&str]| m.requests.with_label_values(labels).get();
        assert_eq!(count(&["orders", "GET", "200"]), 2);
        assert_eq!(count(&["orders", "OTHER", "418"]), 1);
        assert_eq!(count(&["none", "POST", "404"]), 1);
        let latency = m.latency.with_label_values(&["orders"]);
        assert_eq!(latency.get_sample_count(), 3);
    }

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("TRACE"), "TRACE");
        assert_eq!(method_label("OTHER"), "OTHER");
        assert_eq!(method_label("PROPFIND"), "OTHER");
    }
}
