//! WAF settings of a route (`routes[].waf`). Owned by the WAF work (portcullis-waf compiles a
//! [`WafSpec`] into detectors). Every key is optional; the defaults are the lowest-sensitivity
//! blocking profile documented in docs/waf.md.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::{Diagnostics, Origin};

/// `routes[].waf` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWaf {
    /// `off`, `detect` or `block` (default block).
    pub mode: Option<String>,
    /// Sensitivity (paranoia) level 1..=4 (default 1, the fewest false positives).
    pub paranoia: Option<u8>,
    /// Anomaly score at or above which a request is blocked (default 5).
    pub threshold: Option<u32>,
    /// Rules switched off, for the whole route or for one target.
    #[serde(default)]
    pub exclusions: Vec<RawWafExclusion>,
    /// Request body inspection.
    pub body: Option<RawWafBody>,
    /// Hard size limits.
    pub limits: Option<RawWafLimits>,
    /// Positive (zero-trust) model: anything not listed is refused.
    pub positive: Option<RawWafPositive>,
    /// Response data-loss prevention.
    pub response_dlp: Option<RawWafDlp>,
}

/// One exclusion as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWafExclusion {
    /// Rule id to switch off.
    pub rule: u32,
    /// Only for this target (`args:q`, `header:user-agent`, `cookie:sid`, `body`, `body:field`,
    /// `path`); all targets when absent.
    pub target: Option<String>,
}

/// `waf.body` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWafBody {
    /// Bytes of the body buffered and inspected (default 131072; 0 disables body inspection).
    pub inspect_bytes: Option<u64>,
    /// `inspect_prefix` (default) or `reject` (413) for bodies above `inspect_bytes`.
    pub oversize: Option<String>,
}

/// `waf.limits` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWafLimits {
    /// Longest path plus query in bytes (default 8192) -> 414.
    pub uri_bytes: Option<u64>,
    /// Most request headers (default 100) -> 431.
    pub header_count: Option<u64>,
    /// Largest single header (name plus value) in bytes (default 8192) -> 431.
    pub header_bytes: Option<u64>,
    /// Largest total of all headers in bytes (default 32768) -> 431.
    pub headers_total_bytes: Option<u64>,
    /// Largest declared body (Content-Length) in bytes (default 10485760) -> 413.
    pub body_bytes: Option<u64>,
    /// Deepest JSON nesting (default 32) -> 403.
    pub json_depth: Option<u64>,
    /// Most JSON values (scalars, arrays, objects) in a body (default 10000) -> 403.
    pub json_elements: Option<u64>,
    /// Most query or form arguments (default 256) -> 403.
    pub arg_count: Option<u64>,
}

/// `waf.positive` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWafPositive {
    /// Allowed methods (upper case); any when absent.
    pub methods: Option<Vec<String>>,
    /// Allowed request content types (media type without parameters); any when absent.
    pub content_types: Option<Vec<String>>,
    /// Allowed query/form parameter names and their types (`string`, `integer`, `number`,
    /// `boolean`, `uuid`, `alnum`, or `regex:<pattern>`); any when absent.
    pub params: Option<BTreeMap<String, String>>,
    /// JSON Schema (subset) every JSON request body must satisfy.
    pub body_schema: Option<serde_json::Value>,
}

/// `waf.response_dlp` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWafDlp {
    /// `mask` (default) or `block` (502 to the client).
    pub action: Option<String>,
    /// What to look for: `cards`, `national_ids`, `secrets` (default all three).
    pub detect: Option<Vec<String>>,
    /// Response bytes inspected (default 1048576); larger bodies pass uninspected past it.
    pub inspect_bytes: Option<u64>,
}

/// What the WAF does with a request that scores over the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafMode {
    /// Not inspected.
    Off,
    /// Inspected, logged and counted, never blocked.
    Detect,
    /// Blocked with 403.
    Block,
}

