//! Rate limits, shared limits through a real Redis, Redis failures and behavioural bans.

use std::time::{Duration, Instant};

use crate::support::{client, pool, Backend, Gateway, Redis};

/// Sends `n` requests one after the other; returns the statuses and the elapsed time.
async fn sequential(
    urls: &[String],
    n: usize,
    key: Option<&str>,
) -> (Vec<reqwest::Response>, Duration) {
    let c = client();
    let start = Instant::now();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut req = c.get(&urls[i % urls.len()]);
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        out.push(req.send().await.unwrap());
    }
    (out, start.elapsed())
}

fn admitted(rs: &[reqwest::Response]) -> usize {
    rs.iter().filter(|r| r.status() == 200).count()
}

/// Most requests a `rate/s burst b` limit may admit in `elapsed`.
fn ceiling(rate: f64, burst: usize, elapsed: Duration) -> usize {
    burst + (elapsed.as_secs_f64() * rate).ceil() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_limit_admits_burst_plus_refill_with_honest_headers() {
    let app = Backend::start("app").await;
    let cfg = format!(
        "{}routes:\n  - name: api\n    upstream: pool\n    rate_limit:\n      - {{ key: client_ip, limits: [\"10/s burst 5\"] }}\n",
        pool(&[(&app, 1)], "")
    );
    let gw = Gateway::start(&cfg).await;
    let (rs, elapsed) = sequential(&[gw.url("/a")], 100, None).await;
    let ok = admitted(&rs);
    assert!(ok >= 5, "the burst passes: {ok}");
    assert!(
        ok <= ceiling(10.0, 5, elapsed),
        "{ok} admitted in {elapsed:?}"
    );
    assert_eq!(
        app.hits() as usize,
        ok,
        "refused requests never reach the backend"
    );
    let first = &rs[0];
    let policy = first
        .headers()
        .get("ratelimit-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(policy.starts_with("\"api/0/0\";q="), "{policy}");
    let refused = rs.iter().find(|r| r.status() == 429).expect("some refused");
    let retry: u64 = refused
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, 1, "the next slot is at most 100 ms away, rounded up");
    assert!(refused.headers().get("ratelimit").is_some());
    // Honest: after the stated wait, a request passes.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        client().get(gw.url("/a")).send().await.unwrap().status(),
        200
    );
    assert!(gw.metric("portcullis_ratelimit_limited_total", &[]).await >= 1.0);
    assert!(
        gw.metric("portcullis_denied_total", &["reason=\"rate_limited\""])
            .await
            >= 1.0
    );
}

