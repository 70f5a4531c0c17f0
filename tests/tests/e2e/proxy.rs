//! Routing, weighted balancing, forwarding headers, direct responses and error answers.

use crate::support::{client, hammer, pool, Backend, Gateway};

const ROUTE_ALL: &str = "routes:\n  - name: all\n    upstream: pool\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weights_three_to_one_split_within_three_points() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let cfg = format!("{}{ROUTE_ALL}", pool(&[(&a, 3), (&b, 1)], ""));
    let gw = Gateway::start(&cfg).await;
    let tally = hammer(&client(), &gw.url("/split"), 4000, 32).await;
    assert_eq!(tally.failures(), 0, "{tally:?}");
    let share_a = tally.from("a") as f64 / 4000.0;
    assert!(
        (share_a - 0.75).abs() <= 0.03,
        "a got {share_a:.3} of 4000: {tally:?}"
    );
    assert_eq!(tally.from("a") + tally.from("b"), 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_request_id_and_hop_by_hop_removal() {
    let a = Backend::start("a").await;
    let cfg = format!(
        "{}routes:\n  - name: api\n    match: {{ path_prefix: /api }}\n    upstream: pool\n    request_headers:\n      set: {{ X-Gateway: portcullis }}\n      remove: [X-Internal]\n    response_headers:\n      set: {{ X-Frame-Options: DENY }}\n      remove: [Server]\n",
        pool(&[(&a, 1)], "")
    );
    let gw = Gateway::start(&cfg).await;
    let c = client();
    let r = c
        .get(gw.url("/api/x?q=1"))
        .header("Host", "shop.example.com")
        .header("Connection", "keep-alive, X-Secret-Hop")
        .header("X-Secret-Hop", "must-not-pass")
        .header("Proxy-Authorization", "Basic Zm9vOmJhcg==")
        .header("TE", "trailers")
        .header("X-Internal", "1")
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-frame-options")
            .map(|v| v.to_str().unwrap()),
        Some("DENY")
    );
    assert!(
        r.headers().get("server").is_none(),
        "Server removed by response_headers"
    );
    let generated = r
        .headers()
        .get("x-request-id")
        .expect("request id echoed")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(generated.len() >= 16, "generated id {generated:?}");

    let seen = a.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/api/x?q=1");
    assert_eq!(seen.header("x-gateway"), Some("portcullis"));
    assert_eq!(seen.header("x-internal"), None);
    assert_eq!(
        seen.header("x-secret-hop"),
        None,
        "header named in Connection is hop-by-hop"
    );
    assert_eq!(seen.header("proxy-authorization"), None);
    assert_eq!(seen.header("te"), None);
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example.com"));
    assert_eq!(seen.header("x-request-id"), Some(generated.as_str()));

    // A well-formed inbound id is propagated.
    let r = c
        .get(gw.url("/api/y"))
        .header("X-Request-Id", "abc-123_DEF")
        .send()
        .await
        .expect("request");
    assert_eq!(r.headers().get("x-request-id").unwrap(), "abc-123_DEF");
    assert_eq!(a.last().header("x-request-id"), Some("abc-123_DEF"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_direct_and_no_healthy_backend_answers() {
    let a = Backend::start("a").await;
    let dead = crate::support::free_port();
    let cfg = format!(
        "upstreams:\n  live:\n    backends: [{{ address: \"{}\" }}]\n  gone:\n    backends: [{{ address: \"127.0.0.1:{dead}\" }}]\n    health_check: {{ type: tcp, interval: 100ms, timeout: 100ms, unhealthy_after: 1, healthy_after: 1 }}\nroutes:\n  - name: live\n    match: {{ hosts: [\"*.example.com\"], path_prefix: /app }}\n    upstream: live\n  - name: gone\n    match: {{ path_prefix: /gone }}\n    upstream: gone\n  - name: moved\n    match: {{ path_exact: /old, methods: [GET] }}\n    direct_response: {{ status: 301, headers: {{ Location: /new }} }}\n",
        a.addr
    );
    let gw = Gateway::start(&cfg).await;
    let c = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let r = c
        .get(gw.url("/app/1"))
        .header("Host", "eu.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(gw.url("/app/1"))
        .header("Host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "wildcard does not match the apex");
    assert_eq!(r.headers().get("content-type").unwrap(), "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], 404);
    assert_eq!(body["error"]["code"], "no_route");
    assert!(body["error"]["request_id"].is_string(), "{body}");

    let r = c.get(gw.url("/old")).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers().get("location").unwrap(), "/new");
    let r = c.post(gw.url("/old")).send().await.unwrap();
    assert_eq!(r.status(), 404, "method does not match");

    // Wait for the health check to mark the dead pool down, then expect a JSON 503.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let r = c.get(gw.url("/gone")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], 503);
    assert_eq!(a.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_requests_retry_on_another_backend() {
    let a = Backend::start("a").await;
    let dead = crate::support::free_port();
    // No active health check: only retries and passive ejection keep requests whole.
    let cfg = format!(
        "upstreams:\n  pool:\n    backends:\n      - {{ address: \"{}\" }}\n      - {{ address: \"127.0.0.1:{dead}\" }}\n    retries: 1\n    passive_health: {{ consecutive_failures: 1000, ejection: 1s }}\n{ROUTE_ALL}",
        a.addr
    );
    let gw = Gateway::start(&cfg).await;
    let tally = hammer(&client(), &gw.url("/r"), 200, 8).await;
    assert_eq!(tally.failures(), 0, "{tally:?}");
    assert_eq!(tally.from("a"), 200);
    assert!(gw.metric("portcullis_upstream_retries_total", &[]).await >= 1.0);
    assert!(
        gw.metric("portcullis_upstream_connect_failures_total", &[])
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_is_proxied() {
    let a = Backend::start("a").await;
    let cfg = format!("{}{ROUTE_ALL}", pool(&[(&a, 1)], ""));
    let gw = Gateway::start(&cfg).await;
    let c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = c.get(gw.url("/h2")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "a GET /h2 0\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_status() {
    let a = Backend::start("a").await;
    let cfg = format!("{}{ROUTE_ALL}", pool(&[(&a, 1)], ""));
    let gw = Gateway::start(&cfg).await;
    let tally = hammer(&client(), &gw.url("/m"), 25, 5).await;
    assert_eq!(tally.failures(), 0);
    let n = gw
        .metric(
            "portcullis_requests_total",
            &["route=\"all\"", "status=\"200\"", "method=\"GET\""],
        )
        .await;
    assert!((n - 25.0).abs() < f64::EPSILON, "requests_total = {n}");
    let text = gw.metrics().await;
    assert!(text.contains("portcullis_request_duration_seconds_bucket"));
    assert!(text.contains("portcullis_build_info{"));
    assert!(
        text.contains(&format!(
            "portcullis_upstream_backend_healthy{{backend=\"{}\",upstream=\"pool\"}} 1",
            a.addr
        )),
        "{text}"
    );
}
