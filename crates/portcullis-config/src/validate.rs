//! Every cross-field and cross-file check. Problems are collected, never returned early, so one
//! run of `portcullis check` shows all of them.

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::time::Duration;

use regex::Regex;

use crate::duration::parse_duration;
use crate::error::{Diagnostics, Origin};
use crate::load::{Item, RawSet};
use crate::model::{
    AccessLog, Admin, Backend, Config, DirectResponse, HeaderCondition, HeaderMatch, HeaderOps,
    HealthCheck, HealthCheckKind, HostMatch, Listener, PassiveHealth, PathMatch, Route,
    RouteAction, RouteMatch, Server, Timeouts, Upstream, DEFAULT_REDACTED_QUERY_PARAMS,
};
use crate::raw::{RawHeaderOps, RawMatch, RawRoute, RawUpstream};

/// The largest weight a backend may have.
const MAX_WEIGHT: i64 = 10_000;

pub(crate) fn validate(set: RawSet, d: &mut Diagnostics) -> Option<Config> {
    let server = single(&set.server, "server", d).map_or_else(Server::default, |item| {
        let raw = &item.raw;
        let o = &item.origin;
        let def = Server::default();
        Server {
            threads: count(raw.threads, def.threads, 1, 1024, o, "threads", d),
            grace_period: dur(
                raw.grace_period.as_deref(),
                def.grace_period,
                o,
                "grace_period",
                d,
            ),
            graceful_shutdown_timeout: dur(
                raw.graceful_shutdown_timeout.as_deref(),
                def.graceful_shutdown_timeout,
                o,
                "graceful_shutdown_timeout",
                d,
            ),
            upstream_keepalive_pool_size: count(
                raw.upstream_keepalive_pool_size,
                def.upstream_keepalive_pool_size,
                0,
                1_000_000,
                o,
                "upstream_keepalive_pool_size",
                d,
            ),
            work_stealing: raw.work_stealing.unwrap_or(def.work_stealing),
            watch_config: raw.watch_config.unwrap_or(def.watch_config),
            reload_debounce: dur(
                raw.reload_debounce.as_deref(),
                def.reload_debounce,
                o,
                "reload_debounce",
                d,
            ),
            request_header_timeout: crate::ratelimit::duration(
                raw.request_header_timeout.as_deref(),
                def.request_header_timeout,
                o,
                "request_header_timeout",
                d,
            ),
            client_body_timeout: crate::ratelimit::duration(
                raw.client_body_timeout.as_deref(),
                def.client_body_timeout,
                o,
                "client_body_timeout",
                d,
            ),
            keepalive_timeout: crate::ratelimit::duration(
                raw.keepalive_timeout.as_deref(),
                def.keepalive_timeout,
                o,
                "keepalive_timeout",
                d,
            ),
            keepalive_requests: count(
                raw.keepalive_requests,
                def.keepalive_requests,
                0,
                i64::from(u32::MAX),
                o,
                "keepalive_requests",
                d,
            ),
            max_connections: count(
                raw.max_connections,
                def.max_connections,
                1,
                10_000_000,
                o,
                "max_connections",
                d,
            ),
            trusted_proxies: raw
                .trusted_proxies
                .iter()
                .enumerate()
                .filter_map(|(i, text)| {
                    crate::ratelimit::parse_net(text)
                        .map_err(|e| d.error(&o.at(&["trusted_proxies", &i.to_string()]), e))
                        .ok()
                })
                .collect(),
        }
    });

    let admin = single(&set.admin, "admin", d).and_then(|item| {
        socket_addr(&item.raw.address, &item.origin, "address", d).map(|address| Admin { address })
    });

    let access_log = single(&set.access_log, "access_log", d).map_or_else(
        || access_log_with(&[]),
        |item| {
            let mut log = access_log_with(&item.raw.redact_query_params);
            log.enabled = item.raw.enabled.unwrap_or(true);
            log
        },
    );

    let mut listeners = Vec::new();
    let mut listener_names = HashSet::new();
    let mut listener_addrs = HashSet::new();
    for item in &set.listeners {
        let (raw, o) = (&item.raw, &item.origin);
        check_name(&raw.name, o, "name", d);
        if !listener_names.insert(raw.name.clone()) {
            d.error_at(
                o,
                &["name"],
                format!("duplicate listener name `{}`", raw.name),
            );
        }
        if let Some(address) = socket_addr(&raw.address, o, "address", d) {
            if !listener_addrs.insert(address) {
                d.error_at(
                    o,
                    &["address"],
                    format!("address {address} is bound by another listener"),
                );
            }
            if admin.as_ref().is_some_and(|a| a.address == address) {
                d.error_at(
                    o,
                    &["address"],
                    format!("address {address} is the admin listener's"),
                );
            }
            listeners.push(Listener {
                name: raw.name.clone(),
                address,
                h2c: raw.h2c.unwrap_or(false),
                tls: raw
                    .tls
                    .as_ref()
                    .and_then(|t| crate::tls::listener_tls(t, &o.at(&["tls"]), d)),
            });
        }
    }
    if set.listener_entries == 0 {
        if let Some(first) = &set.first {
            let o = Origin {
                source: first.clone(),
                path: Default::default(),
            };
            d.error(
                &o,
                "no listener is defined: add at least one entry under `listeners`",
            );
        }
    }

    let mut upstreams = BTreeMap::new();
    for (name, item) in &set.upstreams {
        check_name(name, &item.origin, "", d);
        if upstreams.contains_key(name) {
            d.error(&item.origin, format!("duplicate upstream name `{name}`"));
            continue;
        }
        if let Some(up) = upstream(name, &item.raw, &item.origin, d) {
            upstreams.insert(name.clone(), up);
        }
    }
    // Names of pools that were defined, even if invalid, so a route does not get a second error.
    let pool_names: HashSet<&str> = set.upstream_names.iter().map(String::as_str).collect();

    let mut routes = Vec::new();
    let mut route_names = HashSet::new();
    for (order, item) in set.routes.iter().enumerate() {
        check_name(&item.raw.name, &item.origin, "name", d);
        if !route_names.insert(item.raw.name.clone()) {
            d.error_at(
                &item.origin,
                &["name"],
                format!("duplicate route name `{}`", item.raw.name),
            );
        }
        if let Some(r) = route(item, &pool_names, d) {
            routes.push((order, r));
        }
    }
    let route_name_refs: HashSet<&str> = route_names.iter().map(String::as_str).collect();
    let protection = crate::ratelimit::validate_protection(&set, &route_name_refs, &pool_names, d);
    routes.sort_by_key(|(order, r)| {
        (
            std::cmp::Reverse(r.priority),
            specificity(&r.matcher),
            *order,
        )
    });

    Some(Config {
        server,
        admin,
        access_log,
        listeners,
        upstreams,
        routes: routes.into_iter().map(|(_, r)| r).collect(),
        protection,
    })
}