fn shared_config(app: &Backend, redis: &Redis, extra_routes: &str, abuse: &str) -> String {
    format!(
        "redis: {{ url: \"{}\", timeout: 100ms, failure_threshold: 2, cooldown: 1s }}\n{abuse}{}routes:\n  - name: api\n    match: {{ path_prefix: /api }}\n    upstream: pool\n    rate_limit:\n      - {{ key: client_ip, limits: [\"10/s burst 5\"], scope: shared, on_redis_error: fail_open }}\n{extra_routes}",
        redis.url(),
        pool(&[(app, 1)], "")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_limit_through_redis() {
    let redis = Redis::start().await;
    let app = Backend::start("app").await;
    let cfg = shared_config(&app, &redis, "", "");
    let a = Gateway::start(&cfg).await;
    let b = Gateway::start(&cfg).await;
    // Warm both connections to Redis.
    let _ = sequential(&[a.url("/warm"), b.url("/warm")], 2, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rs, elapsed) = sequential(&[a.url("/api/x"), b.url("/api/x")], 100, None).await;
    let ok = admitted(&rs);
    assert!(ok >= 5, "{ok}");
    // Two separate limits would admit two bursts plus twice the refill.
    assert!(
        ok <= ceiling(10.0, 5, elapsed) + 1,
        "{ok} admitted by two gateways in {elapsed:?}: not one limit"
    );
    let via_a = rs.iter().step_by(2).filter(|r| r.status() == 200).count();
    assert!(
        via_a > 0 && via_a < ok,
        "both gateways admitted some: {via_a} of {ok}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_open_or_closed_then_recovers() {
    let mut redis = Redis::start().await;
    let app = Backend::start("app").await;
    let closed = "  - name: strict\n    match: { path_prefix: /strict }\n    upstream: pool\n    rate_limit:\n      - { key: client_ip, limits: [\"1000/s burst 100\"], scope: shared, on_redis_error: fail_closed }\n";
    let gw = Gateway::start(&shared_config(&app, &redis, closed, "")).await;
    let c = client();
    assert_eq!(
        c.get(gw.url("/strict/1")).send().await.unwrap().status(),
        200
    );

    redis.kill();
    let mut statuses = Vec::new();
    for i in 0..20 {
        let start = Instant::now();
        let path = if i % 2 == 0 { "/strict/1" } else { "/api/1" };
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a request waited {:?} on a dead Redis",
            start.elapsed()
        );
        statuses.push((path, r.status().as_u16()));
    }
    assert!(
        statuses
            .iter()
            .filter(|(p, _)| *p == "/strict/1")
            .all(|(_, s)| *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .filter(|(p, _)| *p == "/api/1")
            .any(|(_, s)| *s == 200),
        "fail-open keeps serving: {statuses:?}"
    );
    assert!(
        gw.metric("portcullis_ratelimit_fail_closed_total", &[])
            .await
            >= 1.0
    );
    assert!(gw.metric("portcullis_ratelimit_fail_open_total", &[]).await >= 1.0);

    redis.restart().await;
    let start = Instant::now();
    loop {
        if c.get(gw.url("/strict/1")).send().await.unwrap().status() == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "shared limiting did not resume"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gw.metric("portcullis_ratelimit_redis_up", &[]).await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_ban_a_client_on_every_node_until_the_ban_expires() {
    let redis = Redis::start().await;
    let app = Backend::start("app").await;
    let hash = portcullis_auth::hash_api_key("the-right-key");
    let login = format!("  - name: login\n    match: {{ path_prefix: /login }}\n    upstream: pool\n    auth:\n      api_keys:\n        keys: [{{ consumer: ann, hash: \"{hash}\" }}]\n");
    let abuse = "abuse:\n  scope: shared\n  sync_interval: 200ms\n  rules:\n    - { name: brute, counter: auth_failures, more_than: 29, within: 1m, ban_for: 3s }\n";
    // A generous Redis timeout: this test is about bans, not about a slow Redis.
    let cfg = shared_config(&app, &redis, &login, abuse).replace("timeout: 100ms", "timeout: 1s");
    let a = Gateway::start(&cfg).await;
    let b = Gateway::start(&cfg).await;
    let c = client();
    for i in 0..29 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = c
            .get(gw.url("/login"))
            .header("X-API-Key", "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // 29 failures: not yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        c.get(a.url("/login"))
            .header("X-API-Key", "the-right-key")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = c
        .get(b.url("/login"))
        .header("X-API-Key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The 30th failure bans the client everywhere, for every route.
    let start = Instant::now();
    loop {
        let ra = c
            .get(a.url("/login"))
            .header("X-API-Key", "the-right-key")
            .send()
            .await
            .unwrap()
            .status();
        let rb = c
            .get(b.url("/login"))
            .header("X-API-Key", "the-right-key")
            .send()
            .await
            .unwrap()
            .status();
        if ra == 403 && rb == 403 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not banned on both nodes: a={ra} b={rb}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let banned_at = Instant::now();
    let list: serde_json::Value = c
        .get(format!("http://{}/bans", a.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["bans"][0]["ip"], "127.0.0.1", "{list}");
    assert!(b.metric("portcullis_abuse_active_bans", &[]).await >= 1.0);
    // The ban expires on time (3 s).
    loop {
        let s = c
            .get(b.url("/login"))
            .header("X-API-Key", "the-right-key")
            .send()
            .await
            .unwrap()
            .status();
        if s == 200 {
            break;
        }
        assert!(
            banned_at.elapsed() < Duration::from_secs(5),
            "ban outlived its 3 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        banned_at.elapsed() >= Duration::from_millis(1500),
        "ban lifted early: {:?}",
        banned_at.elapsed()
    );
}
