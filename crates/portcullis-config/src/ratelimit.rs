//! Rate-limit settings: `routes[].rate_limit` policies and the top-level `redis`, `abuse`,
//! `ip_lists` and `concurrency` sections. Owned by the rate-limit work (portcullis-ratelimit
//! compiles these into limiters, ban trackers and IP matchers).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::parse_duration;
use crate::error::{Diagnostics, Origin};
use crate::load::RawSet;

/// Largest rate or burst accepted in a limit; keeps GCRA arithmetic (nanoseconds in a u64) exact.
const MAX_COUNT: u64 = 1_000_000_000;

// ------------------------------------------------------------------------------------------
// Raw types
// ------------------------------------------------------------------------------------------

/// `routes[].rate_limit` as written.
pub(crate) type RawRouteRateLimit = Vec<RawRateLimitPolicy>;

/// One policy as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimitPolicy {
    /// Counters are shared by every route that has a policy with this name and the same
    /// definition (default: the route's own counters).
    pub name: Option<String>,
    /// What to count by: `client_ip`, `consumer`, `subject`, `claim:<name>`, `header:<name>`,
    /// `route`, or a list of these (a composite key).
    pub key: RawKey,
    /// Limits such as `100/s burst 50`, `20000/h`, `100000/d`; all must admit a request.
    #[serde(default)]
    pub limits: Vec<String>,
    /// Extra limits by consumer plan, e.g. `{ free: ["100000/d"], pro: ["10000000/d"] }`; the
    /// plan `default` applies to identities with no plan or an unlisted one.
    #[serde(default)]
    pub quotas: BTreeMap<String, Vec<String>>,
    /// `local` (default: per gateway process) or `shared` (one combined limit through Redis).
    pub scope: Option<String>,
    /// With `scope: shared`, what to do when Redis is slow or down: `fail_open` (default: fall
    /// back to local limits) or `fail_closed` (answer 503).
    pub on_redis_error: Option<String>,
    /// Requests exempt from this policy.
    pub exempt: Option<RawExempt>,
    /// A map file of per-key thresholds, re-read on reload: one `<key value> <limit>[, <limit>]`
    /// per line (`#` comments); a listed key value gets those limits instead of `limits`.
    pub overrides_file: Option<String>,
}

/// A policy key: one part or a composite list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawKey {
    /// One key part.
    One(String),
    /// A composite key.
    Many(Vec<String>),
}

/// Exemptions of a policy.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExempt {
    /// Client networks (CIDR or single address) never limited by the policy.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Consumer names never limited by the policy.
    #[serde(default)]
    pub consumers: Vec<String>,
}

/// The top-level `redis` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedis {
    /// `redis://host:port/db` or `redis+unix:///path/to/socket`; no password inline.
    pub url: String,
    /// Environment variable holding the Redis password (optional).
    pub password_env: Option<String>,
    /// Timeout of one Redis call on the request path (default 50ms).
    pub timeout: Option<String>,
    /// Timeout of establishing a connection (default 1s).
    pub connect_timeout: Option<String>,
    /// Consecutive failures that open the circuit breaker (default 5).
    pub failure_threshold: Option<i64>,
    /// How long an open breaker skips Redis before one probe (default 5s).
    pub cooldown: Option<String>,
    /// Prefix of every key written (default `portcullis`).
    pub key_prefix: Option<String>,
}

/// The top-level `abuse` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAbuse {
    /// `local` (default) or `shared` (bans are written to Redis and seen by every gateway).
    pub scope: Option<String>,
    /// Status a banned client gets: 403 (default) or 429.
    pub ban_status: Option<i64>,
    /// Most clients tracked at once (default 100000); the least recently seen are dropped.
    pub max_clients: Option<i64>,
    /// How often shared bans are pulled from Redis (default 1s).
    pub sync_interval: Option<String>,
    /// Clients never tracked or banned (CIDR or single address).
    #[serde(default)]
    pub exempt: Vec<String>,
    /// Ban rules.
    #[serde(default)]
    pub rules: Vec<RawAbuseRule>,
}

/// One ban rule as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAbuseRule {
    /// Rule name (logged with the ban).
    pub name: String,
    /// `requests`, `client_errors` (4xx), `server_errors` (5xx), `not_found_paths` (404s on
    /// distinct paths), `auth_failures` or `waf_hits`.
    pub counter: String,
    /// Ban when the counter goes above this many within `within`.
    pub more_than: i64,
    /// Sliding window, e.g. `1m`.
    pub within: String,
    /// Ban duration, e.g. `10m`.
    pub ban_for: String,
}