/// Lower sorts first: exact hosts before wildcards before any host; then exact paths, longer
/// prefixes, regexes, no path condition; then routes with more conditions.
fn specificity(
    m: &RouteMatch,
) -> (
    u8,
    std::cmp::Reverse<usize>,
    u8,
    std::cmp::Reverse<usize>,
    std::cmp::Reverse<usize>,
) {
    let host_rank = if m.hosts.iter().any(|h| matches!(h, HostMatch::Exact(_))) {
        0
    } else if m.hosts.is_empty() {
        2
    } else {
        1
    };
    let wildcard_len = m
        .hosts
        .iter()
        .filter_map(|h| match h {
            HostMatch::Wildcard(s) => Some(s.len()),
            HostMatch::Exact(_) => None,
        })
        .max()
        .unwrap_or(0);
    let (path_rank, path_len) = match &m.path {
        Some(PathMatch::Exact(p)) => (0, p.len()),
        Some(PathMatch::Prefix(p)) => (1, p.len()),
        Some(PathMatch::Regex(_)) => (2, 0),
        None => (3, 0),
    };
    let conditions = usize::from(!m.methods.is_empty()) + m.headers.len();
    (
        host_rank,
        std::cmp::Reverse(wildcard_len),
        path_rank,
        std::cmp::Reverse(path_len),
        std::cmp::Reverse(conditions),
    )
}

