//! Positive (zero-trust) model: allowed methods, content types, parameters with types, and a
//! JSON Schema subset for JSON bodies (`type`, `properties`, `required`,
//! `additionalProperties: false`, `items`, `enum`, `minLength`/`maxLength`,
//! `minimum`/`maximum`, `pattern`, `maxItems`). Anything not allowed is named in the message.

use std::collections::BTreeMap;

use portcullis_config::WafSpec;
use portcullis_core::RequestView;
use regex::Regex;

use crate::body::{self, Field};
use crate::{PositiveViolation, WafError};

enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Uuid,
    Alnum,
    Regex(Regex),
}

impl ParamType {
    fn parse(s: &str) -> Result<Self, WafError> {
        Ok(match s {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "uuid" => Self::Uuid,
            "alnum" => Self::Alnum,
            other => {
                let re = other.strip_prefix("regex:").unwrap_or(other);
                let pattern = format!("^(?:{re})$");
                Self::Regex(
                    Regex::new(&pattern).map_err(|source| WafError::Pattern { pattern, source })?,
                )
            }
        })
    }

    fn accepts(&self, v: &str) -> bool {
        match self {
            Self::String => true,
            Self::Integer => v.strip_prefix('-').unwrap_or(v).parse::<u64>().is_ok(),
            Self::Number => v.parse::<f64>().is_ok_and(f64::is_finite),
            Self::Boolean => matches!(v, "true" | "false"),
            Self::Uuid => {
                v.len() == 36
                    && v.char_indices().all(|(i, c)| {
                        if matches!(i, 8 | 13 | 18 | 23) {
                            c == '-'
                        } else {
                            c.is_ascii_hexdigit()
                        }
                    })
            }
            Self::Alnum => v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            Self::Regex(re) => re.is_match(v),
        }
    }
}

/// The compiled positive model of a route.
pub(crate) struct Positive {
    methods: Option<Vec<String>>,
    content_types: Option<Vec<String>>,
    params: Option<BTreeMap<String, ParamType>>,
    schema: Option<serde_json::Value>,
    patterns: BTreeMap<String, Regex>,
}

impl Positive {
    pub(crate) fn from_spec(spec: &WafSpec) -> Result<Option<Self>, WafError> {
        if spec.positive_methods.is_none()
            && spec.positive_content_types.is_none()
            && spec.positive_params.is_none()
            && spec.positive_body_schema.is_none()
        {
            return Ok(None);
        }
        let params = match &spec.positive_params {
            Some(p) => {
                let mut m = BTreeMap::new();
                for (k, v) in p {
                    m.insert(k.clone(), ParamType::parse(v)?);
                }
                Some(m)
            }
            None => None,
        };
        let mut patterns = BTreeMap::new();
        if let Some(s) = &spec.positive_body_schema {
            collect_patterns(s, &mut patterns)?;
        }
        Ok(Some(Self {
            methods: spec.positive_methods.clone(),
            content_types: spec.positive_content_types.clone(),
            params,
            schema: spec.positive_body_schema.clone(),
            patterns,
        }))
    }