/// One entry of the top-level `ip_lists` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIpList {
    /// Only these networks pass (when any allow entry or file is given).
    #[serde(default)]
    pub allow: Vec<String>,
    /// These networks are refused with 403; deny wins over allow.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Files with one address or CIDR per line (`#` comments), merged into `allow`.
    #[serde(default)]
    pub allow_files: Vec<String>,
    /// Files with one address or CIDR per line (`#` comments), merged into `deny`.
    #[serde(default)]
    pub deny_files: Vec<String>,
    /// Routes the list applies to (default: every route).
    #[serde(default)]
    pub routes: Vec<String>,
}

/// The top-level `concurrency` section.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConcurrency {
    /// Most requests in flight per route, by route name.
    #[serde(default)]
    pub routes: BTreeMap<String, i64>,
    /// Most requests in flight per upstream pool, by pool name.
    #[serde(default)]
    pub upstreams: BTreeMap<String, i64>,
    /// `Retry-After` sent with a 503 shed (default 1s).
    pub retry_after: Option<String>,
    /// Tighten the `upstreams` limits while the pools answer slowly or fail.
    pub adaptive: Option<RawAdaptive>,
}

/// `concurrency.adaptive` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdaptive {
    /// A response slower than this (or a 5xx / connection failure) cuts the pool's limit by 10%.
    pub latency_target: String,
    /// The limit never goes below this (default 1).
    pub min: Option<i64>,
}

// ------------------------------------------------------------------------------------------
// Validated types
// ------------------------------------------------------------------------------------------

/// Validated rate-limit policies of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteRateLimit {
    /// Policies, all of which must admit a request.
    pub policies: Vec<RateLimitPolicy>,
}

/// One validated policy. Its whole definition (and its name, or else the route) identifies its
/// counters, so an unchanged policy keeps them across a reload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateLimitPolicy {
    /// Counters are shared across routes by this name; `None` = per route.
    pub name: Option<String>,
    /// The parts of the key, at least one.
    pub key: Vec<KeyPart>,
    /// Limits applying to every request.
    pub limits: Vec<Limit>,
    /// Extra limits by plan (`default` for identities without a listed plan).
    pub quotas: BTreeMap<String, Vec<Limit>>,
    /// Local or shared through Redis.
    pub scope: Scope,
    /// Behaviour when Redis fails (shared scope only).
    pub on_redis_error: OnRedisError,
    /// Client networks exempt from the policy.
    pub exempt_cidrs: Vec<IpNet>,
    /// Consumers exempt from the policy.
    pub exempt_consumers: Vec<String>,
    /// Map file of per-key-value limits replacing `limits` for the listed values.
    pub overrides_file: Option<PathBuf>,
}

impl RateLimitPolicy {
    /// True when the key, the quotas or the consumer exemptions need the authenticated
    /// identity (the policy runs after authentication rather than before it).
    #[must_use]
    pub fn needs_identity(&self) -> bool {
        !self.quotas.is_empty()
            || !self.exempt_consumers.is_empty()
            || self.key.iter().any(KeyPart::needs_identity)
    }
}

/// One part of a rate-limit key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyPart {
    /// The client address (after trusted-proxy processing).
    ClientIp,
    /// The authenticated consumer.
    Consumer,
    /// The authenticated subject.
    Subject,
    /// A string claim of the identity.
    Claim(String),
    /// A request header (lowercased name).
    Header(String),
    /// The matched route's name.
    Route,
}

impl KeyPart {
    /// True for parts read from the authenticated identity.
    #[must_use]
    pub fn needs_identity(&self) -> bool {
        matches!(self, Self::Consumer | Self::Subject | Self::Claim(_))
    }
}

/// A limit: `rate` requests per `period`, with up to `burst` requests back to back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Requests per period, at least 1.
    pub rate: u64,
    /// The period.
    pub period: Duration,
    /// Requests admitted back to back from a fresh state (includes the first), at least 1.
    pub burst: u64,
    /// The limit as written, for logs.
    pub text: String,
}

/// Where a policy's counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// In this gateway process.
    Local,
    /// In Redis, shared by every gateway.
    Shared,
}

/// What a shared policy does when Redis cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnRedisError {
    /// Fall back to the local limiter of the same policy.
    FailOpen,
    /// Refuse with 503.
    FailClosed,
}

/// Redis connection settings (top-level `redis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSpec {
    /// Connection URL without a password.
    pub url: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// Timeout of one call on the request path.
    pub timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Time an open breaker skips Redis before probing.
    pub cooldown: Duration,
    /// Key prefix.
    pub key_prefix: String,
}

/// Behavioural protection (top-level `abuse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseSpec {
    /// Local or shared bans.
    pub scope: Scope,
    /// 403 or 429.
    pub ban_status: u16,
    /// Most clients tracked.
    pub max_clients: usize,
    /// Interval between pulls of shared bans.
    pub sync_interval: Duration,
    /// Never tracked or banned.
    pub exempt: Vec<IpNet>,
    /// Rules.
    pub rules: Vec<AbuseRule>,
}

