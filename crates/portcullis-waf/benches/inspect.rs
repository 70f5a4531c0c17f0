//! Inspection cost of a typical API request: 10 query parameters and a 2 KB JSON body, through
//! `check_head` + `check_body` with the default spec (block, paranoia 1). The allocator is the
//! gateway's (mimalloc), so allocation costs what it costs in production.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use portcullis_config::WafSpec;
use portcullis_core::RequestView;
use portcullis_waf::Waf;

fn typical(c: &mut Criterion) {
    let waf = Waf::from_spec(&WafSpec::default()).unwrap();
    let query = "page=2&per_page=50&sort=created_at&order=desc&status=active&q=blue%20widgets\
                 &category=hardware&min_price=10&max_price=250&lang=en-GB";
    let mut items = Vec::new();
    for i in 0..15 {
        items.push(format!(
            r#"{{"sku":"SKU-{i:05}","name":"Widget number {i}","qty":{i},"price":19.99,"tags":["blue","metal"],"note":"Deliver to the back door, ring twice"}}"#
        ));
    }
    let body = format!(
        r#"{{"customer":{{"id":"c-123","email":"mary@example.com"}},"items":[{}]}}"#,
        items.join(",")
    );
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from(body.len()));
    headers.insert(
        "user-agent",
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"),
    );
    headers.insert("accept", HeaderValue::from_static("application/json"));
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer abc.def.ghi"),
    );
    let req = RequestView {
        method: "POST",
        path: "/api/v1/orders",
        query: Some(query),
        host: Some("api.example.com"),
        headers: &headers,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: "orders",
    };
    assert!(body.len() > 2000, "{}", body.len());
    c.bench_function("typical_api_request", |b| {
        b.iter(|| {
            let head = waf.check_head(&req).unwrap();
            waf.check_body(&req, &head, body.as_bytes(), false).unwrap()
        });
    });
}

criterion_group!(benches, typical);
criterion_main!(benches);
