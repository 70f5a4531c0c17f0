//! Per-request inspection cost without a benchmark harness: the request of
//! `benches/inspect.rs` through `check_head` + `check_body`, N times (`inspect_loop N [RUNS]`).
//! Prints the minimum, over RUNS runs, of the thread's own CPU time per request
//! (`/proc/thread-self/schedstat`), which a busy shared machine disturbs far less than wall
//! time. Under `valgrind --tool=callgrind`, the instruction count of `inspect_loop N 1` minus
//! that of `inspect_loop 0 1` is the cost of N requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderValue};
use portcullis_config::WafSpec;
use portcullis_core::RequestView;
use portcullis_waf::Waf;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(3000, |a| a.parse().unwrap());
    let runs: u64 = args.next().map_or(7, |a| a.parse().unwrap());
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
    let mut best = u64::MAX;
    for _ in 0..runs {
        let start = thread_cpu_ns();
        for _ in 0..n {
            let head = waf.check_head(std::hint::black_box(&req)).unwrap();
            let f = waf.check_body(&req, &head, body.as_bytes(), false).unwrap();
            std::hint::black_box(f);
        }
        best = best.min(thread_cpu_ns() - start);
    }
    if n > 0 {
        println!(
            "{:.1} us per request (min of {runs} x {n})",
            best as f64 / n as f64 / 1000.0
        );
    }
}