/// A behavioural counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbuseCounter {
    /// Every request.
    Requests,
    /// Responses 400-499.
    ClientErrors,
    /// Responses 500-599.
    ServerErrors,
    /// 404 responses on paths not seen recently from the same client (scanning).
    NotFoundPaths,
    /// Failed authentications.
    AuthFailures,
    /// WAF detections.
    WafHits,
}

/// "More than `more_than` events of `counter` within `within` bans for `ban_for`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseRule {
    /// Name.
    pub name: String,
    /// Counter.
    pub counter: AbuseCounter,
    /// Threshold (exclusive).
    pub more_than: u64,
    /// Window.
    pub within: Duration,
    /// Ban duration.
    pub ban_for: Duration,
}

/// One named IP list (top-level `ip_lists`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpListSpec {
    /// Name.
    pub name: String,
    /// Allowed networks written inline.
    pub allow: Vec<IpNet>,
    /// Denied networks written inline.
    pub deny: Vec<IpNet>,
    /// Files of allowed networks.
    pub allow_files: Vec<PathBuf>,
    /// Files of denied networks.
    pub deny_files: Vec<PathBuf>,
    /// Routes it applies to; empty = all.
    pub routes: Vec<String>,
}

/// In-flight limits (top-level `concurrency`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConcurrencySpec {
    /// By route name.
    pub routes: BTreeMap<String, u32>,
    /// By upstream pool name.
    pub upstreams: BTreeMap<String, u32>,
    /// Retry-After of a shed.
    pub retry_after: Duration,
    /// Adaptive per-pool limits (AIMD) when set: each response slower than this, or failed,
    /// multiplies the pool's limit by 0.9 (never below `adaptive_min`); each good response
    /// while at least half the limit is in use adds one, up to the configured maximum.
    pub adaptive_latency_target: Option<Duration>,
    /// Floor of an adaptive limit (at least 1).
    pub adaptive_min: u32,
}

/// Everything rate-limit related that is not attached to one route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Protection {
    /// Redis settings, required by any `shared` scope.
    pub redis: Option<RedisSpec>,
    /// Behavioural bans.
    pub abuse: Option<AbuseSpec>,
    /// IP lists.
    pub ip_lists: Vec<IpListSpec>,
    /// In-flight limits.
    pub concurrency: ConcurrencySpec,
}

// ------------------------------------------------------------------------------------------
// Parsing and validation
// ------------------------------------------------------------------------------------------

/// Parses a limit such as `100/s`, `10/s burst 5`, `20000/h`, `500/5m`. The burst defaults to
/// the rate (a client may spend one period's worth at once).
///
/// ```
/// let l = portcullis_config::parse_limit("10/s burst 5").unwrap();
/// assert_eq!((l.rate, l.burst), (10, 5));
/// assert!(portcullis_config::parse_limit("0/s").is_err());
/// ```
pub fn parse_limit(text: &str) -> Result<Limit, String> {
    let expected = "expected `<rate>/<period>[ burst <n>]` with a period unit s, m, h or d, e.g. `100/s burst 50` or `20000/h`";
    let mut words = text.split_whitespace();
    let head = words
        .next()
        .ok_or_else(|| format!("empty limit: {expected}"))?;
    let (rate_text, period_text) = head
        .split_once('/')
        .ok_or_else(|| format!("invalid limit {text:?}: {expected}"))?;
    let rate: u64 = rate_text
        .parse()
        .map_err(|_| format!("invalid rate {rate_text:?} in {text:?}: {expected}"))?;
    if rate == 0 || rate > MAX_COUNT {
        return Err(format!(
            "rate {rate} in {text:?} is out of range: expected 1 to {MAX_COUNT}"
        ));
    }
    let digits = period_text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(period_text.len());
    let (n_text, unit) = period_text.split_at(digits);
    let n: u64 = if n_text.is_empty() {
        1
    } else {
        n_text
            .parse()
            .map_err(|_| format!("invalid period {period_text:?} in {text:?}: {expected}"))?
    };
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown period unit {unit:?} in {text:?}: {expected}"
            ))
        }
    };
    if n == 0 || n > 366 * 86_400 / unit_secs {
        return Err(format!(
            "period {period_text:?} in {text:?} is out of range: expected 1s to 366d"
        ));
    }
    let period = Duration::from_secs(n * unit_secs);
    let burst = match (words.next(), words.next(), words.next()) {
        (None, _, _) => rate,
        (Some("burst"), Some(b), None) => {
            let burst: u64 = b.parse().map_err(|_| {
                format!("invalid burst {b:?} in {text:?}: expected a whole number of at least 1")
            })?;
            if burst == 0 || burst > MAX_COUNT {
                return Err(format!(
                    "burst {burst} in {text:?} is out of range: expected 1 to {MAX_COUNT}"
                ));
            }
            burst
        }
        _ => return Err(format!("invalid limit {text:?}: {expected}")),
    };
    // The emission interval must be at least 1µs so GCRA times stay exact in nanoseconds.
    let interval_ns = period.as_nanos() / u128::from(rate);
    if interval_ns < 1_000 {
        return Err(format!(
            "rate in {text:?} is too high: at most 1000000 per second"
        ));
    }
    Ok(Limit {
        rate,
        period,
        burst,
        text: text.trim().to_owned(),
    })
}

