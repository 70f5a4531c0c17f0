//! The vocabulary every filter shares: a borrowed view of a request, the deny verdict, and the
//! clock. Filter crates (auth, ratelimit, waf) depend on this, never on Pingora, so each filter is
//! a pure function of its inputs that unit tests drive without a network. It is its own crate
//! because three filter crates and the proxy consume it and it must stay dependency-free. It also
//! holds the request-framing rules ([`framing`]), pure over `http` types, so they are fuzzed
//! without building Pingora.

pub mod framing;

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What a filter may look at: the request head, the client, the route. Borrowed from the
/// proxy's session for the duration of one check.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Request method as sent.
    pub method: &'a str,
    /// Path as on the wire (not decoded, no query).
    pub path: &'a str,
    /// Raw query string without the `?`, if any.
    pub query: Option<&'a str>,
    /// Host (from the Host header or the absolute-form URI), lowercased, without port.
    pub host: Option<&'a str>,
    /// All request headers.
    pub headers: &'a http::HeaderMap,
    /// The client address after trusted-proxy processing.
    pub client_ip: IpAddr,
    /// The name of the matched route.
    pub route: &'a str,
}

/// An expected "no": the request is refused with a status, a stable reason code and safe
/// headers. Mapped to a response in exactly one place (the proxy crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    /// HTTP status to answer with.
    pub status: u16,
    /// Stable machine-readable reason (e.g. `waf_blocked`, `rate_limited`); used in the JSON
    /// body, the access log and metric labels, so it must never carry request data.
    pub reason: &'static str,
    /// Human-readable message for the client. Must not echo secrets or internals.
    pub message: Cow<'static, str>,
    /// Extra response headers (e.g. `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
    /// Detail for the access log only (e.g. rule ids that fired). Never sent to the client;
    /// never contains secrets.
    pub log_detail: Option<String>,
}

impl Deny {
    /// A deny with no extra headers or log detail.
    #[must_use]
    pub fn new(status: u16, reason: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            headers: Vec::new(),
            log_detail: None,
        }
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds detail for the access log.
    #[must_use]
    pub fn with_log_detail(mut self, detail: impl Into<String>) -> Self {
        self.log_detail = Some(detail.into());
        self
    }
}

/// Who the client is, once authentication succeeded. Produced by portcullis-auth, read by
/// authorization, rate limiting (per-consumer keys and plans) and the proxy (identity headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// How the client authenticated, e.g. `jwt`, `api_key`, `introspection`, `client_cert`.
    pub method: &'static str,
    /// Subject (`sub` claim, or the client certificate subject).
    pub subject: Option<String>,
    /// Consumer name (API-key owner, or a configured claim).
    pub consumer: Option<String>,
    /// Plan or tier of the consumer (e.g. `free`, `pro`), for quotas.
    pub plan: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Granted roles.
    pub roles: Vec<String>,
    /// Other string-valued claims that policies may key on or require.
    pub claims: Vec<(String, String)>,
}

impl Identity {
    /// The value of a string claim.
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Time as filters see it, so tests can drive it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock time since the Unix epoch.
    fn unix(&self) -> Duration;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn unix(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_builder_keeps_headers_in_order() {
        let d = Deny::new(429, "rate_limited", "slow down")
            .with_header("Retry-After", "2")
            .with_header("RateLimit", "limit=10");
        assert_eq!(d.headers[0].0, "Retry-After");
        assert_eq!(d.headers.len(), 2);
        assert!(d.log_detail.is_none());
    }
}
