//! The in-process web application firewall of Portcullis. It owns decoding and normalisation,
//! the detectors (tokenising SQLi and XSS, signatures for traversal, RFI, command injection,
//! PHP, SSTI, SSRF, Log4Shell/Java, CRLF, NoSQL, XXE, session fixation, scanners), protocol
//! anomaly checks, CRS-style anomaly scoring with per-route exclusions, hard limits, the
//! positive (zero-trust) model and response DLP. It is a pure library: it sees a borrowed
//! [`RequestView`] and byte slices, compiles everything at load in [`Waf::from_spec`], and must
//! not depend on Pingora, an async runtime or any I/O.

mod body;
pub mod decode;
mod dlp;
mod heuristics;
mod positive;
pub mod rules;
pub mod sqli;
pub mod xss;

use std::borrow::Cow;
use std::fmt::Write as _;

use aho_corasick::AhoCorasick;
use portcullis_config::{WafMode, WafSpec};
use portcullis_core::{Deny, RequestView};
use regex::{Regex, RegexSet};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::body::Field;
use crate::rules::{RuleInfo, T_NAME, T_PATH, T_VALUE};

pub use crate::dlp::DlpOutcome;

/// Why a [`Waf`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WafError {
    /// A built-in or configured pattern failed to compile.
    #[error("invalid pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// The compiler's complaint.
        #[source]
        source: regex::Error,
    },
    /// The positive-model JSON Schema uses something this validator does not support.
    #[error("unsupported JSON Schema: {0}")]
    Schema(String),
    /// A prefilter failed to build.
    #[error("prefilter: {0}")]
    Prefilter(String),
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// Stable rule id.
    pub rule_id: u32,
    /// Category (`sqli`, `xss`, `lfi`, `protocol`, ...).
    pub category: &'static str,
    /// Where (`path`, `args:q`, `header:user-agent`, `cookie:sid`, `body:user.name`, `xml`).
    pub target: String,
    /// The decoded value, truncated to 64 characters; empty for secrets (cookies,
    /// authorization).
    pub fragment: String,
}

/// What the inspection found: the anomaly score and the rules that fired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Sum of the scores of the rules that fired.
    pub score: u32,
    /// The rules that fired, at most once per rule and target.
    pub hits: Vec<RuleHit>,
}

impl Findings {
    /// The hits as `id@target` pairs, for the access log.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (i, h) in self.hits.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{}@{}", h.rule_id, h.target);
        }
        s
    }
}

struct Compiled {
    set: RegexSet,
    rules: Vec<(RuleInfo, Regex)>,
}

/// The WAF of one route, compiled from its [`WafSpec`]. Immutable; share it with `Arc`.
///
/// The proxy builds one per route at config load and asks it three times per request: the
/// head in `request_filter`, the buffered body prefix in `request_body_filter`, the response
/// body when DLP is on. A [`Deny`] is the verdict (403 `waf_blocked` with the rule ids and
/// targets in `log_detail`; 413/414/431 for limits; 403 `waf_positive_model`); `Ok` carries
/// the [`Findings`] to log in detect mode and to hand to the body check, so the anomaly score
/// accumulates over head and body.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use portcullis_config::WafSpec;
/// use portcullis_core::RequestView;
/// use portcullis_waf::{DlpOutcome, Waf};
///
/// let waf = Waf::from_spec(&WafSpec::default()).expect("built-in rules compile");
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-type", "application/json".parse().expect("valid"));
/// let req = RequestView {
///     method: "POST",
///     path: "/api/orders",
///     query: Some("q=O%27Brien"),
///     host: Some("shop.example.com"),
///     headers: &headers,
///     client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
///     route: "orders",
/// };
/// let head = waf.check_head(&req).expect("a plain request passes");
///
/// // The proxy buffers at most `body_inspect_limit()` bytes and says whether it stopped early.
/// let body = br#"{"note":"1' UNION SELECT password FROM users--"}"#;
/// let truncated = body.len() > waf.body_inspect_limit();
/// let deny = waf.check_body(&req, &head, body, truncated).expect_err("blocked");
/// assert_eq!(deny.status, 403);
/// assert!(deny.log_detail.unwrap_or_default().contains("200001@body:note"));
///
/// // Response DLP is off unless the route configures it.
/// assert_eq!(waf.response_inspect_limit(), 0);
/// assert!(matches!(waf.inspect_response(Some("text/plain"), b"ok"), DlpOutcome::Pass));
/// ```
pub struct Waf {
    spec: WafSpec,
    values: Arc<Compiled>,
    paths: Arc<Compiled>,
    names: Arc<Compiled>,
    /// Security-scanner user-agent substrings.
    scanners: Arc<AhoCorasick>,
    /// Positive (zero-trust) model, when the route has one.
    positive: Option<positive::Positive>,
    dlp: Option<dlp::Dlp>,
    /// First word of a brace-expanded value that is a shell command.
    brace_command: Arc<Regex>,
    /// PHP indirect calls, matched on comment-free, whitespace-free text.
    php_indirect: Arc<Regex>,
}

impl std::fmt::Debug for Waf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waf")
            .field("mode", &self.spec.mode)
            .field("paranoia", &self.spec.paranoia)
            .field("threshold", &self.spec.threshold)
            .finish_non_exhaustive()
    }
}

fn compile(paranoia: u8, target: u8) -> Result<Compiled, WafError> {
    let mut rules = Vec::new();
    let mut pats = Vec::new();
    for s in rules::SIGS {
        if s.targets & target == 0 || s.info.paranoia > paranoia {
            continue;
        }
        let re = Regex::new(s.pattern).map_err(|source| WafError::Pattern {
            pattern: s.pattern.to_owned(),
            source,
        })?;
        pats.push(s.pattern);
        rules.push((s.info, re));
    }
    // The set is one lazy DFA: with the default cache it thrashes on long values and falls
    // back to a much slower engine, so give it room (allocated on demand, per thread).
    let set = regex::RegexSetBuilder::new(&pats)
        .dfa_size_limit(16 << 20)
        .build()
        .map_err(|source| WafError::Pattern {
            pattern: "signature set".to_owned(),
            source,
        })?;
    Ok(Compiled { set, rules })
}