/// Validated WAF settings of a route. Flat on purpose: only `WafMode` and `WafSpec` are
/// re-exported by this crate, so every other field uses std types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafSpec {
    /// Mode.
    pub mode: WafMode,
    /// Paranoia level 1..=4.
    pub paranoia: u8,
    /// Anomaly threshold.
    pub threshold: u32,
    /// Exclusions: rule id and target (`args:q`, `header:user-agent`, `body`, ...), or every
    /// target when `None`. A target without a name (`args`, `body`) covers every named target
    /// of that kind. Header and cookie names are lowercase.
    pub exclusions: Vec<(u32, Option<String>)>,
    /// Body bytes inspected (0 = no body inspection).
    pub body_inspect_bytes: usize,
    /// Refuse (413) bodies larger than `body_inspect_bytes` instead of inspecting the prefix.
    pub reject_oversize_body: bool,
    /// Longest path plus query in bytes (414).
    pub limit_uri_bytes: usize,
    /// Most request headers (431).
    pub limit_header_count: usize,
    /// Largest single header, name plus value, in bytes (431).
    pub limit_header_bytes: usize,
    /// Largest total size of all headers in bytes (431).
    pub limit_headers_total_bytes: usize,
    /// Largest body in bytes (413).
    pub limit_body_bytes: usize,
    /// Deepest JSON nesting.
    pub limit_json_depth: usize,
    /// Most JSON values in a body.
    pub limit_json_elements: usize,
    /// Most query or form arguments.
    pub limit_arg_count: usize,
    /// Positive model: allowed methods, `None` = any.
    pub positive_methods: Option<Vec<String>>,
    /// Positive model: allowed content types (lowercase media types), `None` = any.
    pub positive_content_types: Option<Vec<String>>,
    /// Positive model: allowed parameter names with their type (`string`, `integer`, `number`,
    /// `boolean`, `uuid`, `alnum` or `regex:PATTERN`, validated), `None` = any.
    pub positive_params: Option<BTreeMap<String, String>>,
    /// Positive model: JSON Schema every JSON body must satisfy.
    pub positive_body_schema: Option<serde_json::Value>,
    /// Response DLP: bytes inspected (0 = DLP off).
    pub dlp_inspect_bytes: usize,
    /// Response DLP: block (true) or mask (false) a match.
    pub dlp_block: bool,
    /// Response DLP: look for payment card numbers (Luhn-checked).
    pub dlp_cards: bool,
    /// Response DLP: look for national identifiers.
    pub dlp_national_ids: bool,
    /// Response DLP: look for secrets and keys.
    pub dlp_secrets: bool,
}

impl Default for WafSpec {
    /// Block mode at paranoia 1, threshold 5, 128 KiB of body inspected, default limits, no
    /// positive model, no DLP.
    fn default() -> Self {
        Self {
            mode: WafMode::Block,
            paranoia: 1,
            threshold: 5,
            exclusions: Vec::new(),
            body_inspect_bytes: 128 * 1024,
            reject_oversize_body: false,
            limit_uri_bytes: 8192,
            limit_header_count: 100,
            limit_header_bytes: 8192,
            limit_headers_total_bytes: 32768,
            limit_body_bytes: 10 * 1024 * 1024,
            limit_json_depth: 32,
            limit_json_elements: 10_000,
            limit_arg_count: 256,
            positive_methods: None,
            positive_content_types: None,
            positive_params: None,
            positive_body_schema: None,
            dlp_inspect_bytes: 0,
            dlp_block: false,
            dlp_cards: false,
            dlp_national_ids: false,
            dlp_secrets: false,
        }
    }
}

const TARGET_KINDS: &[&str] = &["args", "header", "cookie", "body", "path", "method", "xml"];

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

