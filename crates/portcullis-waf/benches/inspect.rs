//! Inspection cost of two typical API requests with the default spec (block, paranoia 1):
//! a POST with 10 query parameters and a 2 KB JSON body through `check_head` + `check_body`,
//! and a browser-driven GET without a body (4 query parameters, real User-Agent, bearer JWT,
//! cookies) through `check_head` alone, which is what most production requests cost. The
//! allocator is the gateway's (mimalloc), so allocation costs what it costs in production.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod requests;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_config::WafSpec;
use portcullis_waf::Waf;

fn typical(c: &mut Criterion) {
    let waf = Waf::from_spec(&WafSpec::default()).unwrap();
    let post = requests::post();
    let req = requests::view("POST", "/api/v1/orders", post.query, &post.headers);
    assert!(post.body.len() > 2000, "{}", post.body.len());
    c.bench_function("typical_api_request", |b| {
        b.iter(|| {
            let head = waf.check_head(&req).unwrap();
            waf.check_body(&req, &head, post.body.as_bytes(), false)
                .unwrap()
        });
    });
}

fn typical_get(c: &mut Criterion) {
    let waf = Waf::from_spec(&WafSpec::default()).unwrap();
    let headers = requests::get_headers();
    let req = requests::view("GET", requests::GET_PATH, requests::GET_QUERY, &headers);
    c.bench_function("typical_get_head", |b| {
        b.iter(|| waf.check_head(&req).unwrap());
    });
}

criterion_group!(benches, typical, typical_get);
criterion_main!(benches);