fn parse_key_part(text: &str) -> Result<KeyPart, String> {
    let t = text.trim();
    let part = match t {
        "client_ip" => KeyPart::ClientIp,
        "consumer" => KeyPart::Consumer,
        "subject" => KeyPart::Subject,
        "route" => KeyPart::Route,
        _ => {
            if let Some(c) = t.strip_prefix("claim:").filter(|c| !c.is_empty()) {
                KeyPart::Claim(c.to_owned())
            } else if let Some(h) = t.strip_prefix("header:").filter(|h| !h.is_empty()) {
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if !h.chars().all(token) {
                    return Err(format!("invalid header name {h:?} in key {t:?}"));
                }
                KeyPart::Header(h.to_ascii_lowercase())
            } else {
                return Err(format!(
                    "unknown key {t:?}: expected client_ip, consumer, subject, route, claim:<name> or header:<name>"
                ));
            }
        }
    };
    Ok(part)
}

/// Parses `10.0.0.0/8`, `2001:db8::/32` or a single address.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    t.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("invalid network {t:?}: expected an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32"))
}

fn nets(list: &[String], o: &Origin, rel: &[&str], d: &mut Diagnostics) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let idx = i.to_string();
        let mut path: Vec<&str> = rel.to_vec();
        path.push(&idx);
        match parse_net(text) {
            Ok(n) => out.push(n),
            Err(e) => d.error_at(o, &path, e),
        }
    }
    out
}

fn limits(list: &[String], o: &Origin, rel: &[&str], d: &mut Diagnostics) -> Vec<Limit> {
    let mut out = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let idx = i.to_string();
        let mut path: Vec<&str> = rel.to_vec();
        path.push(&idx);
        match parse_limit(text) {
            Ok(l) => out.push(l),
            Err(e) => d.error_at(o, &path, e),
        }
    }
    out
}

fn scope(v: Option<&str>, o: &Origin, rel: &[&str], d: &mut Diagnostics) -> Scope {
    match v.unwrap_or("local") {
        "local" => Scope::Local,
        "shared" => Scope::Shared,
        other => {
            d.error_at(
                o,
                rel,
                format!("unknown scope {other:?}: expected local or shared"),
            );
            Scope::Local
        }
    }
}

/// A duration that must be above zero, or the default when absent.
pub(crate) fn duration(
    v: Option<&str>,
    default: Duration,
    o: &Origin,
    key: &str,
    d: &mut Diagnostics,
) -> Duration {
    match v.map(parse_duration) {
        None => default,
        Some(Ok(x)) if !x.is_zero() => x,
        Some(Ok(_)) => {
            d.error_at(o, &[key], "expected a duration above zero");
            default
        }
        Some(Err(e)) => {
            d.error_at(o, &[key], e);
            default
        }
    }
}

fn bounded(
    v: Option<i64>,
    default: u64,
    min: i64,
    max: i64,
    o: &Origin,
    key: &str,
    d: &mut Diagnostics,
) -> u64 {
    match v {
        None => default,
        Some(n) if (min..=max).contains(&n) => u64::try_from(n).unwrap_or(default),
        Some(n) => {
            d.error_at(
                o,
                &[key],
                format!("{n} is out of range: expected {min} to {max}"),
            );
            default
        }
    }
}

