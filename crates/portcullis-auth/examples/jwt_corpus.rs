//! Verifies every token of the shared JWT corpus in process, through the same path a request
//! takes (`Authenticator::check` on a `RequestView` with `Authorization: Bearer`), and reports
//! the cases whose verdict is wrong.
//!
//! ```text
//! cargo run -p portcullis-auth --example jwt_corpus -- KEYS_OR_CONFIG CASES.jsonl [ROUTE]
//! ```
//! KEYS_OR_CONFIG is either `jwt_keys.json` (a route config is written for its keys, the way
//! conf/examples/jwt/jwt-corpus.yaml does it) or a config file (ROUTE defaults to
//! `jwt-protected`). Exit status 1 when a `must` or `strict` case is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use portcullis_auth::{AuthShared, Authenticator};
use portcullis_core::{RequestView, SystemClock};

fn config_from_keys(keys_path: &Path, dir: &Path) -> String {
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys_path).expect("read keys")).expect("keys JSON");
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
            jwks_file: jwks.json
            hmac: {{ secret_file: hs256.secret }}
"#,
        iss = keys["issuer"].as_str().unwrap(),
        aud = keys["audience"].as_str().unwrap(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: jwt_corpus KEYS_OR_CONFIG CASES.jsonl [ROUTE]");
        std::process::exit(2);
    }
    let source = Path::new(&args[1]);
    let route_name = args.get(3).map_or("jwt-protected", String::as_str);
    let dir = std::env::temp_dir().join(format!("portcullis-jwt-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = if source.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        portcullis_config::load_path(source)
    } else {
        let text = config_from_keys(source, &dir);
        let file = dir.join("corpus.yaml");
        std::fs::write(&file, &text).unwrap();
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

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
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
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(i32::from(gating > 0));
}