fn single<'a, T>(items: &'a [Item<T>], section: &str, d: &mut Diagnostics) -> Option<&'a Item<T>> {
    for dup in items.iter().skip(1) {
        d.error(
            &dup.origin,
            format!(
                "`{section}` is defined more than once (first in {})",
                items[0].origin.file().display()
            ),
        );
    }
    items.first()
}

fn access_log_with(extra: &[String]) -> AccessLog {
    let mut names: Vec<String> = DEFAULT_REDACTED_QUERY_PARAMS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    names.extend(extra.iter().map(|s| s.to_ascii_lowercase()));
    names.sort();
    names.dedup();
    AccessLog {
        enabled: true,
        redact_query_params: names,
    }
}

fn count(
    v: Option<i64>,
    default: usize,
    min: i64,
    max: i64,
    o: &Origin,
    key: &str,
    d: &mut Diagnostics,
) -> usize {
    match v {
        None => default,
        Some(n) if (min..=max).contains(&n) => usize::try_from(n).unwrap_or(default),
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

fn nonzero(
    v: Option<i64>,
    default: u32,
    max: i64,
    o: &Origin,
    key: &str,
    d: &mut Diagnostics,
) -> NonZeroU32 {
    let fallback = NonZeroU32::new(default).unwrap_or(NonZeroU32::MIN);
    match v {
        None => fallback,
        Some(n) if n >= 1 && n <= max => u32::try_from(n)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(fallback),
        Some(n) => {
            d.error_at(
                o,
                &[key],
                format!("{n} is out of range: expected 1 to {max}"),
            );
            fallback
        }
    }
}

fn dur(v: Option<&str>, default: Duration, o: &Origin, key: &str, d: &mut Diagnostics) -> Duration {
    match v.map(parse_duration) {
        None => default,
        Some(Ok(x)) => x,
        Some(Err(e)) => {
            d.error_at(o, &[key], e);
            default
        }
    }
}

fn check_name(name: &str, o: &Origin, key: &str, d: &mut Diagnostics) {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        let rel: &[&str] = if key.is_empty() { &[] } else { &[key] };
        d.error_at(
            o,
            rel,
            format!("invalid name {name:?}: use 1-128 letters, digits, '-', '_' or '.'"),
        );
    }
}

fn socket_addr(text: &str, o: &Origin, key: &str, d: &mut Diagnostics) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            d.error_at(
                o,
                &[key],
                format!(
                    "invalid address {text:?}: expected ip:port, e.g. 0.0.0.0:8080 or [::]:8080"
                ),
            );
            None
        }
    }
}

