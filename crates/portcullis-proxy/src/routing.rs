//! The route table: routes in the config's documented order, indexed by host, exact path and
//! first path segment of a prefix, so a lookup does not scan routes that cannot match.
//!
//! The index only narrows the candidates; every candidate is still checked in full, and the
//! candidate lists are merged in table order, so the first matching route wins exactly as in a
//! linear scan over all routes (a property test compares the two on generated route sets).

use std::borrow::Cow;
use std::collections::HashMap;

use portcullis_config::{HeaderCondition, HostMatch, PathMatch, Route, RouteMatch};

/// What a lookup needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    /// Lowercased host without port.
    pub host: Option<&'a str>,
    /// Normalised path (see [`normalize_path`]).
    pub path: &'a str,
    /// Method.
    pub method: &'a str,
    /// Request headers.
    pub headers: &'a http::HeaderMap,
}

/// Routes with a host index and, per host, a first-path-segment index. Lookup returns the first
/// route in table order that matches.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact_hosts: HashMap<String, PathIndex>,
    /// Wildcard suffixes (`.example.com`), looked up by every dot-suffix of the request host.
    wildcard: HashMap<String, PathIndex>,
    /// Wildcard suffixes without a leading dot (not produced by the config loader): checked by
    /// `ends_with` on every lookup, so a hand-built table still matches as documented.
    wildcard_odd: Vec<(String, PathIndex)>,
    any_host: PathIndex,
}

/// Groups below this size are not split by path: scanning a few routes is cheaper than hashing
/// the path.
const SPLIT_AT: usize = 8;

/// The routes of one host group (ascending table indices), split by their `path_exact` and by
/// the first segment of their `path_prefix`.
#[derive(Debug, Default)]
struct PathIndex {
    /// `path_exact` routes by their path.
    exact: HashMap<Box<str>, Vec<usize>>,
    /// `path_prefix` routes that can only match when the request's first path segment is the key
    /// (`/api/x`, `/api/` and `/api` are under `api`).
    by_segment: HashMap<Box<str>, Vec<usize>>,
    /// Routes to check whatever the path: regex paths, no path, `path_prefix: /`, small groups.
    always: Vec<usize>,
}

/// Where [`PathIndex`] files a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKey<'a> {
    /// Only a request with exactly this path can match.
    Exact(&'a str),
    /// Only a request whose first path segment is this can match.
    Segment(&'a str),
    /// Any path may match.
    Any,
}

impl PathIndex {
    fn push(&mut self, i: usize) {
        // Same route listed twice in one group (`hosts: [a, a]`): keep one entry.
        if self.always.last() != Some(&i) {
            self.always.push(i);
        }
    }

    /// Moves routes out of `always` into the path maps, once the group is complete.
    fn split(&mut self, routes: &[Route]) {
        if self.always.len() < SPLIT_AT {
            return;
        }
        let mut always = Vec::new();
        for &i in &self.always {
            match routes
                .get(i)
                .map_or(PathKey::Any, |r| path_key(r.matcher.path.as_ref()))
            {
                PathKey::Exact(p) => self.exact.entry(p.into()).or_default().push(i),
                PathKey::Segment(seg) => self.by_segment.entry(seg.into()).or_default().push(i),
                PathKey::Any => always.push(i),
            }
        }
        self.always = always;
        self.always.shrink_to_fit();
    }

    /// Pushes this group's candidate lists for a request with `path`, whose first segment is
    /// `seg`.
    fn candidates<'a>(&'a self, path: &str, seg: Option<&str>, out: &mut Lists<'a>) {
        out.push(&self.always);
        if self.exact.is_empty() && self.by_segment.is_empty() {
            return; // not split (a small group), or nothing but `Any` routes: no hashing
        }
        if let Some(list) = seg.and_then(|s| self.by_segment.get(s)) {
            out.push(list);
        }
        if let Some(list) = self.exact.get(path) {
            out.push(list);
        }
    }
}