/// What every route's WAF compiles the same way: the signature sets of each paranoia level and
/// target class, the scanner prefilter and the heuristic regexes. Built once per process and
/// shared by every route and every reload: a lazy DFA keeps caches of up to 16 MiB per thread
/// that used it, so a copy per route (and per reload, while old requests finish) multiplied the
/// gateway's memory by the number of WAF routes. At most 12 sets exist (4 levels x 3 targets).
#[derive(Default)]
struct SharedRules {
    sets: HashMap<(u8, u8), Arc<Compiled>>,
    scanners: Option<Arc<AhoCorasick>>,
    brace_command: Option<Arc<Regex>>,
    php_indirect: Option<Arc<Regex>>,
}

fn shared_rules() -> &'static Mutex<SharedRules> {
    static SHARED: OnceLock<Mutex<SharedRules>> = OnceLock::new();
    SHARED.get_or_init(Mutex::default)
}

fn shared_set(
    shared: &mut SharedRules,
    paranoia: u8,
    target: u8,
) -> Result<Arc<Compiled>, WafError> {
    if let Some(c) = shared.sets.get(&(paranoia, target)) {
        return Ok(Arc::clone(c));
    }
    let c = Arc::new(compile(paranoia, target)?);
    shared.sets.insert((paranoia, target), Arc::clone(&c));
    Ok(c)
}

fn shared_regex(slot: &mut Option<Arc<Regex>>, pattern: &str) -> Result<Arc<Regex>, WafError> {
    if let Some(re) = slot {
        return Ok(Arc::clone(re));
    }
    let re = Arc::new(own_regex(pattern)?);
    *slot = Some(Arc::clone(&re));
    Ok(re)
}

fn own_regex(pattern: &str) -> Result<Regex, WafError> {
    Regex::new(pattern).map_err(|source| WafError::Pattern {
        pattern: pattern.to_owned(),
        source,
    })
}

/// Accumulates hits for one request.
struct Acc<'w> {
    waf: &'w Waf,
    findings: Findings,
    /// The request came from a page of the same host: a session id in its arguments is a
    /// link the site made, not a fixation attempt.
    same_site_referer: bool,
}

impl Acc<'_> {
    fn hit(&mut self, info: RuleInfo, target: &str, fragment: &str) {
        if info.paranoia > self.waf.spec.paranoia || self.waf.excluded(info.id, target) {
            return;
        }
        if self
            .findings
            .hits
            .iter()
            .any(|h| h.rule_id == info.id && h.target == target)
        {
            return;
        }
        let secret = target.starts_with("cookie:")
            || target == "header:authorization"
            || target == "header:proxy-authorization"
            || target == "header:cookie";
        let fragment = if secret {
            String::new()
        } else {
            truncate(fragment, 64)
        };
        self.findings.score = self.findings.score.saturating_add(info.score);
        self.findings.hits.push(RuleHit {
            rule_id: info.id,
            category: info.category,
            target: target.to_owned(),
            fragment,
        });
    }
}

