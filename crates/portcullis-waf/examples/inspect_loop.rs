//! Per-request inspection cost without a benchmark harness: a request of `benches/inspect.rs`,
//! N times (`inspect_loop N [RUNS] [post|get]`): `post` (the default) is the POST with a 2 KB
//! JSON body through `check_head` + `check_body`, `get` the browser-driven GET through
//! `check_head` alone. Prints the minimum, over RUNS runs, of the thread's own CPU time per
//! request (`/proc/thread-self/schedstat`), which a busy shared machine disturbs far less than
//! wall time. Under `valgrind --tool=callgrind`, the instruction count of `inspect_loop N 1`
//! minus that of `inspect_loop 0 1` is the cost of N requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/requests/mod.rs"]
mod requests;

use portcullis_config::WafSpec;
use portcullis_waf::Waf;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Minimum over `runs` of the thread CPU nanoseconds that `n` calls of `f` take.
fn min_cpu_ns(n: u64, runs: u64, mut f: impl FnMut()) -> u64 {
    let mut best = u64::MAX;
    for _ in 0..runs {
        let start = thread_cpu_ns();
        for _ in 0..n {
            f();
        }
        best = best.min(thread_cpu_ns() - start);
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(3000, |a| a.parse().unwrap());
    let runs: u64 = args.next().map_or(7, |a| a.parse().unwrap());
    let mode = args.next().unwrap_or_else(|| "post".to_owned());
    let waf = Waf::from_spec(&WafSpec::default()).unwrap();
    let best = match mode.as_str() {
        "post" => {
            let post = requests::post();
            let req = requests::view("POST", "/api/v1/orders", post.query, &post.headers);
            min_cpu_ns(n, runs, || {
                let head = waf.check_head(std::hint::black_box(&req)).unwrap();
                let f = waf
                    .check_body(&req, &head, post.body.as_bytes(), false)
                    .unwrap();
                std::hint::black_box(f);
            })
        }
        "get" => {
            let headers = requests::get_headers();
            let req = requests::view("GET", requests::GET_PATH, requests::GET_QUERY, &headers);
            // A false positive here would measure the deny path, not the common one.
            let f = waf.check_head(&req).unwrap();
            assert!(f.hits.is_empty(), "{f:?}");
            min_cpu_ns(n, runs, || {
                let f = waf.check_head(std::hint::black_box(&req)).unwrap();
                std::hint::black_box(f);
            })
        }
        other => panic!("mode is post or get, not {other}"),
    };
    if n > 0 {
        println!(
            "{:.1} us per request ({mode}, min of {runs} x {n})",
            best as f64 / n as f64 / 1000.0
        );
    }
}
