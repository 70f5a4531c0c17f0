#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Shared limits and bans against a real redis-server (started by each test on 127.0.0.1 and an
//! ephemeral port; the test fails if `redis-server` is not installed).

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_core::SystemClock;
use portcullis_ratelimit::{Abuse, Observation, RateLimiter, RedisState, Shared, SharedOptions};
use support::{config, eventually, eventually_async, header, route_limits, view, RedisServer};

const POLICIES: &str = r#"[{ name: open, key: client_ip, limits: ["10/s burst 5"], scope: shared },
  { name: closed, key: "header:x-closed", limits: ["10/s burst 5"], scope: shared, on_redis_error: fail_closed }]"#;

fn redis_section(server: &RedisServer) -> String {
    format!(
        "redis: {{ url: \"{}\", timeout: 50ms, failure_threshold: 2, cooldown: 200ms }}\n",
        server.url()
    )
}

/// One "gateway": its own process-wide state and limiter, talking to the same Redis.
async fn gateway(
    server: &RedisServer,
    extra: &str,
) -> (Gateway, Arc<Shared>, portcullis_config::Config) {
    let cfg = config(POLICIES, &format!("{}{extra}", redis_section(server)));
    let shared = Shared::new(
        SharedOptions {
            redis: cfg.protection.redis.clone(),
            ..SharedOptions::default()
        },
        Arc::new(SystemClock),
    );
    eventually(Duration::from_secs(10), "redis connection", || {
        shared.redis_state() == RedisState::Up
    })
    .await;
    let all = route_limits(&cfg);
    let only = |i: usize| portcullis_config::RouteRateLimit {
        policies: vec![all.policies[i].clone()],
    };
    let gw = Gateway {
        open: RateLimiter::from_spec("r", &only(0), &shared).unwrap(),
        closed: RateLimiter::from_spec("r", &only(1), &shared).unwrap(),
    };
    (gw, shared, cfg)
}

/// A fail-open and a fail-closed limiter of one gateway.
struct Gateway {
    open: RateLimiter,
    closed: RateLimiter,
}