pub(crate) fn validate(raw: &RawWaf, o: &Origin, d: &mut Diagnostics) -> WafSpec {
    let mut spec = WafSpec {
        mode: match raw.mode.as_deref().unwrap_or("block") {
            "off" => WafMode::Off,
            "detect" => WafMode::Detect,
            "block" => WafMode::Block,
            other => {
                d.error_at(
                    o,
                    &["mode"],
                    format!("unknown mode {other:?}: expected off, detect or block"),
                );
                WafMode::Block
            }
        },
        ..WafSpec::default()
    };
    if let Some(p) = raw.paranoia {
        if (1..=4).contains(&p) {
            spec.paranoia = p;
        } else {
            d.error_at(
                o,
                &["paranoia"],
                format!("paranoia {p} out of range: expected 1, 2, 3 or 4"),
            );
        }
    }
    if let Some(t) = raw.threshold {
        if t == 0 {
            d.error_at(
                o,
                &["threshold"],
                "threshold 0 would block every request: expected at least 1",
            );
        } else {
            spec.threshold = t;
        }
    }
    for (i, e) in raw.exclusions.iter().enumerate() {
        let idx = i.to_string();
        let target = e.target.as_ref().map(|t| match t.split_once(':') {
            Some((k, n)) if k == "header" || k == "cookie" => {
                format!("{k}:{}", n.to_ascii_lowercase())
            }
            _ => t.clone(),
        });
        if let Some(t) = &target {
            let (kind, named_ok) = match t.split_once(':') {
                Some((k, n)) => (k, !n.is_empty()),
                None => (t.as_str(), true),
            };
            if !TARGET_KINDS.contains(&kind) || !named_ok {
                d.error_at(
                    o,
                    &["exclusions", &idx, "target"],
                    format!(
                        "unknown target {t:?}: expected args, args:NAME, header:NAME, \
                         cookie:NAME, body, body:NAME, xml, path or method"
                    ),
                );
            }
        }
        spec.exclusions.push((e.rule, target));
    }
    if let Some(b) = &raw.body {
        if let Some(n) = b.inspect_bytes {
            spec.body_inspect_bytes = to_usize(n);
        }
        match b.oversize.as_deref() {
            None | Some("inspect_prefix") => {}
            Some("reject") => spec.reject_oversize_body = true,
            Some(other) => d.error_at(
                o,
                &["body", "oversize"],
                format!("unknown oversize action {other:?}: expected inspect_prefix or reject"),
            ),
        }
    }
    if let Some(l) = &raw.limits {
        let fields: [(&str, Option<u64>, &mut usize); 8] = [
            ("uri_bytes", l.uri_bytes, &mut spec.limit_uri_bytes),
            ("header_count", l.header_count, &mut spec.limit_header_count),
            ("header_bytes", l.header_bytes, &mut spec.limit_header_bytes),
            (
                "headers_total_bytes",
                l.headers_total_bytes,
                &mut spec.limit_headers_total_bytes,
            ),
            ("body_bytes", l.body_bytes, &mut spec.limit_body_bytes),
            ("json_depth", l.json_depth, &mut spec.limit_json_depth),
            (
                "json_elements",
                l.json_elements,
                &mut spec.limit_json_elements,
            ),
            ("arg_count", l.arg_count, &mut spec.limit_arg_count),
        ];
        for (name, value, slot) in fields {
            match value {
                Some(0) => d.error_at(
                    o,
                    &["limits", name],
                    format!("{name} 0 would refuse every request: expected at least 1"),
                ),
                Some(v) => *slot = to_usize(v),
                None => {}
            }
        }
    }
    if let Some(p) = &raw.positive {
        validate_positive(p, o, d, &mut spec);
    }
    if let Some(dlp) = &raw.response_dlp {
        validate_dlp(dlp, o, d, &mut spec);
    }
    spec
}

