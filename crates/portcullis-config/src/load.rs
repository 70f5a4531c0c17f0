//! Reading config files and splitting them into items. I/O lives in [`load_path`]; everything
//! after reading is [`parse_sources`], which tests drive from strings.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::{ConfigError, Diagnostic, Diagnostics, Origin, Source};
use crate::model::Config;
use crate::raw::{RawAccessLog, RawAdmin, RawListener, RawRoute, RawServer, RawUpstream};
use crate::tree::{Kind, Node, YamlPath};
use crate::validate;

/// A raw item together with where it was written.
pub(crate) struct Item<T> {
    pub(crate) origin: Origin,
    pub(crate) raw: T,
}

/// Every item of every file, before validation.
#[derive(Default)]
pub(crate) struct RawSet {
    pub(crate) server: Vec<Item<RawServer>>,
    pub(crate) admin: Vec<Item<RawAdmin>>,
    pub(crate) access_log: Vec<Item<RawAccessLog>>,
    pub(crate) listeners: Vec<Item<RawListener>>,
    /// Listener entries written, including those that did not parse.
    pub(crate) listener_entries: usize,
    pub(crate) upstreams: Vec<(String, Item<RawUpstream>)>,
    /// Every pool name written, including pools whose definition did not parse.
    pub(crate) upstream_names: Vec<String>,
    pub(crate) routes: Vec<Item<RawRoute>>,
    pub(crate) redis: Vec<Item<crate::ratelimit::RawRedis>>,
    pub(crate) abuse: Vec<Item<crate::ratelimit::RawAbuse>>,
    pub(crate) ip_lists: Vec<Item<std::collections::BTreeMap<String, crate::ratelimit::RawIpList>>>,
    pub(crate) concurrency: Vec<Item<crate::ratelimit::RawConcurrency>>,
    /// The first file, where whole-config problems (no listener at all) are reported.
    pub(crate) first: Option<Arc<Source>>,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "server",
    "admin",
    "access_log",
    "listeners",
    "upstreams",
    "routes",
    "redis",
    "abuse",
    "ip_lists",
    "concurrency",
];

/// Loads a config file, or every `*.yaml` / `*.yml` file directly inside a directory (sorted by
/// name; hidden entries such as Kubernetes' `..data` are skipped).
pub fn load_path(path: &Path) -> Result<Config, ConfigError> {
    let files = config_files(path)?;
    let mut sources = Vec::with_capacity(files.len());
    let mut diags = Diagnostics::default();
    for file in files {
        match fs::read_to_string(&file) {
            Ok(text) => sources.push((file, text)),
            Err(e) => diags.push(io_diag(&file, &format!("cannot read file: {e}"))),
        }
    }
    diags.into_result(())?;
    parse_sources(sources)
}

/// The files a config path stands for.
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let meta = fs::metadata(path).map_err(|e| ConfigError {
        diagnostics: vec![io_diag(path, &format!("cannot read config path: {e}"))],
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = fs::read_dir(path).map_err(|e| ConfigError {
        diagnostics: vec![io_diag(path, &format!("cannot list config directory: {e}"))],
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
                && p.is_file()
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ConfigError {
            diagnostics: vec![io_diag(
                path,
                "no *.yaml or *.yml files in config directory",
            )],
        });
    }
    Ok(files)
}

fn io_diag(file: &Path, message: &str) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: 0,
        col: 0,
        path: YamlPath::default(),
        message: message.to_owned(),
    }
}

/// Parses and validates one YAML document given as text; `name` is used in error messages.
///
/// ```
/// let cfg = portcullis_config::parse_str("inline.yaml", r#"
/// listeners: [{ name: web, address: "127.0.0.1:8080" }]
/// upstreams:
///   app: { backends: [{ address: "127.0.0.1:9001" }] }
/// routes:
///   - { name: all, upstream: app }
/// "#).unwrap();
/// assert_eq!(cfg.routes[0].name, "all");
/// ```
pub fn parse_str(name: &str, text: &str) -> Result<Config, ConfigError> {
    parse_sources(vec![(PathBuf::from(name), text.to_owned())])
}

/// Parses and validates several files as one configuration.
pub fn parse_sources(files: Vec<(PathBuf, String)>) -> Result<Config, ConfigError> {
    let mut diags = Diagnostics::default();
    let mut set = RawSet::default();
    for (file, text) in files {
        match crate::tree::parse(&text) {
            Ok(root) => {
                let source = Arc::new(Source { file, root });
                split(&source, &mut set, &mut diags);
                if set.first.is_none() {
                    set.first = Some(source);
                }
            }
            Err((line, col, message)) => diags.push(Diagnostic {
                file,
                line,
                col,
                path: YamlPath::default(),
                message: format!("invalid YAML: {message}"),
            }),
        }
    }
    let config = validate::validate(set, &mut diags);
    diags.into_result(())?;
    config.ok_or_else(|| ConfigError {
        diagnostics: Vec::new(),
    })
}

