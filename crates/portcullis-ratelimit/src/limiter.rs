//! Per-route rate-limit policies: key extraction, local and shared GCRA, exemptions, quotas by
//! plan, failure modes and the response headers.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use portcullis_config::{KeyPart, Limit, OnRedisError, RateLimitPolicy, RouteRateLimit, Scope};
use portcullis_core::{Clock, Deny, Identity, RequestView};

use crate::gcra::{Gcra, LocalTable, Outcome};
use crate::store::{RedisState, RedisStore};
use crate::RateLimitError;

/// Default number of keys the local table tracks (2^20 = 1,048,576, all policies together).
///
/// Memory bound: the table is 64 hash maps of at most `max_keys / 64` entries of 16 bytes plus
/// one control byte, and a map that holds `n` entries has at most `2n` slots, so it never exceeds
/// `34 × max_keys` bytes: 34 MiB for the default. Measured by `tests/memory.rs` with one and two
/// million distinct client IPs: +34.5 MiB resident, flat past the capacity. A full table evicts
/// keys that are back to a fresh state first (forgetting them changes nothing), then the eighth
/// of a shard closest to fresh, so the limits stay exact until more than `max_keys` clients are
/// active within one limit's window.
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;

/// Longest key value stored as written; longer values are hashed.
const MAX_KEY_TEXT: usize = 96;

/// Counters of one policy, read by the proxy to export metrics. Survive reloads for an
/// unchanged policy.
#[derive(Debug, Default)]
pub struct PolicyMetrics {
    /// Requests the policy admitted.
    pub allowed: AtomicU64,
    /// Requests refused with 429.
    pub limited: AtomicU64,
    /// Redis calls that failed, timed out or were skipped by the open breaker.
    pub redis_errors: AtomicU64,
    /// Decisions taken by the local limiter because Redis was unavailable.
    pub fail_open: AtomicU64,
    /// Requests refused with 503 because Redis was unavailable.
    pub fail_closed: AtomicU64,
}

/// Settings of the process-wide state.
#[derive(Debug, Clone)]
pub struct SharedOptions {
    /// Most keys tracked by the local limiter (all policies together); memory is at most
    /// 34 bytes per key (see [`DEFAULT_MAX_KEYS`]).
    pub max_keys: usize,
    /// Redis settings, when any policy or ban is shared.
    pub redis: Option<portcullis_config::RedisSpec>,
}

impl Default for SharedOptions {
    fn default() -> Self {
        Self {
            max_keys: DEFAULT_MAX_KEYS,
            redis: None,
        }
    }
}

/// Process-wide state created once and kept across config reloads: the local GCRA table, the
/// Redis connection, per-policy metrics, bans and in-flight counters. Counters are keyed by the
/// policy definition, so an unchanged policy keeps them after a reload.
pub struct Shared {
    pub(crate) clock: Arc<dyn Clock>,
    epoch: Instant,
    hasher: RandomState,
    pub(crate) table: LocalTable,
    redis: Mutex<Option<Arc<RedisStore>>>,
    metrics: Mutex<HashMap<String, Arc<PolicyMetrics>>>,
    pub(crate) bans: crate::abuse::BanTable,
    pub(crate) abuse_state:
        Mutex<Option<(portcullis_config::AbuseSpec, Arc<crate::abuse::Tracker>)>>,
    pub(crate) gates: Mutex<HashMap<String, Arc<crate::concurrency::GateState>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Creates the state. Never waits for Redis: inside a Tokio runtime the connection is
    /// started in the background, otherwise on first use.
    #[must_use]
    pub fn new(options: SharedOptions, clock: Arc<dyn Clock>) -> Arc<Self> {
        let epoch = clock.now();
        let shared = Arc::new(Self {
            clock,
            epoch,
            hasher: RandomState::new(),
            table: LocalTable::new(options.max_keys),
            redis: Mutex::new(None),
            metrics: Mutex::new(HashMap::new()),
            bans: crate::abuse::BanTable::default(),
            abuse_state: Mutex::new(None),
            gates: Mutex::new(HashMap::new()),
        });
        shared.set_redis(options.redis);
        shared
    }