/// Checks a positive-model parameter type; `None` when it is valid.
fn param_type_error(ty: &str) -> Option<String> {
    match ty {
        "string" | "integer" | "number" | "boolean" | "uuid" | "alnum" => None,
        other => match other.strip_prefix("regex:") {
            Some(re) => regex::Regex::new(&format!("^(?:{re})$")).err().map(|e| {
                let e = e.to_string().replace('\n', " ");
                format!("invalid regular expression {re:?}: {e}")
            }),
            None => Some(format!(
                "unknown parameter type {other:?}: expected string, integer, number, boolean, \
                 uuid, alnum or regex:PATTERN"
            )),
        },
    }
}

fn validate_positive(p: &RawWafPositive, o: &Origin, d: &mut Diagnostics, spec: &mut WafSpec) {
    if let Some(methods) = &p.methods {
        for (i, m) in methods.iter().enumerate() {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                d.error_at(
                    o,
                    &["positive", "methods", &i.to_string()],
                    format!("invalid method {m:?}: expected an upper-case token such as GET"),
                );
            }
        }
        spec.positive_methods = Some(methods.clone());
    }
    if let Some(cts) = &p.content_types {
        for (i, ct) in cts.iter().enumerate() {
            if !ct.contains('/') || ct.contains(';') {
                d.error_at(
                    o,
                    &["positive", "content_types", &i.to_string()],
                    format!(
                        "invalid content type {ct:?}: expected a media type such as application/json"
                    ),
                );
            }
        }
        spec.positive_content_types =
            Some(cts.iter().map(|c| c.trim().to_ascii_lowercase()).collect());
    }
    if let Some(params) = &p.params {
        for (name, ty) in params {
            if let Some(msg) = param_type_error(ty) {
                d.error_at(o, &["positive", "params", name], msg);
            }
        }
        spec.positive_params = Some(params.clone());
    }
    if let Some(schema) = &p.body_schema {
        if !schema.is_object() && !schema.is_boolean() {
            d.error_at(
                o,
                &["positive", "body_schema"],
                "body_schema must be a JSON Schema object or a boolean",
            );
        }
        spec.positive_body_schema = Some(schema.clone());
    }
}