fn upstream(name: &str, raw: &RawUpstream, o: &Origin, d: &mut Diagnostics) -> Option<Upstream> {
    let errors_before = d.len();
    if raw.backends.is_empty() {
        d.error_at(o, &["backends"], "a pool needs at least one backend");
    }
    let mut backends = Vec::new();
    for (i, b) in raw.backends.iter().enumerate() {
        let bo = o.at(&["backends", &i.to_string()]);
        let weight = match b.weight {
            None => NonZeroU32::MIN,
            Some(w) if (1..=MAX_WEIGHT).contains(&w) => u32::try_from(w)
                .ok()
                .and_then(NonZeroU32::new)
                .unwrap_or(NonZeroU32::MIN),
            Some(w) => {
                d.error_at(
                    &bo,
                    &["weight"],
                    format!("weight {w} is out of range: expected 1 to {MAX_WEIGHT}"),
                );
                continue;
            }
        };
        match resolve(&b.address) {
            Ok(resolved) => backends.push(Backend {
                address: b.address.clone(),
                resolved,
                weight,
            }),
            Err(e) => d.error_at(&bo, &["address"], e),
        }
    }
    let health_check = raw.health_check.as_ref().map(|h| {
        let ho = o.at(&["health_check"]);
        let kind = match h.kind.as_deref().unwrap_or("http") {
            "tcp" => {
                if h.path.is_some() || h.host.is_some() {
                    d.error_at(&ho, &["path"], "`path` and `host` apply to http checks only");
                }
                HealthCheckKind::Tcp
            }
            "http" => {
                let path = h.path.clone().unwrap_or_else(|| "/".to_owned());
                if !path.starts_with('/') || path.chars().any(|c| c.is_ascii_control() || c == ' ') {
                    d.error_at(&ho, &["path"], format!("invalid health check path {path:?}: expected an absolute path such as /healthz"));
                }
                HealthCheckKind::Http { path, host: h.host.clone() }
            }
            other => {
                d.error_at(&ho, &["type"], format!("unknown health check type {other:?}: expected http or tcp"));
                HealthCheckKind::Tcp
            }
        };
        let interval = dur(h.interval.as_deref(), Duration::from_secs(5), &ho, "interval", d);
        if interval < Duration::from_millis(100) {
            d.error_at(&ho, &["interval"], "interval must be at least 100ms");
        }
        HealthCheck {
            kind,
            interval,
            timeout: dur(h.timeout.as_deref(), Duration::from_secs(1), &ho, "timeout", d),
            unhealthy_after: nonzero(h.unhealthy_after, 3, 100, &ho, "unhealthy_after", d),
            healthy_after: nonzero(h.healthy_after, 2, 100, &ho, "healthy_after", d),
        }
    });
    let passive_health = match &raw.passive_health {
        None => PassiveHealth {
            consecutive_failures: NonZeroU32::MIN.saturating_add(2),
            ejection: Duration::from_secs(10),
        },
        Some(p) => {
            let po = o.at(&["passive_health"]);
            PassiveHealth {
                consecutive_failures: nonzero(
                    p.consecutive_failures,
                    3,
                    1000,
                    &po,
                    "consecutive_failures",
                    d,
                ),
                ejection: dur(
                    p.ejection.as_deref(),
                    Duration::from_secs(10),
                    &po,
                    "ejection",
                    d,
                ),
            }
        }
    };
    let t = raw.timeouts.as_ref();
    let to = o.at(&["timeouts"]);
    let timeouts = Timeouts {
        connect: dur(
            t.and_then(|t| t.connect.as_deref()),
            Duration::from_secs(2),
            &to,
            "connect",
            d,
        ),
        read: dur(
            t.and_then(|t| t.read.as_deref()),
            Duration::from_secs(30),
            &to,
            "read",
            d,
        ),
        write: dur(
            t.and_then(|t| t.write.as_deref()),
            Duration::from_secs(30),
            &to,
            "write",
            d,
        ),
        idle: dur(
            t.and_then(|t| t.idle.as_deref()),
            Duration::from_secs(60),
            &to,
            "idle",
            d,
        ),
    };
    let retries = count(raw.retries, 1, 0, 10, o, "retries", d);
    let tls = raw
        .tls
        .as_ref()
        .and_then(|t| crate::tls::upstream_tls(t, &o.at(&["tls"]), d));
    if d.len() > errors_before {
        return None;
    }
    Some(Upstream {
        name: name.to_owned(),
        backends,
        health_check,
        passive_health,
        timeouts,
        retries: u32::try_from(retries).unwrap_or(1),
        tls,
    })
}

/// Resolves `host:port` now; a name that does not resolve is a config error.
fn resolve(address: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(a) = address.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!(
            "invalid backend address {address:?}: expected host:port"
        ));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "invalid backend address {address:?}: expected host:port with a port from 0 to 65535"
        ));
    }
    let mut addrs: Vec<SocketAddr> = (host, port.parse::<u16>().unwrap_or(0))
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve backend {address:?}: {e}"))?
        .collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("backend {address:?} resolved to no address"));
    }
    Ok(addrs)
}

