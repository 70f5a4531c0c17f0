//! Route lookup with 10 000 routes in three realistic shapes, and path normalisation.
//!
//! - `hosts10k`: 10 000 routes, one exact host each (`h00000.example.com` ...), like a
//!   multi-tenant gateway.
//! - `prefixes10k`: one host with 10 000 `path_prefix` routes (`/svc0000` ...), like one big
//!   ingress.
//! - `mixed10k`: 2 500 exact hosts with a prefix each, 2 500 regex paths on one host, 2 500
//!   wildcard hosts, 2 500 host-less exact paths with methods.
//!
//! Each shape is looked up near the start, the middle and the end of the table (match order, after
//! the config's sort) and with a request no route matches. The config goes through
//! `portcullis_config::parse_str`, so the table is sorted as a loaded config is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portcullis_proxy::{normalize_path, RouteQuery, RouteTable};

const N: usize = 10_000;

fn table(routes: &str) -> RouteTable {
    let yaml = format!(
        "listeners: [{{ name: w, address: \"127.0.0.1:1\" }}]\nupstreams: {{ app: {{ backends: [{{ address: \"127.0.0.1:2\" }}] }} }}\nroutes:\n{routes}"
    );
    let cfg = portcullis_config::parse_str("bench.yaml", &yaml).unwrap();
    RouteTable::new(cfg.routes)
}

fn hosts10k() -> RouteTable {
    let mut r = String::new();
    for i in 0..N {
        writeln!(
            r,
            "  - {{ name: r{i}, upstream: app, match: {{ hosts: [h{i:05}.example.com], path_prefix: /api }} }}"
        )
        .unwrap();
    }
    table(&r)
}

fn prefixes10k() -> RouteTable {
    let mut r = String::new();
    for i in 0..N {
        writeln!(
            r,
            "  - {{ name: r{i}, upstream: app, match: {{ hosts: [api.example.com], path_prefix: /svc{i:04} }} }}"
        )
        .unwrap();
    }
    table(&r)
}

fn mixed10k() -> RouteTable {
    let q = N / 4;
    let mut r = String::new();
    for i in 0..q {
        writeln!(r, "  - {{ name: e{i}, upstream: app, match: {{ hosts: [t{i}.example.com], path_prefix: /api }} }}").unwrap();
        writeln!(r, "  - {{ name: x{i}, upstream: app, match: {{ hosts: [re.example.com], path_regex: '/r{i}/[0-9]+' }} }}").unwrap();
        writeln!(r, "  - {{ name: w{i}, upstream: app, match: {{ hosts: ['*.w{i}.example.net'], path_prefix: /v1 }} }}").unwrap();
        writeln!(r, "  - {{ name: s{i}, upstream: app, match: {{ path_exact: /static/{i}/index.html, methods: [GET, HEAD] }} }}").unwrap();
    }
    table(&r)
}

/// Looks each request up once to check it finds the expected route, then measures it.
fn lookups(
    c: &mut Criterion,
    shape: &str,
    t: &RouteTable,
    cases: &[(&str, Option<&str>, &str, Option<&str>)],
) {
    let headers = http::HeaderMap::new();
    let mut group = c.benchmark_group(format!("route_lookup/{shape}"));
    for (case, host, path, want) in cases {
        let q = RouteQuery {
            host: *host,
            path,
            method: "GET",
            headers: &headers,
        };
        let got = t.lookup(&q).map(|i| t.routes()[i].name.as_str());
        assert_eq!(got, *want, "{shape}/{case}");
        group.bench_with_input(BenchmarkId::from_parameter(case), &q, |b, q| {
            b.iter(|| t.lookup(q))
        });
    }
    group.finish();
}

fn route_lookup(c: &mut Criterion) {
    let t = hosts10k();
    lookups(
        c,
        "hosts10k",
        &t,
        &[
            (
                "start",
                Some("h00000.example.com"),
                "/api/orders/1",
                Some("r0"),
            ),
            (
                "middle",
                Some("h05000.example.com"),
                "/api/orders/1",
                Some("r5000"),
            ),
            (
                "end",
                Some("h09999.example.com"),
                "/api/orders/1",
                Some("r9999"),
            ),
            ("miss", Some("nope.example.com"), "/api/orders/1", None),
        ],
    );
    let t = prefixes10k();
    lookups(
        c,
        "prefixes10k",
        &t,
        &[
            (
                "start",
                Some("api.example.com"),
                "/svc0000/items/42",
                Some("r0"),
            ),
            (
                "middle",
                Some("api.example.com"),
                "/svc5000/items/42",
                Some("r5000"),
            ),
            (
                "end",
                Some("api.example.com"),
                "/svc9999/items/42",
                Some("r9999"),
            ),
            ("miss", Some("api.example.com"), "/nosuch/items/42", None),
        ],
    );
    let t = mixed10k();
    lookups(
        c,
        "mixed10k",
        &t,
        &[
            ("start", Some("t0.example.com"), "/api/orders", Some("e0")),
            (
                "middle",
                Some("a.w1250.example.net"),
                "/v1/orders",
                Some("w1250"),
            ),
            ("end", None, "/static/2499/index.html", Some("s2499")),
            (
                "regex_last",
                Some("re.example.com"),
                "/r2499/7",
                Some("x2499"),
            ),
            ("miss", Some("nope.example.org"), "/nothing/here", None),
        ],
    );
}

fn table_build(c: &mut Criterion) {
    let t = prefixes10k();
    let routes = t.routes().to_vec();
    c.bench_function("route_table_build/prefixes10k", |b| {
        b.iter(|| RouteTable::new(routes.clone()));
    });
}

fn normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_path");
    for (case, path) in [
        ("typical", "/api/v1/orders/12345/items"),
        ("dirty", "/api//v1/./orders/%7Euser/../12345/items"),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(case), path, |b, p| {
            b.iter(|| normalize_path(std::hint::black_box(p)).len());
        });
    }
    group.finish();
}

criterion_group!(benches, route_lookup, table_build, normalize);
criterion_main!(benches);
