//! Weighted backend selection (`Pool::select`) with 3 and 100 backends of mixed weights, with
//! none and with some backends passively ejected, and the retry case (one backend already tried).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portcullis_upstream::Pool;

/// A pool of `n` backends on 127.0.0.1:20000.., weights cycling 1, 2, 5, 10.
fn pool(n: u16) -> (Pool, Vec<SocketAddr>) {
    let mut backends = String::new();
    let mut addrs = Vec::new();
    for i in 0..n {
        let weight = [1, 2, 5, 10][usize::from(i) % 4];
        write!(
            backends,
            "{{ address: \"127.0.0.1:{}\", weight: {weight} }},",
            20000 + i
        )
        .unwrap();
        addrs.push(SocketAddr::from(([127, 0, 0, 1], 20000 + i)));
    }
    let cfg = portcullis_config::parse_str(
        "bench.yaml",
        &format!(
            "listeners: [{{ name: w, address: \"127.0.0.1:1\" }}]\nupstreams:\n  app:\n    backends: [{backends}]\n    passive_health: {{ consecutive_failures: 1, ejection: 1h }}\nroutes: [{{ name: r, upstream: app }}]\n"
        ),
    )
    .unwrap();
    (Pool::from_spec(&cfg.upstreams["app"]).unwrap(), addrs)
}

fn select(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_select");
    for n in [3u16, 100] {
        let (healthy, addrs) = pool(n);
        let now = Instant::now();
        group.bench_function(BenchmarkId::new("all_healthy", n), |b| {
            b.iter(|| healthy.select(&[], now).unwrap());
        });
        group.bench_function(BenchmarkId::new("retry_one_tried", n), |b| {
            b.iter(|| healthy.select(&addrs[..1], now).unwrap());
        });
        // One in three backends ejected by passive health (connect failures).
        let (ejected, addrs) = pool(n);
        for a in addrs.iter().step_by(3) {
            assert!(ejected.record_connect_failure(*a, now));
        }
        group.bench_function(BenchmarkId::new("third_ejected", n), |b| {
            b.iter(|| ejected.select(&[], now).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, select);
criterion_main!(benches);