fn truncate(s: &str, n: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(n)
        .collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// Headers whose values are structured by the protocol; injection detectors skip them.
const STRUCTURED_HEADERS: &[&str] = &[
    "host",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-charset",
    "connection",
    "content-length",
    "content-type",
    "transfer-encoding",
    "cache-control",
    "pragma",
    "upgrade-insecure-requests",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "te",
    "authorization",
    "proxy-authorization",
    "cookie",
    "origin",
    "dnt",
    "priority",
    "keep-alive",
    "upgrade",
    "range",
    "if-range",
    "x-request-id",
    "traceparent",
    "tracestate",
    "content-encoding",
    "expect",
    "via",
    "date",
];

/// Outcome of the positive model's own checks.
pub(crate) struct PositiveViolation(pub(crate) String);

impl Waf {
    /// Compiles a route's WAF. Everything expensive (regex sets, prefilters, schema) is built
    /// here, once per config load.
    pub fn from_spec(spec: &WafSpec) -> Result<Waf, WafError> {
        let p = spec.paranoia;
        let positive = positive::Positive::from_spec(spec)?;
        let dlp = dlp::Dlp::from_spec(spec)?;
        let mut shared = shared_rules().lock();
        let scanners = match &shared.scanners {
            Some(a) => Arc::clone(a),
            None => {
                let a = Arc::new(
                    AhoCorasick::new(rules::SCANNERS)
                        .map_err(|e| WafError::Prefilter(e.to_string()))?,
                );
                shared.scanners = Some(Arc::clone(&a));
                a
            }
        };
        Ok(Waf {
            spec: spec.clone(),
            values: shared_set(&mut shared, p, T_VALUE)?,
            paths: shared_set(&mut shared, p, T_PATH)?,
            names: shared_set(&mut shared, p, T_NAME)?,
            scanners,
            positive,
            dlp,
            brace_command: shared_regex(&mut shared.brace_command, heuristics::BRACE_COMMANDS)?,
            php_indirect: shared_regex(&mut shared.php_indirect, heuristics::PHP_INDIRECT_CALL)?,
        })
    }

    /// The route's mode.
    #[must_use]
    pub fn mode(&self) -> WafMode {
        self.spec.mode
    }

    /// How many body bytes the proxy should buffer for inspection (0 = no body inspection).
    #[must_use]
    pub fn body_inspect_limit(&self) -> usize {
        if self.spec.mode == WafMode::Off {
            0
        } else {
            self.spec.body_inspect_bytes
        }
    }

    /// Whether a body larger than the limit must be rejected (413) instead of prefix-inspected.
    #[must_use]
    pub fn reject_oversize_body(&self) -> bool {
        self.spec.mode == WafMode::Block && self.spec.reject_oversize_body
    }

    /// Response bytes DLP wants to see (0 = DLP off).
    #[must_use]
    pub fn response_inspect_limit(&self) -> usize {
        if self.spec.mode == WafMode::Off {
            return 0;
        }
        self.dlp.as_ref().map_or(0, |_| self.spec.dlp_inspect_bytes)
    }

    /// Response DLP: looks for card numbers, national ids and secrets in a (bounded) response
    /// body and masks or blocks them as configured.
    #[must_use]
    pub fn inspect_response(&self, content_type: Option<&str>, body: &[u8]) -> DlpOutcome {
        match &self.dlp {
            Some(d) if self.spec.mode != WafMode::Off => d.inspect(content_type, body),
            _ => DlpOutcome::Pass,
        }
    }

    fn excluded(&self, rule: u32, target: &str) -> bool {
        // Excluding a tokenising detector (SQLi 200001, XSS 210001) excludes its signature
        // companions too (2000xx, 2100xx): "HTML is allowed here" means all of XSS.
        let family = |id: u32| {
            id == rule || (id == rules::SQLI.id || id == rules::XSS.id) && rule / 1000 == id / 1000
        };
        self.spec.exclusions.iter().any(|(id, t)| {
            family(*id)
                && match t {
                    None => true,
                    Some(t) => {
                        target == t
                            || (!t.contains(':')
                                && target
                                    .strip_prefix(t.as_str())
                                    .is_some_and(|r| r.starts_with(':')))
                    }
                }
        })
    }

    fn verdict(&self, findings: Findings) -> Result<Findings, Deny> {
        if self.spec.mode == WafMode::Block && findings.score >= self.spec.threshold {
            let detail = format!("score={} rules={}", findings.score, findings.summary());
            return Err(Deny::new(
                403,
                "waf_blocked",
                "request blocked by the web application firewall",
            )
            .with_log_detail(detail));
        }
        Ok(findings)
    }

    fn limit(&self, status: u16, reason: &'static str, message: String) -> Result<(), Deny> {
        if self.spec.mode == WafMode::Block {
            Err(Deny::new(status, reason, message))
        } else {
            Ok(())
        }
    }

    fn positive_fail(&self, acc: &mut Acc<'_>, v: PositiveViolation) -> Result<(), Deny> {
        if self.spec.mode == WafMode::Block {
            return Err(Deny::new(403, "waf_positive_model", v.0.clone())
                .with_log_detail(format!("positive model: {}", v.0)));
        }
        acc.findings.hits.push(RuleHit {
            rule_id: 900_001,
            category: "positive",
            target: "request".to_owned(),
            fragment: truncate(&v.0, 64),
        });
        Ok(())
    }

    /// Inspects the request head: request line, path (normalised), query arguments, headers,
    /// cookies, protocol anomalies and limits.
    pub fn check_head(&self, req: &RequestView<'_>) -> Result<Findings, Deny> {
        let mut acc = Acc {
            waf: self,
            findings: Findings::default(),
            same_site_referer: same_site_referer(req),
        };
        if self.spec.mode == WafMode::Off {
            return Ok(acc.findings);
        }
        self.head_limits(req)?;
        if let Some(p) = &self.positive {
            if let Err(v) = p.check_head(req) {
                self.positive_fail(&mut acc, v)?;
            }
        }
        self.protocol(req, &mut acc);
        // Origin form only: a backslash, a fragment or a missing leading slash is a parser
        // differential between the gateway and the application (CONNECT has its own form).
        if req.method != "CONNECT"
            && (!(req.path.starts_with('/') || req.path == "*" && req.method == "OPTIONS")
                || req.path.contains(['\\', '#']))
        {
            acc.hit(rules::BAD_TARGET, "path", req.path);
        }
        // Path: decoded for signatures; traversal is judged before collapsing.
        let path = decode::normalise(req.path);
        if path
            .chars()
            .any(|c| c == '\0' || (c.is_control() && c != '\t'))
            || req.path.contains("%00")
        {
            acc.hit(rules::CONTROL_CHARS, "path", &path);
        }
        self.scan_text(&path, "path", &self.paths, &mut acc);
        // Words like `document.cookie` name documentation pages; only markup, quotes or
        // calls make a path script.
        if path.contains(['<', '"', '\'', '(', '`']) {
            if let Some(r) = xss::detect(&path) {
                acc.hit(rules::XSS, "path", &format!("{r}: {path}"));
            }
        }
        if path.contains('\'') || path.contains("union") || path.contains(';') {
            if let Some(r) = sqli::detect(&path) {
                acc.hit(rules::SQLI, "path", &format!("{r}: {path}"));
            }
        }
        // REST paths carry parameters in segments; one that looks base64-encoded is decoded
        // and inspected like a value.
        for seg in req.path.split('/') {
            if let Some(text) = decode::base64_text(seg) {
                let norm = decode::normalise(&text);
                self.scan_norm(&norm, "path", &mut acc);
            }
        }
        // Query arguments.
        let mut fields = Vec::new();
        if let Some(q) = req.query {
            if has_bad_percent(q) {
                acc.hit(rules::BAD_ENCODING, "args", q);
            }
            if has_fullwidth_escape(q) {
                acc.hit(rules::FULLWIDTH_ESCAPE, "args", q);
            }
            if q.contains('%') && broken_utf8_sequence(&decode::percent_decode(q.as_bytes(), true))
            {
                acc.hit(rules::INVALID_UTF8, "args", q);
            }
            body::urlencoded(
                q,
                "args",
                &mut fields,
                self.spec.limit_arg_count.saturating_add(1),
            );
            if fields.len() > self.spec.limit_arg_count {
                self.limit(
                    403,
                    "waf_too_many_args",
                    format!("more than {} query arguments", self.spec.limit_arg_count),
                )?;
            }
            if let Some(whole) = body::split_inside_value(q) {
                scan_reassembled(&whole, "args", &mut acc);
            }
        }
        self.scan_fields(&fields, &mut acc);
        // Headers and cookies.
        for (name, value) in req.headers {
            let n = name.as_str();
            // Header values are nearly always valid (mostly ASCII): the validation with its
            // ASCII fast path first, the lossy conversion (same result) only for the rest.
            let v = match std::str::from_utf8(value.as_bytes()) {
                Ok(v) => std::borrow::Cow::Borrowed(v),
                Err(_) => String::from_utf8_lossy(value.as_bytes()),
            };
            if n == "cookie" {
                for c in v.split(';') {
                    let (k, val) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
                    let target = format!("cookie:{}", k.to_ascii_lowercase());
                    // Cookie names are attacker-chosen too (class names, markup).
                    let name = decode::normalise(k);
                    self.scan_text(&name, &target, &self.names, &mut acc);
                    if !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                    {
                        self.scan_value(k, &target, &mut acc);
                    }
                    let val = decode::url_decode_multi(val, false);
                    self.scan_value(&val, &target, &mut acc);
                }
                continue;
            }
            if n == "user-agent" {
                let lower = v.to_ascii_lowercase();
                if self.scanners.is_match(&lower) {
                    acc.hit(rules::SCANNER, "header:user-agent", &lower);
                }
            }
            if n == "proxy" {
                acc.hit(rules::PROXY_HEADER, "header:proxy", &v);
            }
            if v.contains(['\r', '\n'])
                || v.contains('%') && decode::url_decode_multi(&v, false).contains(['\r', '\n'])
            {
                acc.hit(rules::CRLF_NAME, &format!("header:{n}"), &v);
            }
            if n == "range" && heuristics::bad_range(&v.to_ascii_lowercase()) {
                acc.hit(rules::BAD_RANGE, "header:range", &v);
            }
            if n == "connection" && connection_conflict(&v) {
                acc.hit(rules::CONNECTION_CONFLICT, "header:connection", &v);
            }
            if n == "host"
                && !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
            {
                acc.hit(rules::BAD_HOST, "header:host", &v);
            }
            // A compressed request body cannot be inspected; a ranged one has no defined
            // meaning (RFC 9110 says answer 400); WebDAV preconditions have no business here.
            let restricted = match n {
                "if" | "lock-token" => true,
                "content-encoding" => !v.trim().eq_ignore_ascii_case("identity"),
                _ => false,
            };
            if restricted {
                acc.hit(rules::RESTRICTED_HEADER, &format!("header:{n}"), &v);
            }
            if n == "request-range" {
                acc.hit(rules::REQUEST_RANGE, "header:request-range", &v);
            }
            if upload_name_header(n) && script_file_name(&v) {
                acc.hit(rules::SCRIPT_UPLOAD, &format!("header:{n}"), &v);
            }
            if STRUCTURED_HEADERS.contains(&n) {
                // Still catch Log4Shell and CRLF anywhere.
                if v.contains("${") {
                    let norm = decode::normalise(&v);
                    self.scan_text(&norm, &format!("header:{n}"), &self.names, &mut acc);
                }
                continue;
            }
            self.scan_value(&v, &format!("header:{n}"), &mut acc);
        }
        self.verdict(acc.findings)
    }

    fn head_limits(&self, req: &RequestView<'_>) -> Result<(), Deny> {
        let uri = req.path.len() + req.query.map_or(0, |q| q.len() + 1);
        if uri > self.spec.limit_uri_bytes {
            self.limit(
                414,
                "uri_too_long",
                format!(
                    "request URI longer than {} bytes",
                    self.spec.limit_uri_bytes
                ),
            )?;
        }
        if req.headers.len() > self.spec.limit_header_count {
            self.limit(
                431,
                "headers_too_large",
                format!("more than {} request headers", self.spec.limit_header_count),
            )?;
        }
        let mut total = 0usize;
        for (n, v) in req.headers {
            let size = n.as_str().len() + v.len();
            total = total.saturating_add(size);
            if size > self.spec.limit_header_bytes {
                self.limit(
                    431,
                    "headers_too_large",
                    format!(
                        "header {} longer than {} bytes",
                        n.as_str(),
                        self.spec.limit_header_bytes
                    ),
                )?;
            }
        }
        if total > self.spec.limit_headers_total_bytes {
            self.limit(
                431,
                "headers_too_large",
                format!(
                    "request headers larger than {} bytes",
                    self.spec.limit_headers_total_bytes
                ),
            )?;
        }
        if let Some(cl) = req.headers.get(http::header::CONTENT_LENGTH) {
            if let Some(n) = cl.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
                if usize::try_from(n).unwrap_or(usize::MAX) > self.spec.limit_body_bytes {
                    self.limit(
                        413,
                        "body_too_large",
                        format!("body larger than {} bytes", self.spec.limit_body_bytes),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn protocol(&self, req: &RequestView<'_>, acc: &mut Acc<'_>) {
        let m = req.method;
        if m.is_empty()
            || !m
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            acc.hit(rules::BAD_METHOD_TOKEN, "method", m);
        } else if !matches!(
            m,
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
        ) {
            acc.hit(rules::METHOD_UNUSUAL, "method", m);
        }
        match req.host {
            None | Some("") => acc.hit(rules::HOST_MISSING, "header:host", ""),
            Some(h) if h.parse::<std::net::IpAddr>().is_ok() || h.starts_with('[') => {
                acc.hit(rules::HOST_IP, "header:host", h);
            }
            _ => {}
        }
        let h = req.headers;
        let cls: Vec<&http::HeaderValue> = h.get_all(http::header::CONTENT_LENGTH).iter().collect();
        let te = h.get_all(http::header::TRANSFER_ENCODING).iter().count();
        if !cls.is_empty() && te > 0 {
            acc.hit(rules::FRAMING_CONFLICT, "header:transfer-encoding", "");
        }
        let cl_ok = cls
            .iter()
            .all(|v| v.as_bytes().iter().all(u8::is_ascii_digit) && !v.is_empty());
        if cls.len() > 1 || !cl_ok {
            acc.hit(rules::BAD_CONTENT_LENGTH, "header:content-length", "");
        }
        for v in h.get_all(http::header::TRANSFER_ENCODING) {
            if !v.as_bytes().eq_ignore_ascii_case(b"chunked") {
                acc.hit(
                    rules::BAD_TRANSFER_ENCODING,
                    "header:transfer-encoding",
                    &String::from_utf8_lossy(v.as_bytes()),
                );
            }
        }
        let has_body = cls.iter().any(|v| v.as_bytes() != b"0") || te > 0;
        let ct_header = h.get(http::header::CONTENT_TYPE);
        if has_body && matches!(m, "GET" | "HEAD") {
            acc.hit(rules::BODY_ON_GET, "method", m);
        }
        if has_body && ct_header.is_none_or(|v| v.as_bytes().trim_ascii().is_empty()) {
            acc.hit(rules::BODY_NO_TYPE, "header:content-type", "");
        }
        if let Some(ct) = h.get(http::header::CONTENT_TYPE) {
            let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
            let media = ct.split(';').next().unwrap_or_default().trim();
            let valid = media.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && (a.bytes().chain(b.bytes()))
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
            });
            let charsets = ct.matches("charset").count();
            // A parameter whose value is another media type (`boundary="application/json"`)
            // fools inspectors that search the header for a type.
            let params = ct.split_once(';').map_or("", |(_, p)| p);
            let smuggled_type = ["application/", "text/", "multipart/"]
                .iter()
                .any(|t| params.contains(t));
            if !valid
                || charsets > 1
                || smuggled_type
                || !params_well_formed(params)
                || !allowed_part_charset(&ct)
            {
                acc.hit(rules::BAD_CONTENT_TYPE, "header:content-type", &ct);
            }
        }
    }

    /// Scans every field once. A field repeated with the same target, name and value (the
    /// keys of every object in a JSON array, a tag used twice) can add nothing: a rule counts
    /// once per target, and what fires depends only on the target, name and value.
    fn scan_fields(&self, fields: &[Field<'_>], acc: &mut Acc<'_>) {
        // foldhash: several times cheaper than SipHash on short strings, and still seeded
        // per process, so attacker-chosen field names cannot aim at collisions.
        let mut seen = std::collections::HashSet::with_capacity_and_hasher(
            fields.len(),
            foldhash::fast::RandomState::default(),
        );
        for f in fields {
            if seen.insert(SameField(f)) {
                self.scan_field(f, acc);
            }
        }
    }

    fn scan_field(&self, f: &Field<'_>, acc: &mut Acc<'_>) {
        if !f.name.is_empty() {
            // Names are attacker-controlled too (and a form body without `=` is all name).
            let name = decode::normalise_cow(&f.name);
            self.scan_value_normalised(&f.name, &name, &f.target, acc);
            let lname = f.name.to_ascii_lowercase();
            self.scan_text(&name, &f.target, &self.names, acc);
            if name.contains("[$")
                || name
                    .strip_prefix('$')
                    .is_some_and(|op| rules::NOSQL_OPERATORS.contains(&op))
            {
                acc.hit(rules::NOSQL_OPERATOR, &f.target, &name);
            }
            // A carriage return in a name is header or log splitting; a trailing line feed
            // is only how a form body without `=` ended.
            if f.name.contains('\r') || name.contains('\r') {
                acc.hit(rules::CRLF_NAME, &f.target, &name);
            }
            if heuristics::include_param(&lname) {
                let v = f.value.trim_start().to_ascii_lowercase();
                if ["http://", "https://", "ftp://", "ftps://"]
                    .iter()
                    .any(|p| v.starts_with(p))
                {
                    acc.hit(rules::RFI_PARAM, &f.target, &v);
                }
            }
            // Fixation needs a link: the wider name heuristic applies to query arguments.
            let link = f.target.starts_with("args");
            if (session_param(&lname) || link && heuristics::session_like(&lname))
                && !acc.same_site_referer
            {
                acc.hit(rules::SESSION_NAME, &f.target, &lname);
            }
        }
        if !f.value.is_empty() {
            self.scan_value(&f.value, &f.target, acc);
        }
    }

    /// Runs every value detector on one value (and on its base64 decoding when it looks
    /// encoded).
    fn scan_value(&self, raw: &str, target: &str, acc: &mut Acc<'_>) {
        self.scan_value_normalised(raw, &decode::normalise_cow(raw), target, acc);
    }

    /// [`Waf::scan_value`] for a caller that already holds `normalise(raw)`.
    fn scan_value_normalised(&self, raw: &str, norm: &str, target: &str, acc: &mut Acc<'_>) {
        // Normalising drops NULs and backslash escapes, so judge those on the value as sent.
        // A byte search first: substring searches on every value cost more than they find.
        let present = bytes_present(raw);
        if present & has::NUL != 0 || (present & has::PERCENT != 0 && raw.contains("%00")) {
            acc.hit(rules::CONTROL_CHARS, target, raw);
        }
        if present & has::BACKSLASH != 0 && (raw.contains("..\\") || raw.contains("\\..")) {
            acc.hit(rules::LFI_BACKSLASH, target, raw);
        }
        self.scan_norm(norm, target, acc);
        if let Some(text) = decode::base64_text(raw) {
            let norm = decode::normalise(&text);
            self.scan_norm(&norm, target, acc);
        }
    }

    fn scan_norm(&self, norm: &str, target: &str, acc: &mut Acc<'_>) {
        if norm.is_empty() {
            return;
        }
        let present = bytes_present(norm);
        if present & has::NUL != 0 {
            acc.hit(rules::CONTROL_CHARS, target, norm);
        }
        self.scan_text(norm, target, &self.values, acc);
        // Quotes, carets, backslashes and `$IFS`-style variables are what shell folding removes.
        if present & (has::DOLLAR | has::BACKSLASH | has::CARET | has::QUOTE | has::DQUOTE) != 0 {
            let folded = decode::shell_fold(norm);
            if folded != norm {
                self.scan_text(&folded, target, &self.values, acc);
            }
        }
        if let Some(r) = sqli::detect(norm) {
            acc.hit(rules::SQLI, target, &format!("{r}: {norm}"));
        }
        if let Some(r) = xss::detect(norm) {
            acc.hit(rules::XSS, target, &format!("{r}: {norm}"));
        }
        if present & has::LBRACE != 0 {
            if let Some(words) = heuristics::brace_expand(&decode::shell_fold(norm)) {
                if self.brace_command.is_match(&words) {
                    acc.hit(rules::BRACE_COMMAND, target, norm);
                }
            }
        }
        if present & has::LPAREN != 0
            && present & (has::DOLLAR | has::LBRACKET | has::DOT | has::RPAREN) != 0
        {
            let folded = heuristics::php_fold(norm);
            if self.php_indirect.is_match(&folded) {
                acc.hit(rules::PHP_INDIRECT, target, norm);
            }
        }
        if present & has::COLON != 0 && heuristics::hidden_script_scheme(norm) {
            acc.hit(rules::HIDDEN_SCHEME, target, norm);
        }
    }

    fn scan_text(&self, s: &str, target: &str, c: &Compiled, acc: &mut Acc<'_>) {
        // A URL in Referer or Origin is where the client came from, not something the
        // application will fetch: SSRF and RFI signatures do not apply to headers.
        // Most values match nothing: a plain match stops at the first hit and needs no
        // per-pattern bookkeeping, so ask it before the overlapping search.
        if !c.set.is_match(s) {
            return;
        }
        let header = target.starts_with("header:");
        for i in c.set.matches(s).iter() {
            if let Some((info, re)) = c.rules.get(i) {
                if header && matches!(info.category, "ssrf" | "rfi") {
                    continue;
                }
                let frag = re.find(s).map_or(s, |m| {
                    let start = s.floor_char_boundary_compat(m.start().saturating_sub(16));
                    s.get(start..).unwrap_or(s)
                });
                acc.hit(*info, target, frag);
            }
        }
    }

    /// Inspects a body (urlencoded, multipart, JSON, XML, else raw) and adds to the head's
    /// findings so the anomaly score accumulates. `truncated` says the proxy stopped buffering
    /// at [`Waf::body_inspect_limit`].
    pub fn check_body(
        &self,
        req: &RequestView<'_>,
        head: &Findings,
        body: &[u8],
        truncated: bool,
    ) -> Result<Findings, Deny> {
        let mut acc = Acc {
            waf: self,
            findings: head.clone(),
            same_site_referer: same_site_referer(req),
        };
        if self.spec.mode == WafMode::Off || body.is_empty() {
            return Ok(acc.findings);
        }
        if truncated && self.reject_oversize_body() {
            return Err(Deny::new(
                413,
                "body_too_large",
                format!("body larger than {} bytes", self.spec.body_inspect_bytes),
            ));
        }
        if body.len() > self.spec.limit_body_bytes {
            self.limit(
                413,
                "body_too_large",
                format!("body larger than {} bytes", self.spec.limit_body_bytes),
            )?;
        }
        let cap = self.spec.body_inspect_bytes.max(1);
        let body = body.get(..cap).unwrap_or(body);
        // The boundary is case-sensitive: keep the header as sent for it.
        let ct_raw = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let ct = ct_raw.to_ascii_lowercase();
        let media = ct.split(';').next().unwrap_or_default().trim().to_owned();
        let max_fields = self.spec.limit_json_elements.max(self.spec.limit_arg_count);
        let declared_json = !(media == "application/x-www-form-urlencoded"
            || media.starts_with("multipart/"))
            && media.ends_with("json");
        // A JSON body that parses is read through the parser, which checks its UTF-8 itself:
        // only the other kinds (and a JSON body that fails to parse) need it as text.
        let text = if declared_json {
            Cow::Borrowed("")
        } else {
            String::from_utf8_lossy(body)
        };
        let is_json =
            declared_json || (media.is_empty() && text.trim_start().starts_with(['{', '[']));
        // Parsed before the fields, which borrow its strings.
        let json_tree = if is_json {
            body::Json::parse(body)
        } else {
            Ok(body::Json::Other)
        };
        let unparsed_json;
        // Room for a typical API body's fields without regrowing (a JSON scalar or key
        // takes at least four bytes: `"a":` or `1,`).
        let mut fields = Vec::with_capacity((body.len() / 4).clamp(64, 1024));
        let mut json_doc = None;
        if media == "application/x-www-form-urlencoded" {
            body::urlencoded(
                &text,
                "body",
                &mut fields,
                self.spec.limit_arg_count.saturating_add(1),
            );
            if fields.len() > self.spec.limit_arg_count {
                self.limit(
                    403,
                    "waf_too_many_args",
                    format!("more than {} form arguments", self.spec.limit_arg_count),
                )?;
            }
            if let Some(whole) = body::split_inside_value(&text) {
                scan_reassembled(&whole, "body", &mut acc);
            }
        } else if media.starts_with("multipart/") {
            let ok = body::boundary(&ct_raw).is_some_and(|b| {
                body::multipart(&text, &b, &mut fields, self.spec.limit_arg_count)
            });
            // Quotes, `;`, `=` and backslashes in part names are parsed differently by
            // different back ends: the classic multipart bypass.
            for f in &fields {
                let n = match &*f.target {
                    "body:filename" => &*f.value,
                    "body:part_header" | body::AMBIGUOUS_DISPOSITION => "",
                    _ => &*f.name,
                };
                if n.contains(['"', ';', '=', '\\']) {
                    acc.hit(rules::MULTIPART_BAD, "body", n);
                }
            }
            if !ok && !truncated {
                acc.hit(rules::MULTIPART_BAD, "body", "");
                fields.push(Field::whole("body", &text));
            }
        } else if is_json {
            match &json_tree {
                Ok(v) => {
                    let mut stats = body::JsonStats::default();
                    body::json(
                        v,
                        self.spec.limit_json_depth,
                        &mut stats,
                        &mut fields,
                        max_fields,
                    );
                    if stats.too_deep || stats.elements > self.spec.limit_json_elements {
                        let msg = format!(
                            "JSON body deeper than {} or with more than {} values",
                            self.spec.limit_json_depth, self.spec.limit_json_elements
                        );
                        self.limit(403, "waf_json_limits", msg)?;
                    }
                    // Only the schema check needs the document as a `Value`: parse it
                    // again there rather than on every JSON request.
                    if self.positive.is_some() {
                        json_doc = serde_json::from_slice::<serde_json::Value>(body).ok();
                    }
                }
                Err(_) => {
                    if !truncated {
                        acc.hit(rules::JSON_BAD, "body", "");
                    }
                    unparsed_json = String::from_utf8_lossy(body);
                    fields.push(Field::whole("body", &unparsed_json));
                }
            }
        } else if media.ends_with("xml") || text.trim_start().starts_with("<?xml") {
            if body::xml(&text, &mut fields, max_fields) {
                acc.hit(rules::XXE, "xml", "doctype");
            }
            if let Some(what) = body::xml_external_reference(&text) {
                acc.hit(rules::XXE, "xml", what);
            }
        } else {
            fields.push(Field::whole("body", &text));
        }
        for f in &fields {
            if &*f.target == "body:filename" && script_file_name(&f.value) {
                acc.hit(rules::SCRIPT_UPLOAD, &f.target, &f.value);
            }
            if &*f.target == body::AMBIGUOUS_DISPOSITION {
                acc.hit(rules::MULTIPART_BAD, "body", &f.value);
            }
            if &*f.target == "body:part_header" && !allowed_part_charset(&f.value) {
                acc.hit(rules::MULTIPART_CHARSET, &f.target, &f.value);
            }
        }
        if let Some(p) = &self.positive {
            if let Err(v) = p.check_body(&media, &fields, json_doc.as_ref()) {
                self.positive_fail(&mut acc, v)?;
            }
        }
        self.scan_fields(&fields, &mut acc);
        self.verdict(acc.findings)
    }
}

/// A field as a set key: equal when target, name and value are. Only name and value are
/// hashed: targets are long and shared by many fields, so they would cost more to hash than
/// they separate.
struct SameField<'a>(&'a Field<'a>);

impl PartialEq for SameField<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
            && self.0.value == other.0.value
            && self.0.target == other.0.target
    }
}

impl Eq for SameField<'_> {}

impl std::hash::Hash for SameField<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
        self.0.value.hash(state);
    }
}