pub(crate) fn validate(raw: &RawRouteRateLimit, o: &Origin, d: &mut Diagnostics) -> RouteRateLimit {
    let mut policies = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let idx = i.to_string();
        let at = o.at(&[&idx]);
        if let Some(name) = &p.name {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                d.error_at(
                    &at,
                    &["name"],
                    format!(
                        "invalid policy name {name:?}: use 1-64 letters, digits, '-', '_' or '.'"
                    ),
                );
            }
        }
        let texts: Vec<(Option<usize>, &String)> = match &p.key {
            RawKey::One(s) => vec![(None, s)],
            RawKey::Many(v) => v.iter().enumerate().map(|(j, s)| (Some(j), s)).collect(),
        };
        if texts.is_empty() {
            d.error_at(&at, &["key"], "empty key: expected at least one of client_ip, consumer, subject, route, claim:<name>, header:<name>");
        }
        let mut key = Vec::new();
        for (j, text) in texts {
            match parse_key_part(text) {
                Ok(part) if key.contains(&part) => {
                    let j = j.unwrap_or(0).to_string();
                    d.error_at(
                        &at,
                        &["key", &j],
                        format!("key part {text:?} is listed twice"),
                    );
                }
                Ok(part) => key.push(part),
                Err(e) => match j {
                    Some(j) => d.error_at(&at, &["key", &j.to_string()], e),
                    None => d.error_at(&at, &["key"], e),
                },
            }
        }
        let lim = limits(&p.limits, &at, &["limits"], d);
        let mut quotas = BTreeMap::new();
        for (plan, list) in &p.quotas {
            if list.is_empty() {
                d.error_at(
                    &at,
                    &["quotas", plan],
                    format!("plan {plan:?} has no limits: expected a list such as [\"100000/d\"]"),
                );
            }
            quotas.insert(plan.clone(), limits(list, &at, &["quotas", plan], d));
        }
        if p.limits.is_empty() && p.quotas.is_empty() && p.overrides_file.is_none() {
            d.error_at(
                &at,
                &[],
                "policy has no limits: expected `limits`, `quotas` or `overrides_file`",
            );
        }
        let scope = scope(p.scope.as_deref(), &at, &["scope"], d);
        let on_redis_error = match p.on_redis_error.as_deref().unwrap_or("fail_open") {
            "fail_open" => OnRedisError::FailOpen,
            "fail_closed" => OnRedisError::FailClosed,
            other => {
                d.error_at(
                    &at,
                    &["on_redis_error"],
                    format!("unknown value {other:?}: expected fail_open or fail_closed"),
                );
                OnRedisError::FailOpen
            }
        };
        let valid_mode = matches!(
            p.on_redis_error.as_deref(),
            Some("fail_open" | "fail_closed")
        );
        if valid_mode && matches!(p.scope.as_deref(), None | Some("local")) {
            d.error_at(
                &at,
                &["on_redis_error"],
                "on_redis_error only applies to `scope: shared`",
            );
        }
        let exempt = p.exempt.as_ref();
        let exempt_cidrs =
            exempt.map_or_else(Vec::new, |e| nets(&e.cidrs, &at, &["exempt", "cidrs"], d));
        let exempt_consumers = exempt.map_or_else(Vec::new, |e| e.consumers.clone());
        let overrides_file = p.overrides_file.as_deref().map(str::trim);
        if overrides_file == Some("") {
            d.error_at(
                &at,
                &["overrides_file"],
                "empty path: expected a map file of `<key value> <limits>` lines",
            );
        }
        policies.push(RateLimitPolicy {
            overrides_file: overrides_file.filter(|f| !f.is_empty()).map(PathBuf::from),
            name: p.name.clone(),
            key,
            limits: lim,
            quotas,
            scope,
            on_redis_error,
            exempt_cidrs,
            exempt_consumers,
        });
    }
    RouteRateLimit { policies }
}

fn redis(raw: &RawRedis, o: &Origin, d: &mut Diagnostics) -> RedisSpec {
    let url = raw.url.trim();
    if url.starts_with("rediss://") {
        d.error_at(
            o,
            &["url"],
            "rediss:// (TLS) is not supported by this build: expected redis:// or redis+unix://",
        );
    } else if !(url.starts_with("redis://")
        || url.starts_with("redis+unix://")
        || url.starts_with("unix://"))
    {
        d.error_at(
            o,
            &["url"],
            format!(
                "invalid Redis URL {url:?}: expected redis://host:port/db or redis+unix:///path"
            ),
        );
    } else if url.contains('@') {
        d.error_at(o, &["url"], "the Redis URL must not carry credentials: put the password in an environment variable named by `password_env`");
    }
    let key_prefix = raw
        .key_prefix
        .clone()
        .unwrap_or_else(|| "portcullis".to_owned());
    if key_prefix.is_empty() || key_prefix.contains(char::is_whitespace) {
        d.error_at(
            o,
            &["key_prefix"],
            format!("invalid key prefix {key_prefix:?}: expected a non-empty word"),
        );
    }
    RedisSpec {
        url: url.to_owned(),
        password_env: raw.password_env.clone(),
        timeout: duration(
            raw.timeout.as_deref(),
            Duration::from_millis(50),
            o,
            "timeout",
            d,
        ),
        connect_timeout: duration(
            raw.connect_timeout.as_deref(),
            Duration::from_secs(1),
            o,
            "connect_timeout",
            d,
        ),
        failure_threshold: u32::try_from(bounded(
            raw.failure_threshold,
            5,
            1,
            1000,
            o,
            "failure_threshold",
            d,
        ))
        .unwrap_or(5),
        cooldown: duration(
            raw.cooldown.as_deref(),
            Duration::from_secs(5),
            o,
            "cooldown",
            d,
        ),
        key_prefix,
    }
}

