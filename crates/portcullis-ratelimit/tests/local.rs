#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Local limiting, quotas, exemptions, headers, reload behaviour, bans, IP lists and in-flight
//! limits, all on a fake clock.

mod support;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Deny, Identity};
use portcullis_ratelimit::{
    Abuse, Concurrency, IpLists, IpSet, Observation, RateLimiter, Shared, SharedOptions,
};
use support::{config, header, route_limits, view, FakeClock};

fn limiter(rate_limit: &str) -> (RateLimiter, Arc<Shared>, Arc<FakeClock>) {
    let clock = FakeClock::new();
    let shared = Shared::new(SharedOptions::default(), clock.clone());
    let rl = RateLimiter::from_spec("r", &route_limits(&config(rate_limit, "")), &shared).unwrap();
    (rl, shared, clock)
}

async fn admitted(
    rl: &RateLimiter,
    ip: &str,
    n: usize,
    clock: &FakeClock,
    step: Duration,
) -> usize {
    let h = http::HeaderMap::new();
    let mut ok = 0;
    for _ in 0..n {
        if rl.check(&view(&h, ip)).await.is_ok() {
            ok += 1;
        }
        clock.advance(step);
    }
    ok
}

#[tokio::test]
async fn tight_loop_at_10_per_second_burst_5_admits_exactly_the_burst() {
    let (rl, _, clock) = limiter(r#"[{ key: client_ip, limits: ["10/s burst 5"] }]"#);
    assert_eq!(
        admitted(&rl, "192.0.2.1", 100, &clock, Duration::ZERO).await,
        5
    );
}

#[tokio::test]
async fn loop_spread_over_a_second_admits_burst_plus_refill() {
    let (rl, _, clock) = limiter(r#"[{ key: client_ip, limits: ["10/s burst 5"] }]"#);
    // 100 requests 10ms apart span 990ms: the burst of 5, then one every 100ms (at 100..900ms).
    assert_eq!(
        admitted(&rl, "192.0.2.1", 100, &clock, Duration::from_millis(10)).await,
        5 + 9
    );
}

#[tokio::test]
async fn retry_after_is_honest_and_rounded_up() {
    let (rl, _, clock) = limiter(r#"[{ key: client_ip, limits: ["1/m burst 2"] }]"#);
    let h = http::HeaderMap::new();
    let req = view(&h, "192.0.2.1");
    rl.check(&req).await.unwrap();
    clock.advance(Duration::from_millis(500));
    rl.check(&req).await.unwrap();
    let deny: Deny = rl.check(&req).await.unwrap_err();
    assert_eq!(deny.status, 429);
    assert_eq!(deny.reason, "rate_limited");
    // Next conformance is at 60s; 59.5s remain, rounded up.
    assert_eq!(header(&deny, "Retry-After"), "60");
    assert_eq!(header(&deny, "RateLimit-Policy"), "\"r/0/0\";q=1;w=60");
    assert!(header(&deny, "RateLimit").starts_with("\"r/0/0\";r=0;t="));
    clock.advance(Duration::from_millis(59_499));
    assert!(
        rl.check(&req).await.is_err(),
        "one ms early must still be refused"
    );
    clock.advance(Duration::from_millis(1));
    rl.check(&req).await.unwrap();
}

#[tokio::test]
async fn admission_carries_remaining_and_reset() {
    let (rl, _, _) = limiter(r#"[{ key: client_ip, limits: ["10/s burst 5", "1000/h"] }]"#);
    let h = http::HeaderMap::new();
    let a = rl.check(&view(&h, "192.0.2.1")).await.unwrap();
    let get = |n: &str| a.headers.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    assert_eq!(
        get("RateLimit-Policy"),
        "\"r/0/0\";q=10;w=1, \"r/0/1\";q=1000;w=3600"
    );
    assert_eq!(get("RateLimit"), "\"r/0/0\";r=4;t=1");
}

#[tokio::test]
async fn keys_are_independent_and_headers_compose_keys() {
    let (rl, _, clock) =
        limiter(r#"[{ key: [client_ip, "header:X-Tenant"], limits: ["1/s burst 1"] }]"#);
    let mut a = http::HeaderMap::new();
    a.insert("x-tenant", "a".parse().unwrap());
    let mut b = http::HeaderMap::new();
    b.insert("x-tenant", "b".parse().unwrap());
    let none = http::HeaderMap::new();
    assert!(rl.check(&view(&a, "192.0.2.1")).await.is_ok());
    assert!(rl.check(&view(&a, "192.0.2.1")).await.is_err());
    assert!(rl.check(&view(&b, "192.0.2.1")).await.is_ok());
    assert!(rl.check(&view(&a, "192.0.2.2")).await.is_ok());
    // Requests without the header share one counter rather than escaping the limit.
    assert!(rl.check(&view(&none, "192.0.2.1")).await.is_ok());
    assert!(rl.check(&view(&none, "192.0.2.1")).await.is_err());
    let _ = clock;
}

#[tokio::test]
async fn exempt_networks_and_consumers_are_never_limited() {
    let (rl, _, _) = limiter(
        r#"[{ key: client_ip, limits: ["1/s burst 1"], exempt: { cidrs: ["10.0.0.0/8"] } },
            { key: consumer, limits: ["1/s burst 1"], exempt: { consumers: [ops] } }]"#,
    );
    let h = http::HeaderMap::new();
    for _ in 0..10 {
        rl.check(&view(&h, "10.1.2.3")).await.unwrap();
    }
    let ops = Identity {
        consumer: Some("ops".into()),
        ..Identity::default()
    };
    for _ in 0..10 {
        rl.check_identity(&view(&h, "10.1.2.3"), Some(&ops))
            .await
            .unwrap();
    }
    let alice = Identity {
        consumer: Some("alice".into()),
        ..Identity::default()
    };
    rl.check_identity(&view(&h, "10.1.2.3"), Some(&alice))
        .await
        .unwrap();
    assert!(rl
        .check_identity(&view(&h, "10.1.2.3"), Some(&alice))
        .await
        .is_err());
}

#[tokio::test]
async fn a_consumer_exemption_on_an_ip_policy_applies_after_authentication() {
    let (rl, _, _) = limiter(
        r#"[{ key: client_ip, limits: ["1/s burst 1"], exempt: { consumers: [partner] } }]"#,
    );
    assert!(rl.has_identity_policies());
    let h = http::HeaderMap::new();
    let req = view(&h, "192.0.2.1");
    let partner = Identity {
        consumer: Some("partner".into()),
        ..Identity::default()
    };
    for _ in 0..10 {
        // Before authentication the policy does not run: nobody is known to be exempt yet.
        assert_eq!(rl.check(&req).await.unwrap().remaining, None);
        rl.check_identity(&req, Some(&partner)).await.unwrap();
    }
    // Anonymous requests and other consumers from the same address share the IP's limit.
    rl.check_identity(&req, None).await.unwrap();
    let alice = Identity {
        consumer: Some("alice".into()),
        ..Identity::default()
    };
    assert!(rl.check_identity(&req, Some(&alice)).await.is_err());
}

#[tokio::test]
async fn quotas_follow_the_consumer_plan() {
    let (rl, _, _) = limiter(
        r#"[{ key: consumer, quotas: { free: ["3/d"], pro: ["10/d"], default: ["1/d"] } }]"#,
    );
    let h = http::HeaderMap::new();
    let req = view(&h, "192.0.2.1");
    let who = |c: &str, plan: Option<&str>| Identity {
        consumer: Some(c.into()),
        plan: plan.map(Into::into),
        ..Identity::default()
    };
    let count = |id: Identity| {
        let rl = &rl;
        async move {
            let mut n = 0;
            for _ in 0..20 {
                if rl.check_identity(&req, Some(&id)).await.is_ok() {
                    n += 1;
                }
            }
            n
        }
    };
    assert_eq!(count(who("f", Some("free"))).await, 3);
    assert_eq!(count(who("p", Some("pro"))).await, 10);
    assert_eq!(count(who("u", Some("enterprise"))).await, 1);
    assert_eq!(count(who("n", None)).await, 1);
    let deny = rl
        .check_identity(&req, Some(&who("f", Some("free"))))
        .await
        .unwrap_err();
    assert_eq!(header(&deny, "Retry-After"), "28800");
}

#[tokio::test]
async fn each_policy_runs_in_exactly_one_of_the_two_calls() {
    let (rl, shared, _) = limiter(
        r#"[{ key: client_ip, limits: ["1/s burst 1"] }, { key: consumer, limits: ["1/s burst 1"] }]"#,
    );
    assert!(rl.has_identity_policies());
    let h = http::HeaderMap::new();
    let id = Identity {
        consumer: Some("c".into()),
        ..Identity::default()
    };
    rl.check(&view(&h, "192.0.2.1")).await.unwrap();
    rl.check_identity(&view(&h, "192.0.2.1"), Some(&id))
        .await
        .unwrap();
    let m = shared.metrics();
    assert_eq!(m.len(), 2);
    assert!(
        m.iter()
            .all(|(_, m)| m.allowed.load(Ordering::Relaxed) == 1),
        "{m:?}"
    );
}

#[tokio::test]
async fn the_response_carries_the_most_constrained_of_both_checks() {
    let (rl, _, _) = limiter(
        r#"[{ key: client_ip, limits: ["10/s burst 5"] }, { key: consumer, limits: ["1/m burst 2"] }]"#,
    );
    let h = http::HeaderMap::new();
    let id = Identity {
        consumer: Some("c".into()),
        ..Identity::default()
    };
    let before = rl.check(&view(&h, "192.0.2.1")).await.unwrap();
    let after = rl
        .check_identity(&view(&h, "192.0.2.1"), Some(&id))
        .await
        .unwrap();
    assert_eq!((before.remaining, after.remaining), (Some(4), Some(1)));
    let merged = before.clone().merge(after.clone());
    assert_eq!(merged, after);
    assert_eq!(after.clone().merge(before), after);
    assert_eq!(
        merged.headers,
        vec![
            ("RateLimit-Policy", "\"r/1/0\";q=1;w=60".to_owned()),
            ("RateLimit", "\"r/1/0\";r=1;t=60".to_owned()),
        ]
    );
    assert_eq!(
        portcullis_ratelimit::Admission::default().merge(merged.clone()),
        merged
    );
}

#[tokio::test]
async fn a_reload_keeps_the_counters_of_an_unchanged_policy() {
    let clock = FakeClock::new();
    let shared = Shared::new(SharedOptions::default(), clock.clone());
    let spec = route_limits(&config(
        r#"[{ key: client_ip, limits: ["1/m burst 1"] }]"#,
        "",
    ));
    let h = http::HeaderMap::new();
    let first = RateLimiter::from_spec("r", &spec, &shared).unwrap();
    first.check(&view(&h, "192.0.2.1")).await.unwrap();
    let reloaded = RateLimiter::from_spec("r", &spec, &shared).unwrap();
    assert!(reloaded.check(&view(&h, "192.0.2.1")).await.is_err());
    let changed = route_limits(&config(
        r#"[{ key: client_ip, limits: ["2/m burst 1"] }]"#,
        "",
    ));
    let other = RateLimiter::from_spec("r", &changed, &shared).unwrap();
    assert!(other.check(&view(&h, "192.0.2.1")).await.is_ok());
    let m = &shared.metrics()[0].1;
    assert_eq!(m.limited.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_denied_request_consumes_nothing_from_the_other_limits() {
    let (rl, _, clock) =
        limiter(r#"[{ key: client_ip, limits: ["100/s burst 100", "2/m burst 2"] }]"#);
    // The per-minute limit denies the third request; the per-second one must not count it.
    assert_eq!(
        admitted(&rl, "192.0.2.1", 50, &clock, Duration::ZERO).await,
        2
    );
}

#[tokio::test]
async fn shared_scope_without_redis_is_refused_at_build() {
    let shared = Shared::new(SharedOptions::default(), FakeClock::new());
    let cfg = config(
        r#"[{ key: client_ip, limits: ["1/s"], scope: shared }]"#,
        "redis: { url: \"redis://127.0.0.1:1\" }\n",
    );
    let err = RateLimiter::from_spec("r", &route_limits(&cfg), &shared).unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
}

fn abuse(extra: &str) -> (Abuse, Arc<FakeClock>) {
    let clock = FakeClock::new();
    let shared = Shared::new(SharedOptions::default(), clock.clone());
    let cfg = config("[]", extra);
    (
        Abuse::from_spec(cfg.protection.abuse.as_ref().unwrap(), &shared).unwrap(),
        clock,
    )
}

fn failed_login(ip: &str) -> Observation<'static> {
    Observation {
        client_ip: ip.parse().unwrap(),
        status: 401,
        path: "/login",
        auth_failed: true,
        waf_hit: false,
    }
}

#[test]
fn more_than_20_auth_failures_in_a_minute_bans_for_10_minutes() {
    let (a, clock) = abuse(
        "abuse: { rules: [{ name: brute, counter: auth_failures, more_than: 20, within: 1m, ban_for: 10m }] }\n",
    );
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    for _ in 0..20 {
        a.observe(&failed_login("198.51.100.7"));
        clock.advance(Duration::from_secs(1));
    }
    a.check_ban(ip).unwrap();
    a.observe(&failed_login("198.51.100.7"));
    let deny = a.check_ban(ip).unwrap_err();
    assert_eq!((deny.status, deny.reason), (403, "banned"));
    assert_eq!(header(&deny, "Retry-After"), "600");
    assert_eq!(a.list_bans()[0].rule, "brute");
    a.check_ban("198.51.100.8".parse().unwrap()).unwrap();
    clock.advance(Duration::from_secs(599));
    assert!(a.check_ban(ip).is_err());
    clock.advance(Duration::from_secs(1));
    a.check_ban(ip).unwrap();
    assert!(a.list_bans().is_empty());
}

#[test]
fn slow_failures_spread_over_windows_never_ban() {
    let (a, clock) = abuse(
        "abuse: { ban_status: 429, rules: [{ name: brute, counter: auth_failures, more_than: 5, within: 1m, ban_for: 10m }] }\n",
    );
    for _ in 0..100 {
        a.observe(&failed_login("198.51.100.7"));
        clock.advance(Duration::from_secs(20));
    }
    a.check_ban("198.51.100.7".parse().unwrap()).unwrap();
}

#[test]
fn scanning_counts_distinct_404_paths_only() {
    let (a, _) = abuse(
        "abuse: { ban_status: 429, rules: [{ name: scan, counter: not_found_paths, more_than: 10, within: 1m, ban_for: 1m }] }\n",
    );
    let ip = "203.0.113.9";
    for _ in 0..50 {
        a.observe(&Observation {
            client_ip: ip.parse().unwrap(),
            status: 404,
            path: "/favicon.ico",
            auth_failed: false,
            waf_hit: false,
        });
    }
    a.check_ban(ip.parse().unwrap()).unwrap();
    let paths: Vec<String> = (0..11).map(|i| format!("/admin{i}.php")).collect();
    for p in &paths {
        a.observe(&Observation {
            client_ip: ip.parse().unwrap(),
            status: 404,
            path: p,
            auth_failed: false,
            waf_hit: false,
        });
    }
    assert_eq!(a.check_ban(ip.parse().unwrap()).unwrap_err().status, 429);
}

#[tokio::test]
async fn a_ban_can_be_lifted() {
    let (a, _) = abuse("abuse: { rules: [{ name: waf, counter: waf_hits, more_than: 0, within: 1m, ban_for: 1h }] }\n");
    let ip: IpAddr = "2001:db8::1".parse().unwrap();
    a.observe(&Observation {
        client_ip: ip,
        status: 403,
        path: "/",
        auth_failed: false,
        waf_hit: true,
    });
    let h = http::HeaderMap::new();
    let req = view(&h, "2001:db8::1");
    assert_eq!(a.check(&req).unwrap_err().reason, "banned");
    assert!(a.unban(ip).await.unwrap());
    a.check(&req).unwrap();
}

#[test]
fn ip_set_matches_v4_v6_and_mapped_addresses_on_a_large_list() {
    let mut nets: Vec<ipnet::IpNet> = (0..50_000u32)
        .map(|i| {
            format!("{}.{}.{}.0/24", 10 + (i >> 16), (i >> 8) & 255, i & 255)
                .parse()
                .unwrap()
        })
        .collect();
    nets.push("2001:db8::/32".parse().unwrap());
    nets.push("192.0.2.7/32".parse().unwrap());
    let set = IpSet::new(&nets);
    assert!(set.ranges() <= 3, "adjacent /24s merge: {}", set.ranges());
    for (ip, inside) in [
        ("10.0.0.1", true),
        ("10.1.0.0", true),
        ("10.195.79.255", true),
        ("10.195.80.0", false),
        ("192.0.2.7", true),
        ("192.0.2.8", false),
        ("2001:db8:1::5", true),
        ("2001:db9::", false),
        ("::ffff:192.0.2.7", true),
    ] {
        assert_eq!(set.contains(ip.parse().unwrap()), inside, "{ip}");
    }
}

#[test]
fn ip_lists_deny_wins_and_allow_lists_shut_out_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.txt");
    std::fs::write(
        &feed,
        "# reputation feed\n203.0.113.0/24\n\n198.51.100.9 # one host\n",
    )
    .unwrap();
    let cfg = config(
        "[]",
        &format!(
            "ip_lists:\n  feed: {{ deny_files: [\"{}\"] }}\n  office: {{ allow: [\"203.0.113.0/24\", \"192.0.2.0/24\"], routes: [r] }}\n",
            feed.display()
        ),
    );
    let lists = IpLists::from_spec(&cfg.protection.ip_lists).unwrap();
    let h = http::HeaderMap::new();
    let check = |route: &str, ip: &str| {
        lists.check(&portcullis_core::RequestView {
            route,
            ..view(&h, ip)
        })
    };
    assert_eq!(check("r", "203.0.113.5").unwrap_err().reason, "ip_denied");
    assert_eq!(check("r", "198.51.100.9").unwrap_err().status, 403);
    assert!(check("r", "192.0.2.1").is_ok());
    assert!(check("r", "8.8.8.8").is_err());
    assert!(check("other", "8.8.8.8").is_ok());
    std::fs::write(&feed, "192.0.2.1\n").unwrap();
    lists.reload_files().unwrap();
    assert!(check("r", "192.0.2.1").is_err());
    assert!(check("other", "203.0.113.5").is_ok());
    std::fs::write(&feed, "not-an-ip\n").unwrap();
    let err = lists.reload_files().unwrap_err().to_string();
    assert!(err.contains("feed.txt:1"), "{err}");
    assert!(
        check("r", "192.0.2.1").is_err(),
        "a bad file keeps the lists in use"
    );
}

#[test]
fn an_empty_allow_file_lets_nobody_in() {
    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("partners.txt");
    std::fs::write(&allow, "# emptied by a broken feed job\n").unwrap();
    let cfg = config(
        "[]",
        &format!(
            "ip_lists:\n  partners: {{ allow_files: [\"{}\"], routes: [r] }}\n",
            allow.display()
        ),
    );
    let lists = IpLists::from_spec(&cfg.protection.ip_lists).unwrap();
    let h = http::HeaderMap::new();
    let check = |route: &str, ip: &str| {
        lists.check(&portcullis_core::RequestView {
            route,
            ..view(&h, ip)
        })
    };
    assert_eq!(check("r", "192.0.2.1").unwrap_err().reason, "ip_denied");
    assert!(check("other", "192.0.2.1").is_ok());
    std::fs::write(&allow, "192.0.2.0/24\n").unwrap();
    lists.reload_files().unwrap();
    assert!(check("r", "192.0.2.1").is_ok());
    assert!(check("r", "198.51.100.1").is_err());
}

#[test]
fn in_flight_limit_sheds_with_503_and_the_guard_releases() {
    let shared = Shared::new(SharedOptions::default(), FakeClock::new());
    let cfg = config(
        "[]",
        "concurrency: { routes: { r: 2 }, upstreams: { app: 3 }, retry_after: 2s }\n",
    );
    let c = Concurrency::from_spec(&cfg.protection.concurrency, &shared);
    let g1 = c.enter("r", Some("app")).unwrap();
    let g2 = c.enter("r", Some("app")).unwrap();
    let deny = c.enter("r", Some("app")).unwrap_err();
    assert_eq!((deny.status, deny.reason), (503, "overloaded"));
    assert_eq!(header(&deny, "Retry-After"), "2");
    assert_eq!(c.in_flight("r"), 2);
    drop(g1);
    let _g3 = c.enter("r", None).unwrap();
    drop(g2);
    assert_eq!(c.in_flight("r"), 1);
    // A reload sees the requests still in flight.
    let again = Concurrency::from_spec(&cfg.protection.concurrency, &shared);
    assert_eq!(again.in_flight("r"), 1);
}

#[test]
fn adaptive_mode_tightens_a_slow_pool_and_recovers_under_use() {
    let shared = Shared::new(SharedOptions::default(), FakeClock::new());
    let cfg = config(
        "[]",
        "concurrency: { upstreams: { app: 10 }, adaptive: { latency_target: 100ms, min: 3 } }\n",
    );
    let c = Concurrency::from_spec(&cfg.protection.concurrency, &shared);
    let slow = Duration::from_millis(300);
    let fast = Duration::from_millis(20);
    assert_eq!(c.pool("app"), Some((0, 10)));
    // 10 -> 9 -> 8 -> 7 -> 6 -> 5 -> 4 -> 3, then the floor holds.
    for _ in 0..5 {
        c.record("app", slow, false);
    }
    assert_eq!(c.pool("app"), Some((0, 5)));
    c.record("app", fast, true); // a failure counts like a slow response
    assert_eq!(c.pool("app"), Some((0, 4)));
    for _ in 0..10 {
        c.record("app", slow, false);
    }
    assert_eq!(c.pool("app"), Some((0, 3)));
    let held: Vec<_> = (0..3).map(|_| c.enter("r", Some("app")).unwrap()).collect();
    assert_eq!(c.enter("r", Some("app")).unwrap_err().status, 503);
    // Fast responses while the limit is in use raise it one at a time, up to the maximum.
    c.record("app", fast, false);
    assert_eq!(c.pool("app"), Some((3, 4)));
    let more: Vec<_> = (0..7).map(|_| c.enter("r", Some("app"))).collect();
    let admitted = more.iter().filter(|g| g.is_ok()).count();
    assert_eq!(admitted, 1);
    // It grows while at least half of it is in use: 4 in flight carry it to 9, not 10.
    for _ in 0..20 {
        c.record("app", fast, false);
    }
    assert_eq!(c.pool("app"), Some((4, 9)));
    drop((held, more));
    c.record("app", slow, false);
    // A reload keeps the adapted limit; an idle pool does not grow.
    let again = Concurrency::from_spec(&cfg.protection.concurrency, &shared);
    assert_eq!(again.pool("app"), Some((0, 8)));
    again.record("app", fast, false);
    assert_eq!(again.pool("app"), Some((0, 8)), "idle: no increase");
    let held: Vec<_> = (0..8)
        .map(|_| again.enter("r", Some("app")).unwrap())
        .collect();
    for _ in 0..5 {
        again.record("app", fast, false);
    }
    assert_eq!(again.pool("app"), Some((8, 10)), "never above the maximum");
    drop(held);
}

#[tokio::test]
async fn a_thresholds_map_overrides_limits_per_key_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("tenants.map");
    std::fs::write(
        &map,
        "# tenant  limits\nacme 3/s burst 3, 100/d\n\nbig 10/s # vip\n",
    )
    .unwrap();
    let cfg = config(
        &format!(
            r#"[{{ key: "header:x-tenant", limits: ["1/s burst 1"], overrides_file: "{}" }}]"#,
            map.display()
        ),
        "",
    );
    let clock = FakeClock::new();
    let shared = Shared::new(SharedOptions::default(), clock.clone());
    let rl = RateLimiter::from_spec("r", &route_limits(&cfg), &shared).unwrap();
    assert_eq!(rl.files(), vec![map.clone()]);
    let tenant = |t: &str| {
        let mut h = http::HeaderMap::new();
        h.insert("x-tenant", t.parse().unwrap());
        h
    };
    let (acme, big, other) = (tenant("acme"), tenant("big"), tenant("other"));
    let count = |h: &http::HeaderMap| {
        let h = h.clone();
        let rl = &rl;
        async move {
            let mut n = 0;
            for _ in 0..20 {
                if rl.check(&view(&h, "192.0.2.1")).await.is_ok() {
                    n += 1;
                }
            }
            n
        }
    };
    assert_eq!(count(&acme).await, 3);
    assert_eq!(count(&big).await, 10);
    assert_eq!(count(&other).await, 1);
    let deny = rl.check(&view(&acme, "192.0.2.1")).await.unwrap_err();
    let policy = header(&deny, "RateLimit-Policy");
    assert!(
        policy.contains(";q=3;w=1, ") && policy.contains(";q=100;w=86400"),
        "{policy}"
    );

    // An edited line gets fresh counters; a broken file keeps the map in use.
    std::fs::write(&map, "acme 5/s burst 5\n").unwrap();
    rl.reload_files().unwrap();
    assert_eq!(count(&acme).await, 5);
    assert_eq!(
        count(&big).await,
        1,
        "big falls back to the policy's own 1/s"
    );
    std::fs::write(&map, "acme 5/s\nacme 0/s\n").unwrap();
    let err = rl.reload_files().unwrap_err().to_string();
    assert!(
        err.contains("tenants.map:2") && err.contains("rate 0"),
        "{err}"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(count(&acme).await, 5, "still the last good map");
}

#[test]
fn request_path_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let (rl, _, _) = limiter(r#"[{ key: client_ip, limits: ["1/s"] }]"#);
    let h = http::HeaderMap::new();
    let req = view(&h, "192.0.2.1");
    send(rl.check(&req));
    send(rl.check_identity(&req, None));
}