fn route(item: &Item<RawRoute>, pools: &HashSet<&str>, d: &mut Diagnostics) -> Option<Route> {
    let (raw, o) = (&item.raw, &item.origin);
    let errors_before = d.len();
    let matcher = route_match(&raw.matcher, &o.at(&["match"]), d);
    let action = match (&raw.upstream, &raw.direct_response) {
        (Some(_), Some(_)) => {
            d.error_at(
                o,
                &["direct_response"],
                "a route has either `upstream` or `direct_response`, not both",
            );
            None
        }
        (None, None) => {
            d.error(o, "a route needs `upstream` or `direct_response`");
            None
        }
        (Some(up), None) => {
            if !pools.contains(up.as_str()) {
                d.error_at(
                    o,
                    &["upstream"],
                    format!("unknown upstream `{up}`: define it under `upstreams`"),
                );
            }
            Some(RouteAction::Proxy {
                upstream: up.clone(),
            })
        }
        (None, Some(dr)) => {
            let dro = o.at(&["direct_response"]);
            if !(200..=599).contains(&dr.status) {
                d.error_at(
                    &dro,
                    &["status"],
                    format!("status {} is out of range: expected 200 to 599", dr.status),
                );
            }
            let headers = header_pairs(&dr.headers, &dro.at(&["headers"]), d);
            // A direct response is answered before any filter or header edit runs: a setting that
            // would silently do nothing is an error, not a surprise in production.
            let ignored = [
                ("request_headers", raw.request_headers.is_some()),
                ("response_headers", raw.response_headers.is_some()),
                ("auth", raw.auth.is_some()),
                ("rate_limit", raw.rate_limit.is_some()),
                ("waf", raw.waf.is_some()),
            ];
            for (key, set) in ignored {
                if set {
                    d.error_at(
                        o,
                        &[key],
                        format!("`{key}` has no effect on a `direct_response` route (it is answered before filters and header edits); put response headers under `direct_response.headers`"),
                    );
                }
            }
            Some(RouteAction::Direct(DirectResponse {
                status: u16::try_from(dr.status).unwrap_or(500),
                body: dr.body.clone(),
                headers,
            }))
        }
    };
    let request_headers = header_ops(raw.request_headers.as_ref(), &o.at(&["request_headers"]), d);
    let response_headers = header_ops(
        raw.response_headers.as_ref(),
        &o.at(&["response_headers"]),
        d,
    );
    let waf = raw
        .waf
        .as_ref()
        .map(|w| crate::waf::validate(w, &o.at(&["waf"]), d));
    let rate_limit = raw
        .rate_limit
        .as_ref()
        .map(|r| crate::ratelimit::validate(r, &o.at(&["rate_limit"]), d));
    let auth = raw
        .auth
        .as_ref()
        .map(|a| crate::auth::validate(a, &o.at(&["auth"]), d));
    if d.len() > errors_before {
        return None;
    }
    Some(Route {
        name: raw.name.clone(),
        matcher,
        priority: raw.priority.unwrap_or(0),
        action: action?,
        request_headers,
        response_headers,
        waf,
        rate_limit,
        auth,
    })
}

