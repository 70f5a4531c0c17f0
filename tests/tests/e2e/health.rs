//! Active health checks: a backend that stops is taken out within its thresholds and comes back.

use std::time::{Duration, Instant};

use crate::support::{client, hammer, pool, Backend, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopped_backend_is_ejected_then_returns_when_restarted() {
    let a = Backend::start("a").await;
    let mut b = Backend::start("b").await;
    let check = "    health_check: { type: http, path: /healthz, interval: 200ms, timeout: 200ms, unhealthy_after: 2, healthy_after: 2 }\n    retries: 0\n";
    let cfg = format!(
        "{}routes:\n  - name: all\n    upstream: pool\n",
        pool(&[(&a, 1), (&b, 1)], check)
    );
    let gw = Gateway::start(&cfg).await;
    let c = client();
    let url = gw.url("/h");

    let before = hammer(&c, &url, 200, 8).await;
    assert_eq!(before.failures(), 0, "{before:?}");
    assert!(
        before.from("b") > 50,
        "b serves before it stops: {before:?}"
    );

    b.stop();
    let stopped = Instant::now();
    // Thresholds: 2 failed checks 200 ms apart (+ timeout) → out within about a second.
    let metric = format!(
        "portcullis_upstream_backend_healthy{{backend=\"{}\",upstream=\"pool\"}} 0",
        b.addr
    );
    loop {
        if gw.metrics().await.contains(&metric) {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "b not ejected within 3s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ejected_after = stopped.elapsed();
    assert!(
        ejected_after <= Duration::from_millis(1500),
        "ejected after {ejected_after:?}"
    );

    // From now on nothing fails, with no retries configured.
    let during = hammer(&c, &url, 400, 8).await;
    assert_eq!(during.failures(), 0, "{during:?}");
    assert_eq!(during.from("a"), 400);

    b.restart().await;
    let restarted = Instant::now();
    let metric = format!(
        "portcullis_upstream_backend_healthy{{backend=\"{}\",upstream=\"pool\"}} 1",
        b.addr
    );
    loop {
        if gw.metrics().await.contains(&metric) {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(3),
            "b not back within 3s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = hammer(&c, &url, 200, 8).await;
    assert_eq!(after.failures(), 0, "{after:?}");
    assert!(after.from("b") > 50, "b is back in rotation: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_endpoint_takes_backend_out() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let check = "    health_check: { type: http, path: /healthz, interval: 100ms, timeout: 200ms, unhealthy_after: 1, healthy_after: 1 }\n";
    let cfg = format!(
        "{}routes:\n  - name: all\n    upstream: pool\n",
        pool(&[(&a, 1), (&b, 1)], check)
    );
    let gw = Gateway::start(&cfg).await;
    b.set_healthy(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = hammer(&client(), &gw.url("/x"), 100, 4).await;
    assert_eq!(t.failures(), 0);
    assert_eq!(t.from("a"), 100, "{t:?}");
    b.set_healthy(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = hammer(&client(), &gw.url("/x"), 100, 4).await;
    assert!(t.from("b") > 20, "{t:?}");
}
