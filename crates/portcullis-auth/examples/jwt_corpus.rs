//! Verifies every token of the shared JWT corpus in process, through the same path a request
//! takes (`Authenticator::check` on a `RequestView` with `Authorization: Bearer`), and reports
//! the cases whose verdict is wrong.
//!
//! ```text
//! cargo run -p portcullis-auth --example jwt_corpus -- [--serve-jwks] KEYS_OR_CONFIG CASES.jsonl [ROUTE]
//! ```
//! KEYS_OR_CONFIG is either `jwt_keys.json` (a route config is written for its keys, the way
//! conf/examples/jwt/jwt-corpus.yaml does it) or a config file (ROUTE defaults to
//! `jwt-protected`). With `--serve-jwks` (keys file only) the JWKS is served by a loopback HTTP
//! server and trusted through `jwks_url`, so unknown `kid`s go through the real re-fetch path.
//! Exit status 1 when a `must` or `strict` case is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use portcullis_auth::{AuthMetrics, AuthShared, Authenticator};
use portcullis_core::{RequestView, SystemClock};

/// Where the generated route finds the corpus JWKS.
enum JwksFrom {
    File,
    Url(String),
}

fn config_from_keys(keys: &serde_json::Value, dir: &Path, jwks: &JwksFrom) -> String {
    std::fs::write(
        dir.join("jwks.json"),
        serde_json::to_vec(&keys["jwks"]).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("hs256.secret"),
        keys["hs256_secret"].as_str().expect("hs256_secret"),
    )
    .unwrap();
    let source = match jwks {
        JwksFrom::File => "jwks_file: jwks.json".to_owned(),
        JwksFrom::Url(url) => format!("jwks_url: \"{url}\""),
    };
    format!(
        r#"listeners: [{{ name: web, address: "127.0.0.1:8080" }}]
upstreams: {{ app: {{ backends: [{{ address: "127.0.0.1:9001" }}] }} }}
routes:
  - name: jwt-protected
    upstream: app
    auth:
      jwt:
        issuers:
          - issuer: {iss}
            audiences: [{aud}]
            algorithms: [RS256, ES256, HS256]
            {source}
            hmac: {{ secret_file: hs256.secret }}
"#,
        iss = keys["issuer"].as_str().unwrap(),
        aud = keys["audience"].as_str().unwrap(),
    )
}

/// Serves `body` as JSON to every request on 127.0.0.1:0; returns the URL.
async fn serve_jwks(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    url
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let serve = args.iter().any(|a| a == "--serve-jwks");
    args.retain(|a| a != "--serve-jwks");
    if args.len() < 3 {
        eprintln!("usage: jwt_corpus [--serve-jwks] KEYS_OR_CONFIG CASES.jsonl [ROUTE]");
        std::process::exit(2);
    }
    let source = Path::new(&args[1]);
    let route_name = args.get(3).map_or("jwt-protected", String::as_str);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("portcullis-jwt-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = if source
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml")
    {
        portcullis_config::load_path(source)
    } else {
        let keys: serde_json::Value =
            serde_json::from_slice(&std::fs::read(source).expect("read keys")).expect("keys JSON");
        let jwks = if serve {
            JwksFrom::Url(rt.block_on(serve_jwks(keys["jwks"].to_string())))
        } else {
            JwksFrom::File
        };
        let file = dir.join("corpus.yaml");
        std::fs::write(&file, config_from_keys(&keys, &dir, &jwks)).unwrap();
        portcullis_config::load_path(&file)
    }
    .unwrap_or_else(|e| panic!("config:\n{e}"));
    let route = config
        .routes
        .iter()
        .find(|r| r.name == route_name)
        .expect("route");
    let shared = AuthShared::new(Arc::new(SystemClock)).unwrap();
    let auth = Authenticator::from_spec(route.auth.as_ref().expect("auth"), &shared).unwrap();
    // Warm the JWKS caches the way the gateway does after building its routes.
    rt.block_on(shared.refresh_due());

    let mut tally: BTreeMap<(String, bool), usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for line in std::fs::read_to_string(&args[2]).unwrap().lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let token = case["token"].as_str().unwrap_or("");
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        let req = RequestView {
            method: "GET",
            path: "/jwt-protected",
            query: None,
            host: Some("127.0.0.1"),
            headers: &headers,
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            route: route_name,
        };
        let verdict = rt.block_on(auth.check(&req, None));
        let status = match &verdict {
            Ok(_) => 200,
            Err(d) => d.status,
        };
        let accept = case["expect"] == "accept";
        let ok = if accept {
            status == 200
        } else {
            status == 401 || status == 403
        };
        let level = case["level"].as_str().unwrap_or("?").to_owned();
        *tally.entry((level.clone(), ok)).or_default() += 1;
        if !ok {
            let detail = verdict.err().and_then(|d| d.log_detail).unwrap_or_default();
            wrong.push(format!(
                "WRONG  {level}  {}  expect={}  got={status}  {detail}",
                case["id"].as_str().unwrap_or("?"),
                case["expect"].as_str().unwrap_or("?")
            ));
        }
    }
    for level in ["must", "strict", "policy"] {
        println!(
            "{level:<7} ok {:>3}  wrong {:>3}",
            tally.get(&(level.to_owned(), true)).unwrap_or(&0),
            tally.get(&(level.to_owned(), false)).unwrap_or(&0)
        );
    }
    for w in &wrong {
        println!("{w}");
    }
    let gating = wrong
        .iter()
        .filter(|w| w.contains("  must  ") || w.contains("  strict  "))
        .count();
    println!("{} wrong, {gating} of them gating", wrong.len());
    let m = shared.metrics();
    println!(
        "jwks fetches {} (unknown kid {}, throttled {})",
        AuthMetrics::get(&m.jwks_fetches),
        AuthMetrics::get(&m.jwks_unknown_kid_fetches),
        AuthMetrics::get(&m.jwks_unknown_kid_throttled)
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(i32::from(gating > 0));
}
