//! The command line: `check`, `schema`, `--version`, run against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn portcullis() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

const FIVE_MISTAKES: &str = r#"listeners:
  - name: public
    address: "127.0.0.1:8080"
    colour: blue
upstreams:
  app:
    backends:
      - { address: "127.0.0.1:9001", weight: 0 }
    timeouts: { connect: soon }
routes:
  - name: api
    match: { path_regex: "^/api/(" }
    upstream: app
  - name: other
    upstream: missing
"#;

#[test]
fn check_prints_every_mistake_located_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, FIVE_MISTAKES).unwrap();
    let out = portcullis()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with(file.to_str().unwrap()))
        .collect();
    assert_eq!(lines.len(), 5, "one line per mistake:\n{stderr}");
    let want = [
        (4, "listeners[0].colour", "unknown field"),
        (8, "upstreams.app.backends[0].weight", "weight"),
        (9, "upstreams.app.timeouts.connect", "duration"),
        (12, "routes[0].match.path_regex", "regex"),
        (15, "routes[1].upstream", "missing"),
    ];
    for (line_no, path, words) in want {
        let prefix = format!("{}:{line_no}:", file.display());
        let hit = lines
            .iter()
            .find(|l| l.starts_with(&prefix) && l.contains(&format!(": {path}: ")));
        let hit = hit.unwrap_or_else(|| panic!("no error at line {line_no} for {path}:\n{stderr}"));
        assert!(hit.to_lowercase().contains(words), "{hit}");
        // file:line:col: path: message
        let rest = &hit[prefix.len()..];
        let (col, _) = rest.split_once(':').unwrap();
        assert!(col.parse::<u32>().is_ok(), "column in {hit}");
    }
}

#[test]
fn check_accepts_the_shipped_configs() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conf");
    let out = portcullis()
        .args(["check", "--config", conf])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_of_a_missing_path_exits_2_with_a_message() {
    let out = portcullis()
        .args(["check", "--config", "/nonexistent/portcullis"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/portcullis"));
}

#[test]
fn schema_is_json_describing_the_top_level_sections() {
    let out = portcullis().arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "listeners",
        "upstreams",
        "routes",
        "server",
        "admin",
        "access_log",
    ] {
        assert!(
            schema["properties"].get(key).is_some(),
            "schema lacks {key}"
        );
    }
}

#[test]
fn version_names_the_crate_version() {
    let out = portcullis().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
