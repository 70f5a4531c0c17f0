//! The route table: routes in the config's documented order, indexed by host so a lookup does
//! not scan routes that cannot match.

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

/// Routes with a host index. Lookup returns the first route in config order that matches.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact_hosts: HashMap<String, Vec<usize>>,
    wildcard: Vec<(String, usize)>,
    any_host: Vec<usize>,
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
                    HostMatch::Wildcard(suffix) => table.wildcard.push((suffix.clone(), i)),
                }
            }
        }
        for list in table.exact_hosts.values_mut() {
            list.dedup();
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
        let exact: &[usize] = q
            .host
            .and_then(|h| self.exact_hosts.get(h))
            .map_or(&[], Vec::as_slice);
        let mut wild: Vec<usize> = Vec::new();
        if let Some(host) = q.host {
            for (suffix, i) in &self.wildcard {
                if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                    wild.push(*i);
                }
            }
        }
        // Merge the three ascending candidate lists, trying each index in config order.
        let (mut a, mut b, mut c) = (0, 0, 0);
        loop {
            let next = [exact.get(a), wild.get(b), self.any_host.get(c)]
                .into_iter()
                .flatten()
                .min()
                .copied()?;
            if exact.get(a) == Some(&next) {
                a += 1;
            }
            if wild.get(b) == Some(&next) {
                b += 1;
            }
            if self.any_host.get(c) == Some(&next) {
                c += 1;
            }
            if let Some(route) = self.routes.get(next) {
                if matches_rest(&route.matcher, q) {
                    return Some(next);
                }
            }
        }
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