    /// Applies the `redis` section of a (re)loaded config. An unchanged section keeps the
    /// connection; a changed one reconnects in the background.
    pub fn set_redis(&self, spec: Option<portcullis_config::RedisSpec>) {
        let mut slot = self.redis.lock();
        let unchanged = match (&*slot, &spec) {
            (Some(cur), Some(new)) => cur.spec() == new,
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return;
        }
        *slot = spec.map(|s| Arc::new(RedisStore::new(s)));
        if let Some(store) = &*slot {
            store.start_connect();
        }
    }

    pub(crate) fn redis(&self) -> Option<Arc<RedisStore>> {
        self.redis.lock().clone()
    }

    /// Redis health for readiness probes and metrics.
    #[must_use]
    pub fn redis_state(&self) -> RedisState {
        self.redis()
            .map_or(RedisState::Disabled, |r| r.state(self.now_ns()))
    }

    /// Nanoseconds since this state was created, on the injected clock.
    pub(crate) fn now_ns(&self) -> u64 {
        let d = self.clock.now().saturating_duration_since(self.epoch);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn hash<T: Hash + ?Sized>(&self, v: &T) -> u64 {
        self.hasher.hash_one(v)
    }

    /// Bans in force on this gateway (its own and those learnt through Redis), for a gauge.
    #[must_use]
    pub fn active_bans(&self) -> usize {
        self.bans.count_active(self.now_ns())
    }

    /// Keys currently held by the local limiter and its bound.
    #[must_use]
    pub fn local_keys(&self) -> (usize, usize) {
        (self.table.len(), self.table.capacity())
    }

    fn policy_metrics(&self, label: &str) -> Arc<PolicyMetrics> {
        Arc::clone(self.metrics.lock().entry(label.to_owned()).or_default())
    }

    /// Every policy's counters by label (`<route>/<index>` or the policy's name).
    #[must_use]
    pub fn metrics(&self) -> Vec<(String, Arc<PolicyMetrics>)> {
        let mut v: Vec<_> = self
            .metrics
            .lock()
            .iter()
            .map(|(k, m)| (k.clone(), Arc::clone(m)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// What an admitted request carries back: header values for the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// `RateLimit-Policy` and `RateLimit` headers of the most constrained policy, empty when no
    /// policy applied.
    pub headers: Vec<(&'static str, String)>,
    /// Requests that policy's most constrained limit still admits right now.
    pub remaining: Option<u64>,
}

impl Admission {
    /// Keeps the more constrained of two admissions (the checks before and after
    /// authentication), so the response carries one `RateLimit` pair.
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        match (self.remaining, other.remaining) {
            (_, None) => self,
            (None, Some(_)) => other,
            (Some(a), Some(b)) if b < a => other,
            _ => self,
        }
    }
}

struct CompiledLimit {
    gcra: Gcra,
    limit: Limit,
    /// Distinguishes this limit's counters from the policy's others.
    tag: String,
    /// `"<label>/<tag>"` as a structured-field string: the limit's name in `RateLimit` and
    /// `RateLimit-Policy`, quoted once here instead of on every answer.
    header_name: String,
    /// This limit's item of `RateLimit-Policy` (`<name>;q=<rate>;w=<window seconds>`).
    policy_item: String,
}

struct CompiledPolicy {
    spec: RateLimitPolicy,
    label: String,
    /// Hash of the policy definition and its owner (route or name).
    id: u64,
    limits: Vec<CompiledLimit>,
    quotas: HashMap<String, Vec<CompiledLimit>>,
    /// Key value -> limits replacing `limits`, from the policy's map file.
    overrides: ArcSwap<Overrides>,
    metrics: Arc<PolicyMetrics>,
}

type Overrides = HashMap<String, Vec<CompiledLimit>>;

/// Reads a thresholds map: `<key value> <limit>[, <limit>...]` per line, `#` comments. The
/// limits of a line get their own counters (tag `o<hash of the line's limits>.<i>`), so editing
/// a line starts its keys afresh while the other lines keep theirs.
fn read_overrides(path: &Path, label: &str) -> Result<Overrides, RateLimitError> {
    let err = |line: usize, message: String| RateLimitError::ListFile {
        path: path.to_path_buf(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, e.to_string()))?;
    let mut out = Overrides::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let Some((value, rest)) = entry.split_once(char::is_whitespace) else {
            return Err(err(
                i + 1,
                format!("{entry:?} has no limits: expected `<key value> <limit>[, <limit>]`"),
            ));
        };
        let limits = rest
            .split(',')
            .map(|t| portcullis_config::parse_limit(t.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| err(i + 1, m))?;
        if out.contains_key(value) {
            return Err(err(i + 1, format!("key value {value:?} is listed twice")));
        }
        let prefix = format!("o{:08x}.", fnv1a(rest.trim().as_bytes()) as u32);
        out.insert(value.to_owned(), compile_limits(&limits, label, &prefix));
    }
    Ok(out)
}

/// The rate-limit policies of one route, compiled. Cheap to rebuild on reload: the state lives
/// in [`Shared`].
pub struct RateLimiter {
    shared: Arc<Shared>,
    policies: Vec<CompiledPolicy>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field(
                "policies",
                &self.policies.iter().map(|p| &p.label).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn compile_limits(list: &[Limit], label: &str, prefix: &str) -> Vec<CompiledLimit> {
    list.iter()
        .enumerate()
        .map(|(i, l)| {
            let tag = format!("{prefix}{i}");
            let header_name = sf_string(&format!("{label}/{tag}"));
            let policy_item = format!("{header_name};q={};w={}", l.rate, l.period.as_secs());
            CompiledLimit {
                gcra: Gcra::new(l),
                limit: l.clone(),
                tag,
                header_name,
                policy_item,
            }
        })
        .collect()
}

/// A request's key value for a policy, or `None` when the policy does not apply.
fn key_value(
    parts: &[KeyPart],
    req: &RequestView<'_>,
    identity: Option<&Identity>,
) -> Option<String> {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        match part {
            KeyPart::ClientIp => {
                let _ = write!(out, "{}", req.client_ip);
            }
            KeyPart::Route => out.push_str(req.route),
            KeyPart::Consumer => out.push_str(identity?.consumer.as_deref()?),
            KeyPart::Subject => out.push_str(identity?.subject.as_deref()?),
            KeyPart::Claim(c) => out.push_str(identity?.claim(c)?),
            KeyPart::Header(h) => match req.headers.get(h.as_str()) {
                Some(v) => out.push_str(&String::from_utf8_lossy(v.as_bytes())),
                // Requests without the header share one counter, so omitting it cannot
                // escape the limit.
                None => out.push('-'),
            },
        }
    }
    Some(out)
}

fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

/// An sf-string for a structured header.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

fn policy_header(limits: &[&CompiledLimit]) -> String {
    let len = limits.iter().map(|l| l.policy_item.len() + 2).sum();
    let mut s = String::with_capacity(len);
    for (i, l) in limits.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&l.policy_item);
    }
    s
}

fn state_header(l: &CompiledLimit, o: &Outcome) -> String {
    let mut s = String::with_capacity(l.header_name.len() + 32);
    s.push_str(&l.header_name);
    let _ = write!(s, ";r={};t={}", o.remaining, ceil_secs(o.reset_ns));
    s
}

impl RateLimiter {
    /// Compiles the policies of `route`. Nothing is connected or allocated per key here.
    pub fn from_spec(
        route: &str,
        spec: &RouteRateLimit,
        shared: &Arc<Shared>,
    ) -> Result<Self, RateLimitError> {
        let mut policies = Vec::with_capacity(spec.policies.len());
        for (i, p) in spec.policies.iter().enumerate() {
            if p.scope == Scope::Shared && shared.redis().is_none() {
                return Err(RateLimitError::NoRedis(route.to_owned()));
            }
            let owner = p.name.clone().unwrap_or_else(|| format!("{route}/{i}"));
            let label = owner.clone();
            let id = shared.hash(&(owner, p));
            let quotas = p
                .quotas
                .iter()
                .map(|(plan, list)| {
                    let limits = compile_limits(list, &label, &format!("{plan}."));
                    (plan.clone(), limits)
                })
                .collect();
            let overrides = match &p.overrides_file {
                Some(f) => read_overrides(f, &label)?,
                None => Overrides::new(),
            };
            policies.push(CompiledPolicy {
                overrides: ArcSwap::from_pointee(overrides),
                spec: p.clone(),
                metrics: shared.policy_metrics(&label),
                limits: compile_limits(&p.limits, &label, ""),
                label,
                id,
                quotas,
            });
        }
        Ok(Self {
            shared: Arc::clone(shared),
            policies,
        })
    }

    /// Re-reads every policy's thresholds map. All files are read before any is swapped in: on
    /// an error the maps in use are kept and the error (`path:line: message`) returned.
    pub fn reload_files(&self) -> Result<(), RateLimitError> {
        let mut fresh = Vec::new();
        for p in &self.policies {
            if let Some(f) = &p.spec.overrides_file {
                fresh.push((p, read_overrides(f, &p.label)?));
            }
        }
        for (p, map) in fresh {
            p.overrides.store(Arc::new(map));
        }
        Ok(())
    }

    /// The thresholds maps the policies read, for a file watcher.
    #[must_use]
    pub fn files(&self) -> Vec<PathBuf> {
        self.policies
            .iter()
            .filter_map(|p| p.spec.overrides_file.clone())
            .collect()
    }

    /// True when some policy runs after authentication, i.e. when
    /// [`check_identity`](Self::check_identity) has work to do.
    #[must_use]
    pub fn has_identity_policies(&self) -> bool {
        self.policies.iter().any(|p| p.spec.needs_identity())
    }

    /// Before authentication (request_filter step 3): the policies that need no identity, keyed
    /// by client IP, headers or route. Cheap enough to run before any cryptography.
    pub async fn check(&self, req: &RequestView<'_>) -> Result<Admission, Deny> {
        self.run(req, false, None).await
    }

    /// After authentication (request_filter step 7), with the identity when the request has
    /// one: policies keyed by consumer, subject or claims, plan quotas, and policies with
    /// consumer exemptions. Call it for every request, authenticated or not; each policy runs in
    /// exactly one of [`check`](Self::check) and this. Without an identity, policies keyed by
    /// identity do not apply, others run unexempted with the `default` plan's quotas.
    pub async fn check_identity(
        &self,
        req: &RequestView<'_>,
        identity: Option<&Identity>,
    ) -> Result<Admission, Deny> {
        self.run(req, true, identity).await
    }

    async fn run(
        &self,
        req: &RequestView<'_>,
        after_auth: bool,
        identity: Option<&Identity>,
    ) -> Result<Admission, Deny> {
        let mut best: Option<(u64, String, String)> = None;
        for p in &self.policies {
            if p.spec.needs_identity() != after_auth {
                continue;
            }
            if exempt(&p.spec, req.client_ip, identity) {
                continue;
            }
            let Some(value) = key_value(&p.spec.key, req, identity) else {
                continue;
            };
            let overrides = p.overrides.load_full();
            let base = overrides.get(&value).unwrap_or(&p.limits);
            let mut limits: Vec<&CompiledLimit> = base.iter().collect();
            let plan = identity
                .and_then(|id| id.plan.as_deref())
                .filter(|plan| p.quotas.contains_key(*plan))
                .unwrap_or("default");
            if let Some(q) = p.quotas.get(plan) {
                limits.extend(q.iter());
            }
            if limits.is_empty() {
                continue;
            }
            let outcomes = self.decide(p, &value, &limits).await?;
            let denied = outcomes
                .iter()
                .zip(&limits)
                .filter(|(o, _)| !o.admitted)
                .max_by_key(|(o, _)| o.retry_after_ns);
            if let Some((o, l)) = denied {
                p.metrics.limited.fetch_add(1, Ordering::Relaxed);
                let retry = ceil_secs(o.retry_after_ns).max(1);
                return Err(Deny::new(429, "rate_limited", "too many requests")
                    .with_header("Retry-After", retry.to_string())
                    .with_header("RateLimit-Policy", policy_header(&limits))
                    .with_header("RateLimit", state_header(l, o))
                    .with_log_detail(format!("policy={} limit={:?}", p.label, l.limit.text)));
            }
            p.metrics.allowed.fetch_add(1, Ordering::Relaxed);
            if let Some((o, l)) = outcomes
                .iter()
                .zip(&limits)
                .min_by_key(|(o, _)| o.remaining)
            {
                if best.as_ref().is_none_or(|b| o.remaining < b.0) {
                    best = Some((o.remaining, policy_header(&limits), state_header(l, o)));
                }
            }
        }
        Ok(match best {
            Some((remaining, policy, state)) => Admission {
                headers: vec![("RateLimit-Policy", policy), ("RateLimit", state)],
                remaining: Some(remaining),
            },
            None => Admission::default(),
        })
    }

    async fn decide(
        &self,
        p: &CompiledPolicy,
        value: &str,
        limits: &[&CompiledLimit],
    ) -> Result<Vec<Outcome>, Deny> {
        let now = self.shared.now_ns();
        if p.spec.scope == Scope::Shared {
            if let Some(store) = self.shared.redis() {
                let keys: Vec<String> = limits
                    .iter()
                    .map(|l| store.key(&redis_key(p, &l.tag, value)))
                    .collect();
                let gcras: Vec<Gcra> = limits.iter().map(|l| l.gcra).collect();
                match store.acquire(now, &keys, &gcras).await {
                    Ok(o) => return Ok(o),
                    Err(why) => {
                        p.metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(policy = %p.label, ?why, "redis unavailable for rate limit");
                    }
                }
            }
            if p.spec.on_redis_error == OnRedisError::FailClosed {
                p.metrics.fail_closed.fetch_add(1, Ordering::Relaxed);
                return Err(Deny::new(
                    503,
                    "ratelimit_unavailable",
                    "rate limiting is unavailable",
                )
                .with_header("Retry-After", "1")
                .with_log_detail(format!("policy={} redis unavailable", p.label)));
            }
            p.metrics.fail_open.fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.local(p, value, limits, now))
    }

    /// All limits of the policy locally; when one denies, the admissions already taken are
    /// given back so a refused request consumes nothing.
    fn local(
        &self,
        p: &CompiledPolicy,
        value: &str,
        limits: &[&CompiledLimit],
        now: u64,
    ) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(limits.len());
        let mut taken = Vec::new();
        for l in limits {
            let key = self.shared.hash(&(p.id, &l.tag, value));
            let o = self.shared.table.acquire(key, &l.gcra, now);
            if o.admitted {
                taken.push((key, l.gcra));
            }
            out.push(o);
        }
        if out.iter().any(|o| !o.admitted) {
            for (key, g) in taken {
                self.shared.table.release(key, &g);
            }
        }
        out
    }
}

/// The id is a per-process hash; Redis keys must agree across gateways, so they are built
/// from the label and a stable hash of the definition instead.
fn redis_key(p: &CompiledPolicy, tag: &str, value: &str) -> String {
    let mut v = String::new();
    if value.len() <= MAX_KEY_TEXT && value.chars().all(|c| c.is_ascii_graphic()) {
        v.push_str(value);
    } else {
        let _ = write!(v, "h{:016x}", fnv1a(value.as_bytes()));
    }
    format!("rl:{}:{:016x}:{tag}:{v}", p.label, stable_id(&p.spec))
}

/// A hash of the policy definition that every gateway computes alike (unlike `RandomState`).
fn stable_id(p: &RateLimitPolicy) -> u64 {
    fnv1a(format!("{p:?}").as_bytes())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn exempt(p: &RateLimitPolicy, ip: IpAddr, identity: Option<&Identity>) -> bool {
    p.exempt_cidrs.iter().any(|n| n.contains(&ip))
        || identity
            .and_then(|i| i.consumer.as_deref())
            .is_some_and(|c| p.exempt_consumers.iter().any(|e| e == c))
}

/// Seconds as a `Retry-After` value, rounded up.
#[must_use]
pub fn retry_after_secs(d: Duration) -> u64 {
    ceil_secs(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