/// Bits of [`bytes_present`]: the ASCII bytes whose presence gates a check on a value.
mod has {
    pub(crate) const NUL: u16 = 1;
    pub(crate) const PERCENT: u16 = 1 << 1;
    pub(crate) const BACKSLASH: u16 = 1 << 2;
    pub(crate) const DOLLAR: u16 = 1 << 3;
    pub(crate) const CARET: u16 = 1 << 4;
    pub(crate) const QUOTE: u16 = 1 << 5;
    pub(crate) const DQUOTE: u16 = 1 << 6;
    pub(crate) const LBRACE: u16 = 1 << 7;
    pub(crate) const LPAREN: u16 = 1 << 8;
    pub(crate) const RPAREN: u16 = 1 << 9;
    pub(crate) const LBRACKET: u16 = 1 << 10;
    pub(crate) const DOT: u16 = 1 << 11;
    pub(crate) const COLON: u16 = 1 << 12;
}

/// Which of the [`has`] bytes `s` contains, in one pass: a value went through a dozen
/// `contains` scans, each with its own call and setup, to gate checks most values skip.
/// An ASCII byte occurs in UTF-8 only as that character, so a bit is set exactly when
/// `s.contains(char)` would be true.
fn bytes_present(s: &str) -> u16 {
    const TABLE: [u16; 256] = {
        let mut t = [0u16; 256];
        t[0] = has::NUL;
        t[b'%' as usize] = has::PERCENT;
        t[b'\\' as usize] = has::BACKSLASH;
        t[b'$' as usize] = has::DOLLAR;
        t[b'^' as usize] = has::CARET;
        t[b'\'' as usize] = has::QUOTE;
        t[b'"' as usize] = has::DQUOTE;
        t[b'{' as usize] = has::LBRACE;
        t[b'(' as usize] = has::LPAREN;
        t[b')' as usize] = has::RPAREN;
        t[b'[' as usize] = has::LBRACKET;
        t[b'.' as usize] = has::DOT;
        t[b':' as usize] = has::COLON;
        t
    };
    s.bytes().fold(0, |m, b| {
        m | TABLE.get(usize::from(b)).copied().unwrap_or(0)
    })
}