/// Sends `n` requests alternating between the gateways; returns (admitted, elapsed).
async fn alternate(gws: &[&RateLimiter], ip: &str, n: usize) -> (usize, Duration) {
    let h = http::HeaderMap::new();
    let start = Instant::now();
    let mut ok = 0;
    for i in 0..n {
        if gws[i % gws.len()].check(&view(&h, ip)).await.is_ok() {
            ok += 1;
        }
    }
    (ok, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_enforce_one_combined_limit() {
    let server = RedisServer::start();
    let (a, sa, _) = gateway(&server, "").await;
    let (b, sb, _) = gateway(&server, "").await;
    let (ok, elapsed) = alternate(&[&a.open, &b.open], "192.0.2.1", 100).await;
    // One burst plus what 10/s refills during the run; two separate limiters would give 10+.
    let refill = (elapsed.as_secs_f64() * 10.0).ceil() as usize;
    assert!(ok >= 5 && ok <= 5 + refill, "admitted {ok} in {elapsed:?}");
    for s in [&sa, &sb] {
        let m = &s.metrics()[0].1;
        assert_eq!(m.redis_errors.load(Ordering::Relaxed), 0);
        assert_eq!(m.fail_open.load(Ordering::Relaxed), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_denial_carries_an_honest_retry_after_from_either_gateway() {
    let server = RedisServer::start();
    let cfg = config(
        r#"[{ key: client_ip, limits: ["1/m burst 2"], scope: shared }]"#,
        &redis_section(&server),
    );
    let mut gws = Vec::new();
    for _ in 0..2 {
        let shared = Shared::new(
            SharedOptions {
                redis: cfg.protection.redis.clone(),
                ..SharedOptions::default()
            },
            Arc::new(SystemClock),
        );
        eventually(Duration::from_secs(10), "redis connection", || {
            shared.redis_state() == RedisState::Up
        })
        .await;
        gws.push(RateLimiter::from_spec("r", &route_limits(&cfg), &shared).unwrap());
    }
    let h = http::HeaderMap::new();
    let req = view(&h, "192.0.2.7");
    let first = gws[0].check(&req).await.unwrap();
    assert_eq!(first.remaining, Some(1));
    let second = gws[1].check(&req).await.unwrap();
    assert_eq!(second.remaining, Some(0), "b sees a's admission");
    for gw in &gws {
        let deny = gw.check(&req).await.unwrap_err();
        assert_eq!((deny.status, deny.reason), (429, "rate_limited"));
        // The next admission is 60s after the first one, on Redis's clock: at most 60s away
        // and, this soon after, more than 55s away.
        let retry: u64 = header(&deny, "Retry-After").parse().unwrap();
        assert!((56..=60).contains(&retry), "Retry-After {retry}");
        assert!(header(&deny, "RateLimit").contains(";r=0;t="));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_limits_are_all_or_nothing_and_every_redis_key_expires() {
    let server = RedisServer::start();
    let abuse = "abuse: { scope: shared, rules: [{ name: waf, counter: waf_hits, more_than: 0, within: 1m, ban_for: 30s }] }\n";
    let cfg = config(
        r#"[{ key: client_ip, limits: ["100/s burst 100", "3/m burst 3"], scope: shared }]"#,
        &format!("{}{abuse}", redis_section(&server)),
    );
    let mut gws = Vec::new();
    let mut states = Vec::new();
    for _ in 0..2 {
        let shared = Shared::new(
            SharedOptions {
                redis: cfg.protection.redis.clone(),
                ..SharedOptions::default()
            },
            Arc::new(SystemClock),
        );
        eventually(Duration::from_secs(10), "redis connection", || {
            shared.redis_state() == RedisState::Up
        })
        .await;
        gws.push(RateLimiter::from_spec("r", &route_limits(&cfg), &shared).unwrap());
        states.push(shared);
    }
    let refs: Vec<&RateLimiter> = gws.iter().collect();
    let (ok, _) = alternate(&refs, "192.0.2.8", 50).await;
    assert_eq!(ok, 3, "the per-minute limit, across both gateways");
    // The refusal names the limit that refused: the per-minute one (`/0/1`).
    let deny = gws[0]
        .check(&view(&http::HeaderMap::new(), "192.0.2.8"))
        .await
        .unwrap_err();
    assert!(
        header(&deny, "RateLimit").contains("/0/1\";r=0;"),
        "{deny:?}"
    );

    let banner = Abuse::from_spec(cfg.protection.abuse.as_ref().unwrap(), &states[0]).unwrap();
    banner.ban(
        "203.0.113.1".parse().unwrap(),
        "manual",
        Duration::from_secs(30),
    );
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    eventually(Duration::from_secs(5), "the ban reaches redis", || {
        redis::cmd("EXISTS")
            .arg("portcullis:bans")
            .query::<i64>(&mut conn)
            .unwrap()
            == 1
    })
    .await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert_eq!(keys.len(), 3, "two limits and the ban set: {keys:?}");
    for k in &keys {
        assert!(k.starts_with("portcullis:"), "{k}");
        let ttl: i64 = redis::cmd("PTTL").arg(k).query(&mut conn).unwrap();
        // The per-minute key lives until its TAT (3 admissions = 60s), the ban set as its ban.
        assert!(ttl > 0 && ttl <= 60_001, "{k} has PTTL {ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_open_to_local_or_closed_with_503_then_recovers() {
    let mut server = RedisServer::start();
    let (a, sa, _) = gateway(&server, "").await;
    let (b, _sb, _) = gateway(&server, "").await;
    server.kill();

    // Fail-open: each gateway keeps limiting locally (5 each), no call waits past the timeout.
    let h = http::HeaderMap::new();
    let mut ok = 0;
    for i in 0..40 {
        let gw = if i % 2 == 0 { &a.open } else { &b.open };
        let t = Instant::now();
        if gw.check(&view(&h, "192.0.2.2")).await.is_ok() {
            ok += 1;
        }
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "a check took {:?}",
            t.elapsed()
        );
    }
    assert!(
        (10..=12).contains(&ok),
        "fail-open admitted {ok}, expected about 5 per gateway"
    );
    let open = &sa.metrics()[1].1;
    assert!(open.fail_open.load(Ordering::Relaxed) >= 20);
    assert!(open.redis_errors.load(Ordering::Relaxed) >= 20);

    // Fail-closed: 503 with its own reason.
    let mut hc = http::HeaderMap::new();
    hc.insert("x-closed", "1".parse().unwrap());
    let t = Instant::now();
    let deny = a.closed.check(&view(&hc, "192.0.2.3")).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!((deny.status, deny.reason), (503, "ratelimit_unavailable"));
    assert!(sa.metrics()[0].1.fail_closed.load(Ordering::Relaxed) >= 1);

    // Redis back: shared limiting resumes without a restart.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let before = open.redis_errors.load(Ordering::Relaxed);
        let _ = a.open.check(&view(&h, "192.0.2.99")).await;
        if open.redis_errors.load(Ordering::Relaxed) == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shared limiting did not resume within 15s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually_async(Duration::from_secs(15), "gateway b reconnects", || {
        answers_from_redis(&b)
    })
    .await;
    let (ok, elapsed) = alternate(&[&a.open, &b.open], "192.0.2.4", 100).await;
    let refill = (elapsed.as_secs_f64() * 10.0).ceil() as usize;
    assert!(
        ok >= 5 && ok <= 5 + refill,
        "after recovery admitted {ok} in {elapsed:?}"
    );
    a.closed.check(&view(&hc, "192.0.2.3")).await.unwrap();
}

/// Whether a gateway answers from Redis again (connection back, breaker closed): its
/// fail-closed policy admits a fresh key.
async fn answers_from_redis(gw: &Gateway) -> bool {
    let mut hc = http::HeaderMap::new();
    hc.insert("x-closed", "probe".parse().unwrap());
    gw.closed.check(&view(&hc, "192.0.2.100")).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_at_most_the_timeout_then_the_breaker_skips_it() {
    let server = RedisServer::start();
    let (a, sa, cfg) = gateway(&server, "").await;
    let timeout = cfg.protection.redis.as_ref().unwrap().timeout;
    // Frozen, not dead: connections stay open and nothing answers, so only the timeout helps.
    server.pause();
    let h = http::HeaderMap::new();
    let mut hc = http::HeaderMap::new();
    hc.insert("x-closed", "1".parse().unwrap());
    let mut slowest = Duration::ZERO;
    let mut ok = 0;
    let start = Instant::now();
    for i in 0..40 {
        let t = Instant::now();
        if i % 2 == 0 {
            if a.open.check(&view(&h, "192.0.2.5")).await.is_ok() {
                ok += 1;
            }
        } else {
            let deny = a.closed.check(&view(&hc, "192.0.2.5")).await.unwrap_err();
            assert_eq!(deny.status, 503);
        }
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < timeout + Duration::from_millis(150),
        "a check took {slowest:?} with a {timeout:?} timeout"
    );
    // After `failure_threshold` (2) timeouts the breaker skips Redis: 40 waits would be 2s.
    let total = start.elapsed();
    assert!(total < Duration::from_secs(1), "40 checks took {total:?}");
    assert!(
        (5..=6).contains(&ok),
        "fail-open falls back to the local 10/s burst 5, admitted {ok}"
    );
    let errors: u64 = sa
        .metrics()
        .iter()
        .map(|(_, m)| m.redis_errors.load(Ordering::Relaxed))
        .sum();
    assert_eq!(errors, 40);

    server.resume();
    eventually_async(Duration::from_secs(15), "shared limiting resumes", || {
        answers_from_redis(&a)
    })
    .await;
    assert_eq!(sa.redis_state(), RedisState::Up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_failed_logins_ban_the_client_on_every_gateway_until_expiry() {
    let server = RedisServer::start();
    let abuse = "abuse: { scope: shared, sync_interval: 100ms, rules: [{ name: brute, counter: auth_failures, more_than: 20, within: 1m, ban_for: 2s }] }\n";
    let (_, sa, cfg) = gateway(&server, abuse).await;
    let (_, sb, _) = gateway(&server, abuse).await;
    let spec = cfg.protection.abuse.clone().unwrap();
    let a = Arc::new(Abuse::from_spec(&spec, &sa).unwrap());
    let b = Arc::new(Abuse::from_spec(&spec, &sb).unwrap());
    let _sync = (a.spawn_sync(), b.spawn_sync());
    let ip = "198.51.100.30".parse().unwrap();
    for _ in 0..30 {
        a.observe(&Observation {
            client_ip: ip,
            status: 401,
            path: "/login",
            auth_failed: true,
            waf_hit: false,
        });
    }
    let banned_at = Instant::now();
    assert_eq!(a.check_ban(ip).unwrap_err().status, 403);
    eventually(Duration::from_secs(5), "ban reaches gateway b", || {
        b.check_ban(ip).is_err()
    })
    .await;
    assert!(b.list_bans().iter().any(|x| x.ip == ip));
    assert_eq!((sa.active_bans(), sb.active_bans()), (1, 1));
    eventually(Duration::from_secs(5), "ban expires on both", || {
        a.check_ban(ip).is_ok() && b.check_ban(ip).is_ok()
    })
    .await;
    let lasted = banned_at.elapsed();
    assert!(
        lasted >= Duration::from_millis(1_500) && lasted < Duration::from_secs(4),
        "the 2s ban lasted {lasted:?}"
    );

    // Failures spread over both gateways count together: 15 on each is 30 > 20.
    let spread = "198.51.100.31".parse().unwrap();
    for i in 0..30 {
        let gw = if i % 2 == 0 { &a } else { &b };
        gw.observe(&Observation {
            client_ip: spread,
            status: 401,
            path: "/login",
            auth_failed: true,
            waf_hit: false,
        });
    }
    eventually(
        Duration::from_secs(5),
        "spread failures ban on both",
        || a.check_ban(spread).is_err() && b.check_ban(spread).is_err(),
    )
    .await;

    // An admin lifting a ban on one gateway lifts it everywhere.
    a.ban(ip, "manual", Duration::from_secs(60));
    eventually(Duration::from_secs(5), "manual ban reaches b", || {
        b.check_ban(ip).is_err()
    })
    .await;
    assert!(b.unban(ip).await.unwrap());
    eventually(Duration::from_secs(5), "unban reaches a", || {
        a.check_ban(ip).is_ok()
    })
    .await;
}
