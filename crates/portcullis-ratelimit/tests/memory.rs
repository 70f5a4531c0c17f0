#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The local limiter's memory bound: one million distinct client IPs, then one million more,
//! against the default table (`DEFAULT_MAX_KEYS` = 2^20 keys). Measured as the growth of this
//! process's resident set, so this binary holds this one test only.
//!
//! Print the figures with
//! `cargo nextest run -p portcullis-ratelimit --test memory --no-capture`.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use portcullis_core::RequestView;
use portcullis_ratelimit::{RateLimiter, Shared, SharedOptions, DEFAULT_MAX_KEYS};
use support::{config, route_limits, view, FakeClock};

/// The stated bound for the default table (see `DEFAULT_MAX_KEYS`).
const BOUND_MIB: f64 = 40.0;

/// `(current, peak)` resident set of this process in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"));
        let kib: u64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kib * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn hit(rl: &RateLimiter, from: u32, n: u32) {
    let h = http::HeaderMap::new();
    let base = view(&h, "0.0.0.0");
    for i in from..from + n {
        let req = RequestView {
            client_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
            ..base
        };
        // A fresh key always has its burst: every first request is admitted.
        assert!(rl.check(&req).await.is_ok(), "key {i} refused");
    }
}

#[tokio::test]
async fn one_million_distinct_client_ips_stay_within_the_stated_bound() {
    // The clock never moves: every key stays live, the worst case for eviction.
    let shared = Shared::new(SharedOptions::default(), FakeClock::new());
    let spec = route_limits(&config(
        r#"[{ key: client_ip, limits: ["10/s burst 5"] }]"#,
        "",
    ));
    let rl = RateLimiter::from_spec("r", &spec, &shared).unwrap();
    hit(&rl, 0, 1_000).await; // warm up the allocator and the runtime
    let (start, _) = rss();

    let t = std::time::Instant::now();
    hit(&rl, 1_000, 1_000_000).await;
    let first = t.elapsed();
    let (after_1m, _) = rss();
    let (keys_1m, capacity) = shared.local_keys();

    // Past the capacity the table evicts instead of growing.
    hit(&rl, 1_001_000, 1_000_000).await;
    let (after_2m, peak) = rss();
    let (keys_2m, _) = shared.local_keys();

    println!(
        "local limiter, capacity {capacity} keys ({DEFAULT_MAX_KEYS} requested):\n\
         1M distinct IPs: {keys_1m} keys tracked, RSS +{:.1} MiB ({:.1} µs per check, debug build)\n\
         2M distinct IPs: {keys_2m} keys tracked, RSS +{:.1} MiB, peak +{:.1} MiB; stated bound {BOUND_MIB} MiB",
        mib(after_1m.saturating_sub(start)),
        first.as_secs_f64() * 1e6 / 1e6,
        mib(after_2m.saturating_sub(start)),
        mib(peak.saturating_sub(start)),
    );
    assert_eq!(capacity, DEFAULT_MAX_KEYS);
    assert!(keys_1m >= 990_000, "only {keys_1m} of 1M keys tracked");
    assert!(keys_2m <= capacity);
    for (what, bytes) in [
        ("after 1M", after_1m),
        ("after 2M", after_2m),
        ("at peak", peak),
    ] {
        let grown = mib(bytes.saturating_sub(start));
        assert!(
            grown <= BOUND_MIB,
            "RSS grew {grown:.1} MiB {what}, bound {BOUND_MIB} MiB"
        );
    }
}