/// Argument names that carry a session id: the well-known ones and framework-style
/// `<framework>_session`, `session_id`, `<name>.sid`, `<name>:sess`.
fn session_param(name: &str) -> bool {
    rules::SESSION_PARAMS.contains(&name)
        || [
            "_session",
            "-session",
            "sessionid",
            "session_id",
            "session-id",
            ".sid",
            ":sess",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Headers some upload clients use to carry the file name.
fn upload_name_header(name: &str) -> bool {
    let squashed: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    matches!(
        squashed.as_str(),
        "xfilename" | "xfile" | "filename" | "xuploadfilename"
    )
}

/// Whether an uploaded file name ends in an extension the server may execute (trailing dots,
/// spaces and NULs are ignored the way Windows and some runtimes ignore them).
fn script_file_name(name: &str) -> bool {
    let name = name
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace() || c == '\0')
        .to_ascii_lowercase();
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    // A PHP session file planted by upload is a session-hijack primitive; server and
    // application configuration files change how everything else runs.
    if base.starts_with("sess_") && base.len() >= 20
        || base.starts_with("wp-config")
        || matches!(
            base,
            ".htaccess" | ".htpasswd" | "web.config" | ".user.ini" | "php.ini" | ".env"
        )
    {
        return true;
    }
    // The last extension decides, except PHP, which Apache runs in any position
    // (`shell.php.jpg`).
    let mut exts = base.split('.').skip(1).peekable();
    let mut found = false;
    while let Some(ext) = exts.next() {
        // `photo. php` still runs as PHP on servers that trim the name.
        let ext = ext
            .trim()
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        // Versioned and test variants (`.php7`, `.php907`, `.phpt`) are mapped to PHP by
        // common handler globs.
        let php_like = ext
            .strip_prefix("php")
            .is_some_and(|v| v.is_empty() || v == "t" || v.bytes().all(|c| c.is_ascii_digit()));
        found |= php_like;
        let last = exts.peek().is_none();
        found |= (last && rules::SCRIPT_EXTENSIONS.contains(&ext))
            || (ext.starts_with("php") || ext.starts_with("pht"))
                && rules::SCRIPT_EXTENSIONS.contains(&ext);
    }
    found
}

/// Part headers may declare a charset; anything but UTF-8, ASCII or Latin-1 lets markup hide
/// from inspection (UTF-7 `+ADw-script+AD4-`).
fn allowed_part_charset(header: &str) -> bool {
    let lower = header.to_ascii_lowercase();
    let Some(i) = lower.find("charset") else {
        return true;
    };
    let v = lower.get(i + "charset".len()..).unwrap_or_default();
    let v = v.trim_start_matches([' ', '=', '"', '\'']);
    let cs: String = v
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    matches!(
        cs.as_str(),
        "utf-8" | "utf8" | "us-ascii" | "ascii" | "latin1"
    ) || cs.starts_with("iso-8859-")
        || cs.starts_with("windows-125")
}

/// Whether the Referer names the request's own host (scheme and port ignored).
fn same_site_referer(req: &RequestView<'_>) -> bool {
    let (Some(host), Some(referer)) = (req.host, req.headers.get(http::header::REFERER)) else {
        return false;
    };
    let referer = String::from_utf8_lossy(referer.as_bytes()).to_ascii_lowercase();
    let Some(rest) = referer.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let ref_host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    !ref_host.is_empty() && ref_host == host
}

/// The tokenisers over a form string that `&` cut inside a value (see
/// `body::split_inside_value`): markup and SQL whose pieces became parameter names.
fn scan_reassembled(whole: &str, target: &str, acc: &mut Acc<'_>) {
    let norm = decode::normalise(whole);
    if let Some(r) = sqli::detect(&norm) {
        acc.hit(rules::SQLI, target, &format!("{r}: {norm}"));
    }
    if let Some(r) = xss::detect(&norm) {
        acc.hit(rules::XSS, target, &format!("{r}: {norm}"));
    }
}

/// `keep-alive, keep-alive` or `keep-alive, close`: clients send each option once and never
/// both; proxies disagree on which one wins.
fn connection_conflict(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    let tokens: Vec<&str> = lower
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let repeated = tokens
        .iter()
        .enumerate()
        .any(|(i, t)| tokens.iter().skip(i + 1).any(|u| u == t));
    repeated || tokens.contains(&"close") && tokens.contains(&"keep-alive")
}

/// Media-type parameters are `name=value` (token or quoted string), nothing else.
fn params_well_formed(params: &str) -> bool {
    params.split(';').all(|p| {
        let p = p.trim();
        if p.is_empty() {
            return true;
        }
        let Some((k, v)) = p.split_once('=') else {
            return false;
        };
        !k.is_empty() && !v.trim().is_empty() && !k.ends_with(char::is_whitespace)
    })
}

/// A lead byte followed by continuation bytes that do not make a valid character: an
/// overlong form (`%c0%af`), an out-of-range lead (`%f5%80`) or a truncated sequence. Lone
/// high bytes (Latin-1 text) are not judged here.
fn broken_utf8_sequence(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Err(e) = std::str::from_utf8(rest) {
        let at = e.valid_up_to();
        let lead = rest.get(at).copied().unwrap_or(0);
        let next = rest.get(at + 1).copied().unwrap_or(0);
        if lead >= 0xc0 && (0x80..=0xbf).contains(&next) {
            return true;
        }
        rest = rest
            .get(at + e.error_len().unwrap_or(1)..)
            .unwrap_or_default();
    }
    false
}

/// `%uFFxx`: IIS decodes full-width forms to ASCII, so `%uff0f` is a slash no other
/// component sees.
fn has_fullwidth_escape(s: &str) -> bool {
    s.as_bytes().windows(4).any(|w| {
        w.first() == Some(&b'%')
            && w.get(1).is_some_and(|c| c.eq_ignore_ascii_case(&b'u'))
            && w.get(2..4).is_some_and(|d| d.eq_ignore_ascii_case(b"ff"))
    })
}

/// `%` not followed by two hex digits (or `u` and four).
fn has_bad_percent(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            && !(matches!(b.get(i + 1), Some(b'u' | b'U'))
                && b.get(i + 2..i + 6)
                    .is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit)))
    })
}

trait FloorBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorBoundary for str {
    fn floor_char_boundary_compat(&self, i: usize) -> usize {
        let mut i = i.min(self.len());
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[cfg(test)]
mod tests;