fn split(source: &Arc<Source>, set: &mut RawSet, diags: &mut Diagnostics) {
    let origin = |path: YamlPath| Origin {
        source: Arc::clone(source),
        path,
    };
    let Kind::Map(entries) = &source.root.kind else {
        if !matches!(source.root.kind, Kind::Null) {
            diags.error(
                &origin(YamlPath::default()),
                "expected a mapping of config sections",
            );
        }
        return;
    };
    for (key, value) in entries {
        let name = key.key_text();
        let path = YamlPath::default().key(&name);
        match name.as_str() {
            "server" => push_item(source, value, path, &mut set.server, diags),
            "admin" => push_item(source, value, path, &mut set.admin, diags),
            "access_log" => push_item(source, value, path, &mut set.access_log, diags),
            "redis" => push_item(source, value, path, &mut set.redis, diags),
            "abuse" => push_item(source, value, path, &mut set.abuse, diags),
            "ip_lists" => push_item(source, value, path, &mut set.ip_lists, diags),
            "concurrency" => push_item(source, value, path, &mut set.concurrency, diags),
            "listeners" => {
                if let Kind::Seq(items) = &value.kind {
                    set.listener_entries += items.len();
                }
                each_in_seq(source, value, &path, &mut set.listeners, diags);
            }
            "routes" => each_in_seq(source, value, &path, &mut set.routes, diags),
            "upstreams" => match &value.kind {
                Kind::Map(pools) => {
                    for (pool_key, pool) in pools {
                        let pool_name = pool_key.key_text();
                        set.upstream_names.push(pool_name.clone());
                        let mut items = Vec::new();
                        push_item(source, pool, path.key(&pool_name), &mut items, diags);
                        set.upstreams
                            .extend(items.into_iter().map(|i| (pool_name.clone(), i)));
                    }
                }
                Kind::Null => {}
                _ => diags.error(
                    &origin(path),
                    "expected a mapping of upstream names to pools",
                ),
            },
            other => {
                let at = Origin {
                    source: Arc::clone(source),
                    path,
                };
                let (line, col) = (key.line, key.col);
                diags.push(Diagnostic {
                    file: at.source.file.clone(),
                    line,
                    col,
                    path: at.path,
                    message: format!(
                        "unknown section `{other}`, expected one of: {}",
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                });
            }
        }
    }
}

fn each_in_seq<T: DeserializeOwned>(
    source: &Arc<Source>,
    node: &Node,
    path: &YamlPath,
    out: &mut Vec<Item<T>>,
    diags: &mut Diagnostics,
) {
    match &node.kind {
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                push_item(source, item, path.index(i), out, diags);
            }
        }
        Kind::Null => {}
        _ => diags.error(
            &Origin {
                source: Arc::clone(source),
                path: path.clone(),
            },
            "expected a list",
        ),
    }
}

/// Deserializes one item on its own, so an error in it never hides errors in its siblings.
fn push_item<T: DeserializeOwned>(
    source: &Arc<Source>,
    node: &Node,
    path: YamlPath,
    out: &mut Vec<Item<T>>,
    diags: &mut Diagnostics,
) {
    match serde_path_to_error::deserialize::<_, T>(node.to_json()) {
        Ok(raw) => out.push(Item {
            origin: Origin {
                source: Arc::clone(source),
                path,
            },
            raw,
        }),
        Err(e) => {
            let mut full = path.clone();
            for seg in e.path().iter() {
                match seg {
                    serde_path_to_error::Segment::Seq { index } => full = full.index(*index),
                    serde_path_to_error::Segment::Map { key } => full = full.key(key),
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => {}
                }
            }
            let message = e.inner().to_string();
            let unknown = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned);
            let (line, col, shown) = match unknown {
                Some(field) => {
                    // serde_path_to_error already ends the path with the unknown key.
                    let mut parent = full.clone();
                    if parent.0.last() == Some(&crate::tree::Seg::Key(field.clone())) {
                        parent.0.pop();
                    }
                    let (l, c) = source.root.locate_key(&parent.0, &field);
                    (l, c, parent.key(&field))
                }
                None => {
                    let (l, c) = source.root.locate(&full.0);
                    (l, c, full)
                }
            };
            diags.push(Diagnostic {
                file: source.file.clone(),
                line,
                col,
                path: shown,
                message,
            });
        }
    }
}