fn abuse(raw: &RawAbuse, o: &Origin, d: &mut Diagnostics) -> AbuseSpec {
    let ban_status = match raw.ban_status {
        None | Some(403) => 403,
        Some(429) => 429,
        Some(n) => {
            d.error_at(
                o,
                &["ban_status"],
                format!("invalid ban status {n}: expected 403 or 429"),
            );
            403
        }
    };
    let mut rules = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in raw.rules.iter().enumerate() {
        let idx = i.to_string();
        let at = o.at(&["rules", &idx]);
        if !names.insert(r.name.as_str()) {
            d.error_at(&at, &["name"], format!("duplicate rule name {:?}", r.name));
        }
        let counter = match r.counter.as_str() {
            "requests" => AbuseCounter::Requests,
            "client_errors" => AbuseCounter::ClientErrors,
            "server_errors" => AbuseCounter::ServerErrors,
            "not_found_paths" => AbuseCounter::NotFoundPaths,
            "auth_failures" => AbuseCounter::AuthFailures,
            "waf_hits" => AbuseCounter::WafHits,
            other => {
                d.error_at(&at, &["counter"], format!("unknown counter {other:?}: expected requests, client_errors, server_errors, not_found_paths, auth_failures or waf_hits"));
                AbuseCounter::Requests
            }
        };
        let more_than = bounded(Some(r.more_than), 0, 0, 1_000_000_000, &at, "more_than", d);
        let within = duration(Some(&r.within), Duration::from_secs(60), &at, "within", d);
        let ban_for = duration(
            Some(&r.ban_for),
            Duration::from_secs(600),
            &at,
            "ban_for",
            d,
        );
        rules.push(AbuseRule {
            name: r.name.clone(),
            counter,
            more_than,
            within,
            ban_for,
        });
    }
    AbuseSpec {
        scope: scope(raw.scope.as_deref(), o, &["scope"], d),
        ban_status,
        max_clients: usize::try_from(bounded(
            raw.max_clients,
            100_000,
            1,
            100_000_000,
            o,
            "max_clients",
            d,
        ))
        .unwrap_or(100_000),
        sync_interval: duration(
            raw.sync_interval.as_deref(),
            Duration::from_secs(1),
            o,
            "sync_interval",
            d,
        ),
        exempt: nets(&raw.exempt, o, &["exempt"], d),
        rules,
    }
}

