use std::path::PathBuf;

use super::*;

const BASE: &str = r#"
listeners:
  - { name: web, address: "127.0.0.1:8080" }
upstreams:
  app:
    backends: [{ address: "127.0.0.1:9001", weight: 3 }, { address: "127.0.0.1:9002" }]
"#;

fn errors(text: &str) -> Vec<String> {
    parse_str("t.yaml", text)
        .unwrap_err()
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn accepts_a_minimal_config_with_defaults() {
    let cfg = parse_str(
        "t.yaml",
        &format!("{BASE}routes: [{{ name: all, upstream: app }}]"),
    )
    .unwrap();
    assert_eq!(cfg.server.threads, 1);
    assert_eq!(cfg.upstreams["app"].backends[0].weight.get(), 3);
    assert_eq!(cfg.upstreams["app"].retries, 1);
    assert!(cfg
        .access_log
        .redact_query_params
        .contains(&"token".to_owned()));
}

#[test]
fn reports_five_mistakes_with_file_line_column_and_path() {
    let text = r#"listeners:
  - { name: web, address: "127.0.0.1:8080" }
upstreams:
  app:
    backends: [{ address: "127.0.0.1:9001", weight: 0 }]
    timeouts: { connect: 2 parsecs }
routes:
  - name: a
    upstream: nowhere
  - name: b
    upstream: app
    match: { path_regex: "(" }
  - name: c
    upstream: app
    colour: blue
"#;
    let errs = errors(text);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs[0].starts_with("t.yaml:5:"), "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t.yaml:5:53: upstreams.app.backends[0].weight: weight 0")),
        "{errs:#?}"
    );
    assert!(errs.iter().any(|e| e.starts_with("t.yaml:6:26: upstreams.app.timeouts.connect: invalid duration")), "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t.yaml:9:15: routes[0].upstream: unknown upstream `nowhere`")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e
            .starts_with("t.yaml:12:26: routes[1].match.path_regex: invalid regular expression")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t.yaml:15:5: routes[2].colour: unknown field `colour`")),
        "{errs:#?}"
    );
}

#[test]
fn rejects_wrong_types_and_bad_addresses() {
    let errs = errors(
        "listeners:\n  - { name: web, address: localhost }\nupstreams:\n  app: { backends: [{ address: \"127.0.0.1:9001\", weight: many }] }\nroutes: [{ name: r, upstream: app }]\n",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with("t.yaml:2:27: listeners[0].address: invalid address \"localhost\""),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("t.yaml:4:58: upstreams.app.backends[0].weight: invalid type"),
        "{errs:#?}"
    );
}

#[test]
fn rejects_duplicate_names_across_files() {
    let a = format!("{BASE}routes: [{{ name: r, upstream: app }}]");
    let b = "upstreams:\n  app: { backends: [{ address: \"127.0.0.1:9003\" }] }\nroutes: [{ name: r, upstream: app }]\n";
    let err = parse_sources(vec![
        (PathBuf::from("a.yaml"), a),
        (PathBuf::from("b.yaml"), b.to_owned()),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("b.yaml:2:8: upstreams.app: duplicate upstream name `app`"),
        "{text}"
    );
    assert!(
        text.contains("b.yaml:3:18: routes[0].name: duplicate route name `r`"),
        "{text}"
    );
}

#[test]
fn rejects_invalid_yaml_and_unknown_sections() {
    let errs = errors("listeners: [\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("t.yaml:"), "{errs:?}");
    assert!(errs[0].contains("invalid YAML"), "{errs:?}");
    let errs = errors(&format!(
        "{BASE}routs: []\nroutes: [{{ name: r, upstream: app }}]"
    ));
    assert!(
        errs[0].contains("routs: unknown section `routs`"),
        "{errs:?}"
    );
}

#[test]
fn requires_a_listener() {
    let errs = errors("upstreams:\n  app: { backends: [{ address: \"127.0.0.1:1\" }] }\n");
    assert!(errs[0].contains("no listener is defined"), "{errs:?}");
}

#[test]
fn orders_routes_by_priority_then_specificity_then_declaration() {
    let text = format!(
        "{BASE}routes:
  - {{ name: catch-all, upstream: app }}
  - {{ name: prefix-short, upstream: app, match: {{ path_prefix: /a }} }}
  - {{ name: prefix-long, upstream: app, match: {{ path_prefix: /a/b }} }}
  - {{ name: exact, upstream: app, match: {{ path_exact: /a/b/c }} }}
  - {{ name: wildcard-host, upstream: app, match: {{ hosts: ['*.example.com'] }} }}
  - {{ name: exact-host, upstream: app, match: {{ hosts: [api.example.com] }} }}
  - {{ name: boosted, upstream: app, priority: 10 }}
  - {{ name: regex, upstream: app, match: {{ path_regex: '/r/[0-9]+' }} }}
"
    );
    let cfg = parse_str("t.yaml", &text).unwrap();
    let names: Vec<&str> = cfg.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "boosted",
            "exact-host",
            "wildcard-host",
            "exact",
            "prefix-long",
            "prefix-short",
            "regex",
            "catch-all"
        ]
    );
}

#[test]
fn rejects_weights_below_one_and_routes_with_two_actions() {
    let errs = errors(&format!(
        "{BASE}routes:\n  - name: r\n    upstream: app\n    direct_response: {{ status: 200 }}\n"
    ));
    assert!(
        errs[0].contains("routes[0].direct_response: a route has either"),
        "{errs:?}"
    );
}

#[test]
fn loads_a_directory_skipping_hidden_entries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("10-base.yaml"), BASE).unwrap();
    std::fs::write(
        dir.path().join("20-routes.yml"),
        "routes: [{ name: r, upstream: app }]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("..data")).unwrap();
    std::fs::write(dir.path().join("..data/bad.yaml"), "nonsense: [").unwrap();
    std::fs::write(dir.path().join("README.md"), "not config").unwrap();
    let cfg = load_path(dir.path()).unwrap();
    assert_eq!(cfg.routes.len(), 1);
}

#[test]
fn reports_unreadable_paths_without_panicking() {
    let err = load_path(std::path::Path::new("/nonexistent/portcullis")).unwrap_err();
    assert!(err.to_string().contains("cannot read config path"), "{err}");
}

#[test]
fn schema_names_every_section() {
    let schema = json_schema();
    for key in [
        "listeners",
        "upstreams",
        "routes",
        "admin",
        "server",
        "access_log",
    ] {
        assert!(schema.contains(&format!("\"{key}\"")), "{key}");
    }
}

#[test]
fn client_connection_limits_default_and_reject_zero_with_locations() {
    let base = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { backends: [{ address: \"127.0.0.1:9001\" }] } }\nroutes: [{ name: r, upstream: app }]\n";
    let c = crate::parse_str("t.yaml", base).unwrap();
    assert_eq!(
        c.server.request_header_timeout,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(
        c.server.client_body_timeout,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(
        c.server.keepalive_timeout,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(c.server.keepalive_requests, 1000);
    assert_eq!(c.server.max_connections, 16_384);
    let text = format!(
        "server:\n  request_header_timeout: 0s\n  keepalive_timeout: soon\n  max_connections: 0\n{base}"
    );
    let errs: Vec<String> = crate::parse_str("t.yaml", &text)
        .unwrap_err()
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with(
            "t.yaml:2:27: server.request_header_timeout: expected a duration above zero"
        ),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t.yaml:3:22: server.keepalive_timeout:")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t.yaml:4:20: server.max_connections: 0 is out of range")),
        "{errs:#?}"
    );
}