/// What a route's path condition pins. A request can only satisfy `path_prefix: /a/b` (or `/a`,
/// `/a/`) if its own first segment is `a`: prefixes match at a segment boundary, so `/a` cannot
/// match `/ab`.
fn path_key(path: Option<&PathMatch>) -> PathKey<'_> {
    match path {
        Some(PathMatch::Exact(p)) => PathKey::Exact(p),
        // `/` matches every path; anything else starting with `/` pins its first segment
        // (`/a` matches `/a` and `/a/..`; `/a/` and `/a/b` contain the boundary themselves).
        Some(PathMatch::Prefix(p)) if p != "/" => {
            first_segment(p).map_or(PathKey::Any, PathKey::Segment)
        }
        Some(PathMatch::Prefix(_) | PathMatch::Regex(_)) | None => PathKey::Any,
    }
}

/// `/api/v1` -> `api`, `/` -> ``, `api` -> None (a path not starting with `/`).
fn first_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    Some(rest.split_once('/').map_or(rest, |(seg, _)| seg))
}

/// The candidate lists of one lookup: a handful, so kept inline.
struct Lists<'a> {
    inline: [&'a [usize]; 8],
    len: usize,
    spill: Vec<&'a [usize]>,
}

impl<'a> Lists<'a> {
    fn new() -> Self {
        Lists {
            inline: [&[]; 8],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, list: &'a [usize]) {
        if list.is_empty() {
            return;
        }
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = list;
            self.len += 1;
        } else {
            self.spill.push(list);
        }
    }

    /// Removes and returns the smallest head of all lists (each list ascending), skipping the
    /// same index in other lists: a route reachable through two hosts is tried once.
    fn pop_min(&mut self) -> Option<usize> {
        let inline = self.inline.get_mut(..self.len).unwrap_or_default();
        let min = inline
            .iter()
            .chain(self.spill.iter())
            .filter_map(|l| l.first())
            .min()
            .copied()?;
        for l in inline.iter_mut().chain(self.spill.iter_mut()) {
            if l.first() == Some(&min) {
                *l = l.get(1..).unwrap_or_default();
            }
        }
        Some(min)
    }
}

impl RouteTable {
    /// Builds the index; `routes` must already be in match order.
    #[must_use]
    pub fn new(routes: Vec<Route>) -> Self {
        let mut table = RouteTable {
            routes,
            ..Default::default()
        };
        for (i, r) in table.routes.iter().enumerate() {
            if r.matcher.hosts.is_empty() {
                table.any_host.push(i);
            }
            for h in &r.matcher.hosts {
                match h {
                    HostMatch::Exact(name) => {
                        table.exact_hosts.entry(name.clone()).or_default().push(i)
                    }
                    HostMatch::Wildcard(suffix) if suffix.starts_with('.') => {
                        table.wildcard.entry(suffix.clone()).or_default().push(i);
                    }
                    HostMatch::Wildcard(suffix) => {
                        match table.wildcard_odd.iter_mut().find(|(s, _)| s == suffix) {
                            Some((_, index)) => index.push(i),
                            None => {
                                let mut index = PathIndex::default();
                                index.push(i);
                                table.wildcard_odd.push((suffix.clone(), index));
                            }
                        }
                    }
                }
            }
        }
        let routes = &table.routes;
        for index in table
            .exact_hosts
            .values_mut()
            .chain(table.wildcard.values_mut())
            .chain(table.wildcard_odd.iter_mut().map(|(_, index)| index))
            .chain(std::iter::once(&mut table.any_host))
        {
            index.split(routes);
        }
        table
    }

    /// The routes in match order.
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The index of the first matching route.
    #[must_use]
    pub fn lookup(&self, q: &RouteQuery<'_>) -> Option<usize> {
        let seg = first_segment(q.path);
        let mut lists = Lists::new();
        self.any_host.candidates(q.path, seg, &mut lists);
        if let Some(host) = q.host {
            if let Some(index) = self.exact_hosts.get(host) {
                index.candidates(q.path, seg, &mut lists);
            }
            if !self.wildcard.is_empty() {
                // `*.example.com` (stored `.example.com`) matches a host with at least one label
                // before the suffix: every suffix starting at a dot after position 0.
                for (at, _) in host.match_indices('.').filter(|(at, _)| *at > 0) {
                    if let Some(index) = host.get(at..).and_then(|s| self.wildcard.get(s)) {
                        index.candidates(q.path, seg, &mut lists);
                    }
                }
            }
            for (suffix, index) in &self.wildcard_odd {
                if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                    index.candidates(q.path, seg, &mut lists);
                }
            }
        }
        while let Some(i) = lists.pop_min() {
            if let Some(route) = self.routes.get(i) {
                if matches_rest(&route.matcher, q) {
                    return Some(i);
                }
            }
        }
        None
    }
}