fn route_match(raw: &RawMatch, o: &Origin, d: &mut Diagnostics) -> RouteMatch {
    let mut hosts = Vec::new();
    for (i, h) in raw.hosts.iter().enumerate() {
        let lower = h.trim().to_ascii_lowercase();
        let (suffix, wildcard) = match lower.strip_prefix("*.") {
            Some(rest) => (rest.to_owned(), true),
            None => (lower.clone(), false),
        };
        let valid = !suffix.is_empty()
            && suffix.len() <= 253
            && suffix.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            d.error_at(
                o,
                &["hosts", &i.to_string()],
                format!("invalid host {h:?}: expected a DNS name or *.domain"),
            );
        } else if wildcard {
            hosts.push(HostMatch::Wildcard(format!(".{suffix}")));
        } else {
            hosts.push(HostMatch::Exact(suffix));
        }
    }
    let given = [
        raw.path_exact.is_some(),
        raw.path_prefix.is_some(),
        raw.path_regex.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        d.error(o, "use only one of path_exact, path_prefix and path_regex");
    }
    let path = if let Some(p) = &raw.path_exact {
        check_path(p, o, "path_exact", d);
        Some(PathMatch::Exact(p.clone()))
    } else if let Some(p) = &raw.path_prefix {
        check_path(p, o, "path_prefix", d);
        Some(PathMatch::Prefix(p.clone()))
    } else if let Some(r) = &raw.path_regex {
        anchored(r, o, "path_regex", d).map(PathMatch::Regex)
    } else {
        None
    };
    let mut methods = Vec::new();
    for (i, m) in raw.methods.iter().enumerate() {
        if m.is_empty() || m.len() > 32 || !m.chars().all(|c| c.is_ascii_uppercase()) {
            d.error_at(
                o,
                &["methods", &i.to_string()],
                format!("invalid method {m:?}: expected an uppercase token such as GET"),
            );
        } else {
            methods.push(m.clone());
        }
    }
    let mut headers = Vec::new();
    for (i, h) in raw.headers.iter().enumerate() {
        let ho = o.at(&["headers", &i.to_string()]);
        if !is_token(&h.name) {
            d.error_at(&ho, &["name"], format!("invalid header name {:?}", h.name));
        }
        let condition = match (&h.value, &h.regex, h.present) {
            (Some(v), None, None) => Some(HeaderCondition::Equals(v.clone())),
            (None, Some(r), None) => anchored(r, &ho, "regex", d).map(HeaderCondition::Matches),
            (None, None, Some(p)) => Some(HeaderCondition::Present(p)),
            (None, None, None) => Some(HeaderCondition::Present(true)),
            _ => {
                d.error(&ho, "use only one of value, regex and present");
                None
            }
        };
        if let Some(condition) = condition {
            headers.push(HeaderMatch {
                name: h.name.to_ascii_lowercase(),
                condition,
            });
        }
    }
    RouteMatch {
        hosts,
        path,
        methods,
        headers,
    }
}

fn check_path(p: &str, o: &Origin, key: &str, d: &mut Diagnostics) {
    if !p.starts_with('/')
        || p.chars()
            .any(|c| c.is_ascii_control() || c == ' ' || c == '?' || c == '#')
    {
        d.error_at(
            o,
            &[key],
            format!("invalid path {p:?}: expected an absolute path without query, e.g. /api"),
        );
    }
}

fn anchored(r: &str, o: &Origin, key: &str, d: &mut Diagnostics) -> Option<Regex> {
    match regex::RegexBuilder::new(&format!("^(?:{r})$"))
        .size_limit(1 << 20)
        .build()
    {
        Ok(re) => Some(re),
        Err(e) => {
            let msg = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_owned();
            d.error_at(
                o,
                &[key],
                format!("invalid regular expression {r:?}: {msg}"),
            );
            None
        }
    }
}

/// RFC 9110 token characters (header names, methods).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_header_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
}

fn header_pairs(
    map: &BTreeMap<String, String>,
    o: &Origin,
    d: &mut Diagnostics,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in map {
        if !is_token(name) {
            d.error_at(o, &[name], format!("invalid header name {name:?}"));
        } else if !is_header_value(value) {
            d.error_at(
                o,
                &[name],
                "invalid header value: control characters are not allowed",
            );
        } else {
            out.push((name.clone(), value.clone()));
        }
    }
    out
}

fn header_ops(raw: Option<&RawHeaderOps>, o: &Origin, d: &mut Diagnostics) -> HeaderOps {
    let Some(raw) = raw else {
        return HeaderOps::default();
    };
    let mut remove = Vec::new();
    for (i, name) in raw.remove.iter().enumerate() {
        if is_token(name) {
            remove.push(name.to_ascii_lowercase());
        } else {
            d.error_at(
                o,
                &["remove", &i.to_string()],
                format!("invalid header name {name:?}"),
            );
        }
    }
    HeaderOps {
        set: header_pairs(&raw.set, &o.at(&["set"]), d),
        add: header_pairs(&raw.add, &o.at(&["add"]), d),
        remove,
    }
}