/// Validates the top-level sections and checks them against routes and pools.
pub(crate) fn validate_protection(
    set: &RawSet,
    route_names: &HashSet<&str>,
    pool_names: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Protection {
    let redis_spec = first(&set.redis, "redis", d).map(|i| redis(&i.raw, &i.origin, d));
    let abuse_spec = first(&set.abuse, "abuse", d).map(|i| abuse(&i.raw, &i.origin, d));
    if let (Some(a), None, Some(item)) = (&abuse_spec, &redis_spec, set.abuse.first()) {
        if a.scope == Scope::Shared {
            d.error_at(
                &item.origin,
                &["scope"],
                "`scope: shared` needs a top-level `redis` section",
            );
        }
    }
    if redis_spec.is_none() {
        for item in &set.routes {
            for (i, p) in item.raw.rate_limit.iter().flatten().enumerate() {
                if p.scope.as_deref() == Some("shared") {
                    d.error_at(
                        &item.origin,
                        &["rate_limit", &i.to_string(), "scope"],
                        "`scope: shared` needs a top-level `redis` section",
                    );
                }
            }
        }
    }
    let mut ip_lists = Vec::new();
    if let Some(item) = first(&set.ip_lists, "ip_lists", d) {
        for (name, raw) in &item.raw {
            let at = item.origin.at(&[name]);
            for (i, r) in raw.routes.iter().enumerate() {
                if !route_names.contains(r.as_str()) {
                    d.error_at(
                        &at,
                        &["routes", &i.to_string()],
                        format!("unknown route {r:?}"),
                    );
                }
            }
            if raw.allow.is_empty()
                && raw.deny.is_empty()
                && raw.allow_files.is_empty()
                && raw.deny_files.is_empty()
            {
                d.error_at(
                    &at,
                    &[],
                    "empty IP list: expected allow, deny, allow_files or deny_files",
                );
            }
            ip_lists.push(IpListSpec {
                name: name.clone(),
                allow: nets(&raw.allow, &at, &["allow"], d),
                deny: nets(&raw.deny, &at, &["deny"], d),
                allow_files: raw.allow_files.iter().map(PathBuf::from).collect(),
                deny_files: raw.deny_files.iter().map(PathBuf::from).collect(),
                routes: raw.routes.clone(),
            });
        }
    }
    let concurrency = first(&set.concurrency, "concurrency", d).map_or_else(
        || ConcurrencySpec {
            retry_after: Duration::from_secs(1),
            ..ConcurrencySpec::default()
        },
        |item| {
            let o = &item.origin;
            let mut spec = ConcurrencySpec {
                retry_after: duration(
                    item.raw.retry_after.as_deref(),
                    Duration::from_secs(1),
                    o,
                    "retry_after",
                    d,
                ),
                ..ConcurrencySpec::default()
            };
            if let Some(a) = &item.raw.adaptive {
                let at = o.at(&["adaptive"]);
                spec.adaptive_latency_target = Some(duration(
                    Some(&a.latency_target),
                    Duration::from_millis(500),
                    &at,
                    "latency_target",
                    d,
                ));
                spec.adaptive_min =
                    u32::try_from(bounded(a.min, 1, 1, 10_000_000, &at, "min", d)).unwrap_or(1);
                if item.raw.upstreams.is_empty() {
                    d.error_at(
                        &at,
                        &[],
                        "adaptive limits apply to `concurrency.upstreams`, which is empty",
                    );
                }
            }
            for (section, map, known, out) in [
                ("routes", &item.raw.routes, route_names, &mut spec.routes),
                (
                    "upstreams",
                    &item.raw.upstreams,
                    pool_names,
                    &mut spec.upstreams,
                ),
            ] {
                for (name, n) in map {
                    if !known.contains(name.as_str()) {
                        d.error_at(
                            o,
                            &[section, name],
                            format!("unknown {} {name:?}", &section[..section.len() - 1]),
                        );
                    }
                    if !(1..=10_000_000).contains(n) {
                        d.error_at(
                            o,
                            &[section, name],
                            format!("{n} is out of range: expected 1 to 10000000"),
                        );
                    }
                    out.insert(name.clone(), u32::try_from(*n).unwrap_or(1).max(1));
                }
            }
            spec
        },
    );
    Protection {
        redis: redis_spec,
        abuse: abuse_spec,
        ip_lists,
        concurrency,
    }
}

fn first<'a, T>(
    items: &'a [crate::load::Item<T>],
    section: &str,
    d: &mut Diagnostics,
) -> Option<&'a crate::load::Item<T>> {
    let mut iter = items.iter();
    let head = iter.next()?;
    for dup in iter {
        d.error(
            &dup.origin,
            format!(
                "`{section}` is defined more than once (first in {})",
                head.origin.file().display()
            ),
        );
    }
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
listeners: [{ name: web, address: "127.0.0.1:8080" }]
upstreams: { app: { backends: [{ address: "127.0.0.1:9001" }] } }
"#;

    fn with_route(policies: &str, extra: &str) -> String {
        format!("{BASE}routes: [{{ name: r, upstream: app, rate_limit: {policies} }}]\n{extra}")
    }

    fn errors(text: &str) -> Vec<String> {
        match crate::parse_str("t.yaml", text) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn parses_rate_period_and_burst() {
        let l = parse_limit("100/s burst 50").unwrap();
        assert_eq!(
            (l.rate, l.period, l.burst),
            (100, Duration::from_secs(1), 50)
        );
        let l = parse_limit("20000/h").unwrap();
        assert_eq!(
            (l.rate, l.period, l.burst),
            (20_000, Duration::from_secs(3600), 20_000)
        );
        let l = parse_limit("500/5m").unwrap();
        assert_eq!(l.period, Duration::from_secs(300));
        assert_eq!(
            parse_limit("100000/d").unwrap().period,
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn rejects_zero_rate_zero_burst_and_unknown_units() {
        for bad in [
            "0/s",
            "10/s burst 0",
            "10/w",
            "10",
            "10/s burst",
            "10/s burst 5 extra",
            "x/s",
            "10/0s",
            "2000000/s",
            "-1/s",
        ] {
            assert!(parse_limit(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn accepts_a_full_policy() {
        let cfg = crate::parse_str(
            "t.yaml",
            &with_route(
                r#"[{ key: client_ip, limits: ["10/s burst 5", "20000/h"] },
                    { name: per-user, key: [consumer, "header:X-Tenant"], limits: ["5/s"],
                      quotas: { free: ["100000/d"], pro: ["10000000/d"] },
                      scope: shared, on_redis_error: fail_closed,
                      exempt: { cidrs: ["10.0.0.0/8", "::1"], consumers: [ops] },
                      overrides_file: /etc/portcullis/tenants.map }]"#,
                "redis: { url: \"redis://127.0.0.1:6379\", timeout: 20ms }\n",
            ),
        )
        .unwrap();
        let rl = cfg.routes[0].rate_limit.as_ref().unwrap();
        assert_eq!(rl.policies[0].key, vec![KeyPart::ClientIp]);
        assert_eq!(rl.policies[0].scope, Scope::Local);
        assert!(!rl.policies[0].needs_identity());
        // A consumer exemption is only known after authentication.
        let exempting = RateLimitPolicy {
            exempt_consumers: vec!["ops".into()],
            ..rl.policies[0].clone()
        };
        assert!(exempting.needs_identity());
        let p = &rl.policies[1];
        assert_eq!(
            p.key,
            vec![KeyPart::Consumer, KeyPart::Header("x-tenant".into())]
        );
        assert_eq!(p.quotas["pro"][0].rate, 10_000_000);
        assert_eq!(p.on_redis_error, OnRedisError::FailClosed);
        assert_eq!(p.exempt_cidrs.len(), 2);
        assert_eq!(
            p.overrides_file.as_deref(),
            Some(std::path::Path::new("/etc/portcullis/tenants.map"))
        );
        assert!(p.needs_identity());
        let redis = cfg.protection.redis.unwrap();
        assert_eq!(redis.timeout, Duration::from_millis(20));
        assert_eq!(redis.failure_threshold, 5);
    }

    #[test]
    fn reports_bad_limit_with_its_yaml_path() {
        let errs = errors(&with_route(
            r#"[{ key: client_ip, limits: ["10/s", "0/s burst 2"] }]"#,
            "",
        ));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains("routes[0].rate_limit[0].limits[1]"),
            "{errs:#?}"
        );
        assert!(errs[0].contains("rate 0"), "{errs:#?}");
    }

    #[test]
    fn reports_unknown_key_scope_and_fail_mode() {
        let errs = errors(&with_route(
            r#"[{ key: [client_ip, cookie], limits: ["1/s"], scope: global, on_redis_error: maybe }]"#,
            "",
        ));
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs
            .iter()
            .any(|e| e.contains("rate_limit[0].key[1]") && e.contains("cookie")));
        assert!(errs
            .iter()
            .any(|e| e.contains("rate_limit[0].scope") && e.contains("global")));
        assert!(errs
            .iter()
            .any(|e| e.contains("on_redis_error") && e.contains("maybe")));
    }

    #[test]
    fn shared_scope_requires_a_redis_section() {
        let errs = errors(&with_route(
            r#"[{ key: client_ip, limits: ["1/s"], scope: shared }]"#,
            "",
        ));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains("rate_limit[0].scope") && errs[0].contains("redis"),
            "{errs:#?}"
        );
    }

    #[test]
    fn rejects_credentials_in_the_redis_url() {
        let errs = errors(&with_route(
            "[]",
            "redis: { url: \"redis://:hunter2@127.0.0.1\" }\n",
        ));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].contains("redis.url"), "{errs:#?}");
        assert!(
            !errs[0].contains("hunter2"),
            "the error must not echo the secret"
        );
    }

    #[test]
    fn validates_abuse_rules_ip_lists_and_concurrency() {
        let good = with_route(
            "[]",
            r#"abuse:
  ban_status: 429
  rules: [{ name: brute, counter: auth_failures, more_than: 20, within: 1m, ban_for: 10m }]
ip_lists:
  blocklist: { deny: ["192.0.2.0/24", "2001:db8::/32"], routes: [r] }
concurrency: { routes: { r: 100 }, upstreams: { app: 500 }, adaptive: { latency_target: 250ms, min: 10 } }
"#,
        );
        let cfg = crate::parse_str("t.yaml", &good).unwrap();
        let c = &cfg.protection.concurrency;
        assert_eq!(
            (c.adaptive_latency_target, c.adaptive_min),
            (Some(Duration::from_millis(250)), 10)
        );
        let abuse = cfg.protection.abuse.unwrap();
        assert_eq!(abuse.ban_status, 429);
        assert_eq!(abuse.rules[0].counter, AbuseCounter::AuthFailures);
        assert_eq!(abuse.rules[0].ban_for, Duration::from_secs(600));
        assert_eq!(cfg.protection.ip_lists[0].deny.len(), 2);
        assert_eq!(cfg.protection.concurrency.routes["r"], 100);

        let bad = with_route(
            "[]",
            r#"abuse:
  ban_status: 404
  rules: [{ name: x, counter: logins, more_than: 20, within: 1m, ban_for: soon }]
ip_lists:
  l: { deny: ["300.1.1.1"], routes: [nope] }
concurrency: { routes: { r: 0 }, upstreams: { ghost: 5 }, adaptive: { latency_target: fast, min: 0 } }
"#,
        );
        let errs = errors(&bad);
        for needle in [
            "abuse.ban_status",
            "abuse.rules[0].counter",
            "abuse.rules[0].ban_for",
            "ip_lists.l.deny[0]",
            "ip_lists.l.routes[0]",
            "concurrency.routes.r",
            "concurrency.upstreams.ghost",
            "concurrency.adaptive.latency_target",
            "concurrency.adaptive.min",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(needle)),
                "missing {needle}: {errs:#?}"
            );
        }
    }
}