fn matches_rest(m: &RouteMatch, q: &RouteQuery<'_>) -> bool {
    if !m.methods.is_empty() && !m.methods.iter().any(|x| x == q.method) {
        return false;
    }
    let path_ok = match &m.path {
        None => true,
        Some(PathMatch::Exact(p)) => q.path == p,
        Some(PathMatch::Prefix(p)) => prefix_matches(q.path, p),
        Some(PathMatch::Regex(re)) => re.is_match(q.path),
    };
    if !path_ok {
        return false;
    }
    m.headers.iter().all(|h| {
        let value = q.headers.get(h.name.as_str());
        match &h.condition {
            HeaderCondition::Present(want) => value.is_some() == *want,
            HeaderCondition::Equals(v) => value.is_some_and(|x| x.as_bytes() == v.as_bytes()),
            HeaderCondition::Matches(re) => value
                .and_then(|x| x.to_str().ok())
                .is_some_and(|x| re.is_match(x)),
        }
    })
}

/// `/api` matches `/api`, `/api/` and `/api/x` but not `/apix`; `/api/` matches `/api/x`.
fn prefix_matches(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

/// Normalises a request path for matching: decodes percent-encoded unreserved characters,
/// merges repeated slashes and resolves `.` and `..` segments (never above the root), so
/// `/%61dmin/../admin//x` and `/admin/x` match the same route. Other escapes (such as `%2F`)
/// stay encoded. The request is forwarded with its original path.
#[must_use]
pub fn normalize_path(raw: &str) -> Cow<'_, str> {
    let needs_work =
        raw.contains('%') || raw.contains("//") || raw.contains("/.") || !raw.starts_with('/');
    if !needs_work {
        return Cow::Borrowed(raw);
    }
    let decoded = decode_unreserved(raw);
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty()
        || (decoded.ends_with('/') && !segments.is_empty())
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
    {
        out.push('/');
    }
    Cow::Owned(out)
}

