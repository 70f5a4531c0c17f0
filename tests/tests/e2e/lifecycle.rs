//! Reloads under load, rejected reloads, graceful shutdown and access-log redaction.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::{base_config, client, free_port, pool, Backend, Gateway};

fn routes(tag: &str) -> String {
    format!("routes:\n  - name: all\n    upstream: pool\n    response_headers:\n      set: {{ X-Config: {tag} }}\n")
}

/// What a request stream saw: answers with the instant each request was sent and the config
/// tag that answered, and failures.
#[derive(Debug, Default)]
struct StreamResult {
    answers: Vec<(Instant, String)>,
    failures: Vec<String>,
}

/// Sends about `rps` requests per second until `stop`.
fn stream(url: String, rps: u64, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<StreamResult> {
    tokio::spawn(async move {
        let c = client();
        let out = Arc::new(parking_lot::Mutex::new(StreamResult::default()));
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rps));
        let mut tasks = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let (c, url, out) = (c.clone(), url.clone(), Arc::clone(&out));
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let tag = r
                            .headers()
                            .get("x-config")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        match r.bytes().await {
                            Ok(_) => out.lock().answers.push((sent, tag)),
                            Err(e) => out.lock().failures.push(format!("body: {e}")),
                        }
                    }
                    Ok(r) => out.lock().failures.push(format!("status {}", r.status())),
                    Err(e) => out.lock().failures.push(e.to_string()),
                }
            }));
        }
        for t in tasks {
            t.await.expect("request task");
        }
        let result = std::mem::take(&mut *out.lock());
        result
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_under_load_loses_nothing_and_bad_reload_keeps_old_config() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let v1 = base_config(
        addr,
        admin,
        &format!("{}{}", pool(&[(&a, 1)], ""), routes("one")),
    );
    let gw = Gateway::start_with(&v1, addr, admin).await;

    let stop = Arc::new(AtomicBool::new(false));
    let handle = stream(gw.url("/stream"), 300, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A valid reload that changes both the route's headers and the pool.
    let v2 = base_config(
        addr,
        admin,
        &format!("{}{}", pool(&[(&b, 1)], ""), routes("two")),
    );
    let before_reload = Instant::now();
    gw.write_config(&v2);
    gw.signal(Signal::SIGHUP);
    let ok_reload = "result=\"ok\"";
    while gw
        .metric("portcullis_config_reloads_total", &[ok_reload])
        .await
        < 1.0
    {
        assert!(
            before_reload.elapsed() < Duration::from_secs(10),
            "reload never finished: {}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let settled = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // An invalid one: rejected, the old config keeps serving.
    let failed_before = gw
        .metric("portcullis_config_reloads_total", &["result=\"failed\""])
        .await;
    gw.write_config(&format!("{v2}  - name: broken\n    upstream: nowhere\n"));
    gw.signal(Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let result = handle.await.expect("stream");

    let f = &result.failures;
    assert!(
        f.is_empty(),
        "{} failed of {}: {:?}",
        f.len(),
        f.len() + result.answers.len(),
        &f[..f.len().min(5)]
    );
    assert!(
        result.answers.len() > 1000,
        "only {} requests in 4.5 s",
        result.answers.len()
    );
    for (sent, tag) in &result.answers {
        if *sent < before_reload {
            assert_eq!(
                tag, "one",
                "a request sent before the reload saw the new config"
            );
        } else if *sent > settled {
            assert_eq!(
                tag, "two",
                "a request sent after the reload finished (and after the bad one) saw the old config"
            );
        }
    }
    assert!(result.answers.iter().any(|(s, _)| *s < before_reload));
    assert!(b.hits() > 200, "the new pool served: {}", b.hits());
    let failed_after = gw
        .metric("portcullis_config_reloads_total", &["result=\"failed\""])
        .await;
    assert!(
        (failed_after - failed_before - 1.0).abs() < f64::EPSILON,
        "failed reloads {failed_before} -> {failed_after}"
    );
    assert!(
        gw.metric("portcullis_config_reloads_total", &["result=\"ok\""])
            .await
            >= 1.0
    );
    assert!(
        gw.stderr().contains("unknown upstream") || gw.stderr().contains("nowhere"),
        "errors logged: {}",
        gw.stderr()
    );
    let r = client().get(gw.url("/after")).send().await.unwrap();
    assert_eq!(r.headers().get("x-config").unwrap(), "two");
}

/// Memory and CPU priority (docs/operations.md): the process opts out of transparent huge pages,
/// and the thread that rebuilds a config on reload runs below the request threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_huge_pages_and_reloads_run_below_request_threads() {
    let a = Backend::start("a").await;
    let gw = Gateway::start(&format!("{}{}", pool(&[(&a, 1)], ""), routes("one"))).await;
    let proc_dir = format!("/proc/{}", gw.pid());
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["THP_enabled:", "0"])),
        "transparent huge pages not disabled:\n{status}"
    );
    // Thread name -> nice value (field 19 of /proc/PID/task/TID/stat; the name in field 2 may
    // hold spaces, so count from the last ')').
    let mut nice = std::collections::HashMap::new();
    for task in std::fs::read_dir(format!("{proc_dir}/task")).unwrap() {
        let task = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("stat")),
        ) else {
            continue; // a thread that ended meanwhile
        };
        let (_, fields) = stat.rsplit_once(')').unwrap();
        let value: i32 = fields.split_whitespace().nth(16).unwrap().parse().unwrap();
        nice.insert(comm.trim_end().to_string(), value);
    }
    assert_eq!(nice.get("reloader"), Some(&10), "{nice:?}");
    assert_eq!(nice.get("listener public"), Some(&0), "{nice:?}");
    // A reload on that thread still completes.
    let c = client();
    let tag = |r: reqwest::Response| r.headers()["x-config"].to_str().unwrap().to_string();
    assert_eq!(tag(c.get(gw.url("/")).send().await.unwrap()), "one");
    gw.write_config(&base_config(
        gw.addr,
        gw.admin,
        &format!("{}{}", pool(&[(&a, 1)], ""), routes("two")),
    ));
    gw.signal(Signal::SIGHUP);
    let start = Instant::now();
    while tag(c.get(gw.url("/")).send().await.unwrap()) != "two" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not reloaded: {}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_watch_picks_up_a_new_file() {
    let a = Backend::start("a").await;
    let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let v1 = base_config(
        addr,
        admin,
        &format!("{}{}", pool(&[(&a, 1)], ""), routes("one")),
    )
    .replace(
        "watch_config: false",
        "watch_config: true\n  reload_debounce: 100ms",
    );
    let gw = Gateway::start_with(&v1, addr, admin).await;
    let c = client();
    assert_eq!(c.get(gw.url("/status")).send().await.unwrap().status(), 200);
    std::fs::write(
        gw.dir.path().join("maintenance.yaml"),
        "routes:\n  - name: status\n    match: { path_exact: /status }\n    direct_response: { status: 418, body: teapot }\n",
    )
    .unwrap();
    let start = Instant::now();
    loop {
        if c.get(gw.url("/status")).send().await.unwrap().status() == 418 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "new file not picked up: {}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let a = Backend::start("a").await;
    let cfg = format!(
        "{}routes:\n  - name: all\n    upstream: pool\n",
        pool(&[(&a, 1)], "")
    );
    let mut gw = Gateway::start(&cfg).await;
    let c = client();
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let (c, url) = (c.clone(), gw.url("/slow?ms=1500"));
            tokio::spawn(async move {
                let r = c.get(url).send().await?;
                let status = r.status();
                let body = r.text().await?;
                Ok::<_, reqwest::Error>((status, body))
            })
        })
        .collect();
    // Let the requests reach the backend.
    let start = Instant::now();
    while a.hits() < 4 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.signal(Signal::SIGTERM);
    for s in slow {
        let (status, body) = s.await.unwrap().expect("slow request completes");
        assert_eq!(status, 200);
        assert_eq!(body, "a GET /slow?ms=1500 0\n");
    }
    let status = gw.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_access_log() {
    let a = Backend::start("a").await;
    let cfg = format!(
        "access_log:\n  enabled: true\n  redact_query_params: [session]\n{}routes:\n  - name: all\n    upstream: pool\n",
        pool(&[(&a, 1)], "")
    );
    let gw = Gateway::start(&cfg).await;
    let c = client();
    let r = c
        .get(gw.url("/login?user=ann&session=S3cr3tSess&api_key=K3yK3yK3y&Access_Token=T0k3nT0k3n"))
        .header("Authorization", "Bearer B3arerB3arer")
        .header("Cookie", "sid=C00kieC00kie")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = gw.wait_log_lines(1).await;
    assert_eq!(lines.len(), 1, "one line per request");
    let line = &lines[0];
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "all");
    assert_eq!(line["method"], "GET");
    assert!(line["request_id"].is_string());
    let path = line["path"].as_str().unwrap();
    assert!(path.starts_with("/login?user=ann&"), "{path}");
    let all = format!("{}{}", gw.stdout(), gw.stderr());
    for secret in [
        "S3cr3tSess",
        "K3yK3yK3y",
        "T0k3nT0k3n",
        "B3arerB3arer",
        "C00kieC00kie",
    ] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    // The backend did get them: redaction is for logs only.
    assert!(a.last().target.contains("S3cr3tSess"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_gateway_takes_over_the_port_while_the_first_drains() {
    // Connections the kernel queued on the old listener are moved to the new one when the old
    // closes only with tcp_migrate_req (docs/deployment.md asks for it); without it a handover
    // can reset the few connections in the old accept queue.
    let _migrate = MigrateRequests::enable();
    let a = Backend::start("a").await;
    let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin_old = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin_new = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let rest = format!("{}{}", pool(&[(&a, 1)], ""), routes("one"));
    // The old process keeps accepting for 1 s after SIGTERM (load balancers, or here the kernel's
    // SO_REUSEPORT group, stop sending it new connections), then drains.
    let config =
        |admin| base_config(addr, admin, &rest).replace("grace_period: 0s", "grace_period: 1s");
    let mut old = Gateway::start_with(&config(admin_old), addr, admin_old).await;

    let stop = Arc::new(AtomicBool::new(false));
    let handle = stream(old.url("/rollover"), 200, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The new process binds the same port (SO_REUSEPORT) while the old one still serves.
    let new = Gateway::start_with(&config(admin_new), addr, admin_new).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    old.signal(Signal::SIGTERM);
    let status = old.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    let result = handle.await.expect("stream");
    let f = &result.failures;
    assert!(
        f.is_empty(),
        "{} of {} failed during the rollover: {:?}",
        f.len(),
        f.len() + result.answers.len(),
        &f[..f.len().min(5)]
    );
    assert!(result.answers.len() > 400, "{}", result.answers.len());
    // Everything after the old process exited was served by the new one.
    let r = client().get(new.url("/after")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Turns `net.ipv4.tcp_migrate_req` on for the test and restores it after.
struct MigrateRequests(Option<String>);

impl MigrateRequests {
    const PATH: &'static str = "/proc/sys/net/ipv4/tcp_migrate_req";

    fn enable() -> MigrateRequests {
        let before = std::fs::read_to_string(Self::PATH).unwrap_or_default();
        if before.trim() == "1" {
            return MigrateRequests(None);
        }
        std::fs::write(Self::PATH, "1").expect("tcp_migrate_req is writable (tests run as root)");
        MigrateRequests(Some(before))
    }
}

impl Drop for MigrateRequests {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = std::fs::write(Self::PATH, before.trim());
        }
    }
}