    fn check_param(&self, name: &str, value: &str) -> Result<(), PositiveViolation> {
        let Some(params) = &self.params else {
            return Ok(());
        };
        match params.get(name) {
            None => Err(PositiveViolation(format!(
                "parameter {} is not allowed",
                safe(name)
            ))),
            Some(t) if !t.accepts(value) => Err(PositiveViolation(format!(
                "parameter {} has the wrong type",
                safe(name)
            ))),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn check_head(&self, req: &RequestView<'_>) -> Result<(), PositiveViolation> {
        if let Some(m) = &self.methods {
            if !m.iter().any(|x| x == req.method) {
                return Err(PositiveViolation(format!(
                    "method {} is not allowed",
                    safe(req.method)
                )));
            }
        }
        if let Some(q) = req.query {
            let mut fields = Vec::new();
            body::urlencoded(q, "args", &mut fields, 1024);
            for f in &fields {
                self.check_param(&f.name, &f.value)?;
            }
        }
        if let (Some(cts), Some(ct)) = (
            &self.content_types,
            req.headers.get(http::header::CONTENT_TYPE),
        ) {
            let ct = String::from_utf8_lossy(ct.as_bytes()).to_ascii_lowercase();
            let media = ct.split(';').next().unwrap_or_default().trim();
            if !cts.iter().any(|c| c == media) {
                return Err(PositiveViolation(format!(
                    "content type {} is not allowed",
                    safe(media)
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn check_body(
        &self,
        media: &str,
        fields: &[Field<'_>],
        json: Option<&serde_json::Value>,
    ) -> Result<(), PositiveViolation> {
        if media == "application/x-www-form-urlencoded" || media.starts_with("multipart/") {
            for f in fields
                .iter()
                .filter(|f| &*f.target != "body:filename" && &*f.target != "body:part_header")
            {
                self.check_param(&f.name, &f.value)?;
            }
        }
        if let Some(schema) = &self.schema {
            match json {
                Some(doc) => validate(schema, doc, "$", &self.patterns, 0)?,
                None => return Err(PositiveViolation("body is not valid JSON".to_owned())),
            }
        }
        Ok(())
    }
}

/// A name or value safe to echo: printable, short.
fn safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(48)
        .collect()
}

fn collect_patterns(
    s: &serde_json::Value,
    out: &mut BTreeMap<String, Regex>,
) -> Result<(), WafError> {
    match s {
        serde_json::Value::Object(m) => {
            if let Some(p) = m.get("pattern").and_then(|p| p.as_str()) {
                let re = Regex::new(p).map_err(|source| WafError::Pattern {
                    pattern: p.to_owned(),
                    source,
                })?;
                out.insert(p.to_owned(), re);
            }
            for v in m.values() {
                collect_patterns(v, out)?;
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                collect_patterns(v, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn type_ok(ty: &str, v: &serde_json::Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn validate(
    s: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
    patterns: &BTreeMap<String, Regex>,
    depth: usize,
) -> Result<(), PositiveViolation> {
    let fail = |what: &str| Err(PositiveViolation(format!("body {at}: {what}")));
    if depth > 64 {
        return fail("nested too deeply");
    }
    let schema = match s {
        serde_json::Value::Bool(true) => return Ok(()),
        serde_json::Value::Bool(false) => return fail("not allowed"),
        serde_json::Value::Object(m) => m,
        _ => return Ok(()),
    };
    if let Some(t) = schema.get("type") {
        let ok = match t {
            serde_json::Value::String(t) => type_ok(t, v),
            serde_json::Value::Array(ts) => {
                ts.iter().filter_map(|t| t.as_str()).any(|t| type_ok(t, v))
            }
            _ => true,
        };
        if !ok {
            return fail(&format!("expected type {t}"));
        }
    }
    if let Some(serde_json::Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(v) {
            return fail("value not in enum");
        }
    }
    if let Some(s) = v.as_str() {
        let n = s.chars().count() as u64;
        if schema
            .get("maxLength")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|m| n > m)
        {
            return fail("string too long");
        }
        if schema
            .get("minLength")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|m| n < m)
        {
            return fail("string too short");
        }
        if let Some(p) = schema.get("pattern").and_then(|p| p.as_str()) {
            if patterns.get(p).is_some_and(|re| !re.is_match(s)) {
                return fail("string does not match pattern");
            }
        }
    }
    if let Some(n) = v.as_f64() {
        if schema
            .get("maximum")
            .and_then(serde_json::Value::as_f64)
            .is_some_and(|m| n > m)
        {
            return fail("number too large");
        }
        if schema
            .get("minimum")
            .and_then(serde_json::Value::as_f64)
            .is_some_and(|m| n < m)
        {
            return fail("number too small");
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(serde_json::Value::Array(req)) = schema.get("required") {
            for r in req.iter().filter_map(|r| r.as_str()) {
                if !obj.contains_key(r) {
                    return fail(&format!("missing required property {}", safe(r)));
                }
            }
        }
        let props = schema.get("properties").and_then(|p| p.as_object());
        for (k, child) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(ps, child, &format!("{at}.{}", safe(k)), patterns, depth + 1)?,
                None => match schema.get("additionalProperties") {
                    Some(serde_json::Value::Bool(false)) => {
                        return fail(&format!("property {} is not allowed", safe(k)));
                    }
                    Some(extra @ serde_json::Value::Object(_)) => {
                        validate(
                            extra,
                            child,
                            &format!("{at}.{}", safe(k)),
                            patterns,
                            depth + 1,
                        )?;
                    }
                    _ => {}
                },
            }
        }
    }
    if let Some(arr) = v.as_array() {
        if schema
            .get("maxItems")
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|m| arr.len() as u64 > m)
        {
            return fail("too many items");
        }
        if let Some(items) = schema.get("items") {
            for (i, child) in arr.iter().enumerate() {
                validate(items, child, &format!("{at}[{i}]"), patterns, depth + 1)?;
            }
        }
    }
    Ok(())
}