fn decode_unreserved(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                let c = u8::try_from(h * 16 + l).unwrap_or(0);
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(c));
                } else {
                    out.push('%');
                    out.push(
                        char::from(bytes.get(i + 1).copied().unwrap_or(b'0')).to_ascii_uppercase(),
                    );
                    out.push(
                        char::from(bytes.get(i + 2).copied().unwrap_or(b'0')).to_ascii_uppercase(),
                    );
                }
                i += 3;
                continue;
            }
        }
        out.push(char::from(b));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &str) -> RouteTable {
        let cfg = portcullis_config::parse_str(
            "t.yaml",
            &format!(
                "listeners: [{{ name: w, address: \"127.0.0.1:1\" }}]\nupstreams: {{ app: {{ backends: [{{ address: \"127.0.0.1:2\" }}] }} }}\nroutes:\n{routes}"
            ),
        )
        .unwrap();
        RouteTable::new(cfg.routes)
    }

    fn find<'a>(
        t: &'a RouteTable,
        host: Option<&str>,
        path: &str,
        method: &str,
    ) -> Option<&'a str> {
        let headers = http::HeaderMap::new();
        let norm = normalize_path(path);
        let q = RouteQuery {
            host,
            path: &norm,
            method,
            headers: &headers,
        };
        t.lookup(&q).map(|i| t.routes()[i].name.as_str())
    }

    #[test]
    fn picks_the_most_specific_route_in_documented_order() {
        let t = table(
            "  - { name: any, upstream: app }\n  - { name: api, upstream: app, match: { path_prefix: /api } }\n  - { name: host, upstream: app, match: { hosts: [a.example.com] } }\n  - { name: wild, upstream: app, match: { hosts: ['*.example.com'], path_prefix: /w } }\n  - { name: post, upstream: app, match: { path_exact: /api/x, methods: [POST] } }\n",
        );
        assert_eq!(find(&t, None, "/", "GET"), Some("any"));
        assert_eq!(find(&t, None, "/api/v1", "GET"), Some("api"));
        assert_eq!(find(&t, None, "/apix", "GET"), Some("any"));
        assert_eq!(find(&t, Some("a.example.com"), "/api", "GET"), Some("host"));
        assert_eq!(find(&t, Some("b.example.com"), "/w/1", "GET"), Some("wild"));
        assert_eq!(find(&t, Some("example.com"), "/w/1", "GET"), Some("any"));
        assert_eq!(find(&t, None, "/api/x", "POST"), Some("post"));
        assert_eq!(find(&t, None, "/api/x", "GET"), Some("api"));
    }

    #[test]
    fn encoded_and_dotted_paths_cannot_dodge_a_route() {
        let t = table("  - { name: admin, upstream: app, match: { path_prefix: /admin } }\n  - { name: rest, upstream: app }\n");
        for p in [
            "/%61dmin/x",
            "//admin/x",
            "/x/../admin/x",
            "/./admin",
            "/admin/./x",
        ] {
            assert_eq!(find(&t, None, p, "GET"), Some("admin"), "{p}");
        }
        assert_eq!(find(&t, None, "/admin%2Fx", "GET"), Some("rest"));
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("/a/b"), "/a/b");
        assert_eq!(normalize_path("/a/../../b/"), "/b/");
        assert_eq!(normalize_path("/.."), "/");
        assert_eq!(normalize_path("/a/%7e%2f"), "/a/~%2F");
        assert_eq!(normalize_path("/a/."), "/a/");
    }

    #[test]
    fn a_big_host_group_still_picks_the_first_route_in_order() {
        let mut routes = String::new();
        for i in 0..50 {
            routes.push_str(&format!("  - {{ name: p{i}, upstream: app, match: {{ hosts: [api.example.com], path_prefix: /svc{i:02} }} }}\n"));
        }
        routes.push_str("  - { name: re, upstream: app, match: { hosts: [api.example.com], path_regex: '/svc.*' } }\n");
        routes.push_str("  - { name: wild, upstream: app, match: { hosts: ['*.example.com'], path_prefix: /svc07 } }\n");
        routes.push_str("  - { name: rest, upstream: app }\n");
        let t = table(&routes);
        let api = Some("api.example.com");
        assert_eq!(find(&t, api, "/svc07/x", "GET"), Some("p7"));
        assert_eq!(find(&t, api, "/svc49", "GET"), Some("p49"));
        assert_eq!(find(&t, api, "/svc077", "GET"), Some("re"));
        assert_eq!(
            find(&t, Some("b.example.com"), "/svc07/x", "GET"),
            Some("wild")
        );
        assert_eq!(find(&t, api, "/other", "GET"), Some("rest"));
        assert_eq!(find(&t, None, "/svc07", "GET"), Some("rest"));
    }

    /// A deterministic generator (SplitMix64): the same route sets on every run.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        /// A path over a few segments that share prefixes (`ap`, `api`, `api2`), sometimes with
        /// a trailing slash.
        fn path(&mut self) -> String {
            let mut p = String::new();
            for _ in 0..self.below(4) {
                p.push('/');
                p.push_str(self.pick(&["api", "ap", "api2", "v1", "x", ""]));
            }
            if p.is_empty() || self.below(4) == 0 {
                p.push('/');
            }
            p
        }
    }

    fn generated_route(g: &mut Gen, i: usize) -> Route {
        let mut hosts = Vec::new();
        for _ in 0..[0, 0, 1, 1, 2][g.below(5)] {
            hosts.push(match g.below(3) {
                0 => HostMatch::Wildcard(
                    g.pick(&[".example.com", ".a.example.com", ".org", "example.com"])
                        .to_owned(),
                ),
                _ => HostMatch::Exact(
                    g.pick(&[
                        "a.example.com",
                        "b.example.com",
                        "example.com",
                        "x.a.example.com",
                        "other.org",
                    ])
                    .to_owned(),
                ),
            });
        }
        let path = match g.below(8) {
            0 => None,
            1 | 2 => Some(PathMatch::Exact(g.path())),
            3 => Some(PathMatch::Regex(
                regex::Regex::new(&format!(
                    "^(?:{})$",
                    g.pick(&["/api/.*", "/v[0-9]/x", "/ap.*", "/api", "[^/]*"])
                ))
                .unwrap(),
            )),
            _ => Some(PathMatch::Prefix(g.path())),
        };
        let methods = match g.below(4) {
            0 => vec!["POST".to_owned()],
            1 => vec!["GET".to_owned(), "POST".to_owned()],
            _ => Vec::new(),
        };
        let headers = match g.below(6) {
            0 => vec![portcullis_config::HeaderMatch {
                name: "x-canary".into(),
                condition: HeaderCondition::Equals("1".into()),
            }],
            1 => vec![portcullis_config::HeaderMatch {
                name: "x-canary".into(),
                condition: HeaderCondition::Present(false),
            }],
            2 => vec![portcullis_config::HeaderMatch {
                name: "x-canary".into(),
                condition: HeaderCondition::Matches(regex::Regex::new("^(?:[0-9]+)$").unwrap()),
            }],
            _ => Vec::new(),
        };
        Route {
            name: format!("r{i}"),
            matcher: RouteMatch {
                hosts,
                path,
                methods,
                headers,
            },
            priority: 0,
            action: portcullis_config::RouteAction::Proxy {
                upstream: "app".into(),
            },
            request_headers: portcullis_config::HeaderOps::default(),
            response_headers: portcullis_config::HeaderOps::default(),
            waf: None,
            rate_limit: None,
            auth: None,
        }
    }

    /// The definition: the first route, in table order, whose every condition holds.
    fn linear_lookup(routes: &[Route], q: &RouteQuery<'_>) -> Option<usize> {
        routes.iter().position(|r| {
            let host_ok = r.matcher.hosts.is_empty()
                || q.host.is_some_and(|h| {
                    r.matcher.hosts.iter().any(|m| match m {
                        HostMatch::Exact(name) => h == name,
                        HostMatch::Wildcard(s) => h.len() > s.len() && h.ends_with(s.as_str()),
                    })
                });
            host_ok && matches_rest(&r.matcher, q)
        })
    }

    #[test]
    fn indexed_lookup_agrees_with_a_linear_scan_on_generated_route_sets() {
        let mut g = Gen(0x5eed_0009);
        let hosts = [
            None,
            Some("a.example.com"),
            Some("b.example.com"),
            Some("example.com"),
            Some("x.a.example.com"),
            Some("y.x.a.example.com"),
            Some("other.org"),
            Some("aexample.com"),
            Some(".example.com"),
            Some("a..example.com"),
            Some("nope.net"),
        ];
        let mut header_sets = vec![http::HeaderMap::new(); 3];
        header_sets[1].insert("x-canary", http::HeaderValue::from_static("1"));
        header_sets[2].insert("x-canary", http::HeaderValue::from_static("abc"));
        let (mut checked, mut matched, mut by_segment) = (0, 0, 0);
        for set in 0..400 {
            let routes: Vec<Route> = (0..g.below(120))
                .map(|i| generated_route(&mut g, i))
                .collect();
            let t = RouteTable::new(routes);
            for _ in 0..150 {
                let path = match g.below(8) {
                    0 => g
                        .pick(&["", "api", "//api", "/api//x", "/apix", "*"])
                        .to_owned(),
                    _ => g.path(),
                };
                let q = RouteQuery {
                    host: hosts[g.below(hosts.len())],
                    path: &path,
                    method: g.pick(&["GET", "POST", "PUT"]),
                    headers: &header_sets[g.below(3)],
                };
                let want = linear_lookup(t.routes(), &q);
                assert_eq!(t.lookup(&q), want, "set {set}: {q:?}");
                checked += 1;
                matched += usize::from(want.is_some());
                by_segment += usize::from(want.is_some_and(|i| {
                    path_key(t.routes()[i].matcher.path.as_ref()) != PathKey::Any
                }));
            }
        }
        // Hits, misses and wins by segment-indexed routes all occur: the comparison is not vacuous.
        assert!(
            matched > checked / 10 && matched < checked * 19 / 20 && by_segment > checked / 20,
            "{matched} matched, {by_segment} by an indexed path, of {checked}"
        );
    }

    #[test]
    fn header_conditions_must_all_hold() {
        let t = table("  - { name: canary, upstream: app, match: { headers: [{ name: x-canary, value: '1' }] } }\n  - { name: rest, upstream: app }\n");
        let mut headers = http::HeaderMap::new();
        let q = RouteQuery {
            host: None,
            path: "/",
            method: "GET",
            headers: &headers,
        };
        assert_eq!(t.lookup(&q), Some(1));
        headers.insert("x-canary", http::HeaderValue::from_static("1"));
        let q = RouteQuery {
            host: None,
            path: "/",
            method: "GET",
            headers: &headers,
        };
        assert_eq!(t.lookup(&q), Some(0));
    }
}