fn validate_dlp(p: &RawWafDlp, o: &Origin, d: &mut Diagnostics, spec: &mut WafSpec) {
    spec.dlp_block = match p.action.as_deref() {
        None | Some("mask") => false,
        Some("block") => true,
        Some(other) => {
            d.error_at(
                o,
                &["response_dlp", "action"],
                format!("unknown action {other:?}: expected mask or block"),
            );
            false
        }
    };
    spec.dlp_inspect_bytes = to_usize(p.inspect_bytes.unwrap_or(1024 * 1024));
    let all = p.detect.is_none();
    spec.dlp_cards = all;
    spec.dlp_national_ids = all;
    spec.dlp_secrets = all;
    for (i, item) in p.detect.iter().flatten().enumerate() {
        match item.as_str() {
            "cards" => spec.dlp_cards = true,
            "national_ids" => spec.dlp_national_ids = true,
            "secrets" => spec.dlp_secrets = true,
            other => d.error_at(
                o,
                &["response_dlp", "detect", &i.to_string()],
                format!("unknown detector {other:?}: expected cards, national_ids or secrets"),
            ),
        }
    }
    if spec.dlp_inspect_bytes == 0 {
        d.error_at(
            o,
            &["response_dlp", "inspect_bytes"],
            "inspect_bytes 0 would inspect nothing: expected at least 1 (or remove response_dlp)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"listeners: [{ name: web, address: "127.0.0.1:8080" }]
upstreams: { app: { backends: [{ address: "127.0.0.1:9001" }] } }
"#;

    fn config(waf: &str) -> Result<crate::Config, crate::ConfigError> {
        crate::parse_str(
            "t.yaml",
            &format!("{HEAD}routes: [{{ name: r, upstream: app, waf: {waf} }}]\n"),
        )
    }

    fn spec(waf: &str) -> WafSpec {
        config(waf).unwrap().routes[0].waf.clone().unwrap()
    }

    fn errors(waf: &str) -> Vec<String> {
        config(waf)
            .unwrap_err()
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn defaults_to_blocking_at_the_lowest_paranoia() {
        let s = spec("{ mode: block }");
        assert_eq!(s, WafSpec::default());
        assert_eq!(s.paranoia, 1);
        assert_eq!(s.threshold, 5);
        assert!(!s.reject_oversize_body);
        assert!(s.positive_methods.is_none() && s.positive_body_schema.is_none());
        assert_eq!(s.dlp_inspect_bytes, 0);
    }

    #[test]
    fn reads_every_section() {
        let s = spec(
            r#"{ mode: detect, paranoia: 2, threshold: 10,
                 exclusions: [{ rule: 210001, target: "header:User-Agent" }, { rule: 200001 }],
                 body: { inspect_bytes: 4096, oversize: reject },
                 limits: { uri_bytes: 100, json_depth: 4 },
                 positive: { methods: [GET], content_types: [Application/JSON],
                             params: { id: integer, q: "regex:[a-z]+" },
                             body_schema: { type: object, required: [name] } },
                 response_dlp: { action: block, detect: [cards] } }"#,
        );
        assert_eq!(s.mode, WafMode::Detect);
        assert_eq!(s.paranoia, 2);
        assert_eq!(s.threshold, 10);
        assert_eq!(
            s.exclusions,
            vec![
                (210_001, Some("header:user-agent".to_owned())),
                (200_001, None)
            ]
        );
        assert_eq!(s.body_inspect_bytes, 4096);
        assert!(s.reject_oversize_body);
        assert_eq!(s.limit_uri_bytes, 100);
        assert_eq!(s.limit_json_depth, 4);
        assert_eq!(s.limit_header_count, 100);
        assert_eq!(
            s.positive_content_types,
            Some(vec!["application/json".to_owned()])
        );
        assert_eq!(s.positive_params.unwrap()["id"], "integer");
        assert!(s.positive_body_schema.unwrap().is_object());
        assert!(s.dlp_block && s.dlp_cards && !s.dlp_secrets && !s.dlp_national_ids);
        assert_eq!(s.dlp_inspect_bytes, 1024 * 1024);
    }

    #[test]
    fn rejects_bad_values_with_their_paths() {
        let errs = errors(
            r#"{ mode: loud, paranoia: 7, threshold: 0,
                 exclusions: [{ rule: 1, target: "query:q" }],
                 body: { oversize: drop }, limits: { header_count: 0 },
                 positive: { methods: [get], params: { id: "regex:(" , size: float } },
                 response_dlp: { action: shout, detect: [passwords] } }"#,
        );
        let want = [
            "routes[0].waf.mode: unknown mode \"loud\"",
            "routes[0].waf.paranoia: paranoia 7 out of range",
            "routes[0].waf.threshold: threshold 0",
            "routes[0].waf.exclusions[0].target: unknown target \"query:q\"",
            "routes[0].waf.body.oversize: unknown oversize action \"drop\"",
            "routes[0].waf.limits.header_count: header_count 0",
            "routes[0].waf.positive.methods[0]: invalid method \"get\"",
            "routes[0].waf.positive.params.id: invalid regular expression",
            "routes[0].waf.positive.params.size: unknown parameter type \"float\"",
            "routes[0].waf.response_dlp.action: unknown action \"shout\"",
            "routes[0].waf.response_dlp.detect[0]: unknown detector \"passwords\"",
        ];
        for w in want {
            assert!(errs.iter().any(|e| e.contains(w)), "missing {w}: {errs:#?}");
        }
        assert!(errs.iter().all(|e| e.starts_with("t.yaml:")), "{errs:#?}");
    }

    #[test]
    fn rejects_unknown_keys() {
        let errs = errors("{ mode: block, paranioa: 2 }");
        assert!(
            errs.iter().any(|e| e.contains("unknown field `paranioa`")),
            "{errs:#?}"
        );
    }
}
