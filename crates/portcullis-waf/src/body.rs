//! Request body parsers: each turns a body into (target, value) pairs for the detectors.
//! None of them allocates beyond the (already capped) body, recurses without a bound, or
//! expands XML entities.

use std::borrow::Cow;
use std::rc::Rc;

use crate::decode;

/// A value found in a body, with the target name used in hits and exclusions. Names and
/// values borrow from the request where they need no decoding; a target is shared by every
/// field under it (all the scalars of one JSON key), so it is counted, not copied.
pub(crate) struct Field<'a> {
    pub(crate) target: Rc<str>,
    pub(crate) name: Cow<'a, str>,
    pub(crate) value: Cow<'a, str>,
}

impl<'a> Field<'a> {
    /// A field with a fixed target, no name and a copied value.
    pub(crate) fn whole(target: &str, value: &'a str) -> Field<'a> {
        Field {
            target: Rc::from(target),
            name: Cow::Borrowed(""),
            value: Cow::Borrowed(value),
        }
    }
}

/// Form-encoded pairs (`a=1&b=2`), names and values percent-decoded once.
pub(crate) fn urlencoded<'a>(s: &'a str, prefix: &str, out: &mut Vec<Field<'a>>, max: usize) {
    for pair in s.split('&').take(max) {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_decode(k);
        let value = form_decode(v);
        out.push(Field {
            target: Rc::from(join(prefix, ':', &name)),
            name,
            value,
        });
    }
}

/// One form-encoded name or value, decoded once. ASCII without `%` or `+` decodes to
/// itself, so it is borrowed.
fn form_decode(s: &str) -> Cow<'_, str> {
    if s.is_ascii() && !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(decode::utf8_lenient(&decode::percent_decode(
        s.as_bytes(),
        true,
    )))
}

/// The whole form string, percent-decoded, when a `&` in it split something other than
/// `name=value` pairs: a piece without `=` after the first (`q=<img src=&#106;&#97;...`,
/// `q=a' && 'b`). The form parser cuts such a value into harmless-looking names; what the
/// application or a lenient parser reassembles is the original text.
pub(crate) fn split_inside_value(s: &str) -> Option<String> {
    let mut pieces = s.split('&');
    pieces.next();
    pieces
        .any(|p| !p.is_empty() && !p.contains('='))
        .then(|| decode::utf8_lenient(&decode::percent_decode(s.as_bytes(), true)))
}

/// `a` + `sep` + `b` in one allocation (`format!` costs several times more on this path).
fn join(a: &str, sep: char, b: &str) -> String {
    let mut s = String::with_capacity(a.len() + 1 + b.len());
    s.push_str(a);
    s.push(sep);
    s.push_str(b);
    s
}

/// The boundary parameter of a multipart content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Multipart parts: each part's name, filename and content. Returns false when the body is
/// malformed (no boundary found).
/// A part without the blank line after its headers: the leading `Name: value` lines are
/// headers (as lenient servers read them), the rest is content.
fn split_headers_leniently(part: &str) -> (&str, &str) {
    let mut end = 0;
    for line in part.split_inclusive('\n') {
        let t = line.trim_end();
        let header = t.split_once(':').is_some_and(|(n, _)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !header {
            break;
        }
        end += line.len();
    }
    (
        part.get(..end).unwrap_or_default(),
        part.get(end..).unwrap_or_default(),
    )
}

/// Target of the marker field [`multipart`] adds for a Content-Disposition whose quoted
/// values hide parameter syntax (`name=";x"`, `name="a=b"`): parsers disagree on them.
pub(crate) const AMBIGUOUS_DISPOSITION: &str = "body:ambiguous_disposition";

fn ambiguous_disposition(line: &str) -> bool {
    let mut in_quote = false;
    let mut prev = ' ';
    // Start of a run that may be an HTML entity (`&auml;`), whose `;` is harmless.
    let mut entity = false;
    for c in line.chars() {
        match c {
            '"' if prev != '\\' => in_quote = !in_quote,
            '&' => entity = true,
            ';' if in_quote && !entity => return true,
            c if c.is_ascii_alphanumeric() || c == '#' => {}
            _ => entity = false,
        }
        if c == ';' {
            entity = false;
        }
        prev = c;
    }
    in_quote
}

pub(crate) fn multipart<'a>(
    body: &'a str,
    boundary: &str,
    out: &mut Vec<Field<'a>>,
    max: usize,
) -> bool {
    if boundary.is_empty() || boundary.len() > 200 {
        return false;
    }
    let delim = format!("--{boundary}");
    if !body.contains(&delim) {
        return false;
    }
    for part in body.split(&delim).skip(1).take(max) {
        if part.starts_with("--") {
            break;
        }
        let part = part
            .strip_prefix("\r\n")
            .or_else(|| part.strip_prefix('\n'))
            .unwrap_or(part);
        let (head, content) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
            .unwrap_or_else(|| split_headers_leniently(part));
        let content = content
            .strip_suffix("\r\n")
            .or_else(|| content.strip_suffix('\n'))
            .unwrap_or(content);
        let mut name = "";
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition") {
                if ambiguous_disposition(line) {
                    out.push(Field::whole(AMBIGUOUS_DISPOSITION, line));
                }
                for p in line.split(';').skip(1) {
                    if let Some((k, v)) = p.trim().split_once('=') {
                        let v = v.trim().trim_matches('"');
                        match k.trim().to_ascii_lowercase().as_str() {
                            "name" => name = v,
                            "filename" | "filename*" => out.push(Field {
                                target: Rc::from("body:filename"),
                                name: Cow::Borrowed("filename"),
                                value: Cow::Borrowed(v),
                            }),
                            _ => {}
                        }
                    }
                }
            } else if !line.trim().is_empty() {
                out.push(Field::whole("body:part_header", line));
            }
        }
        out.push(Field {
            target: Rc::from(join("body", ':', name)),
            name: Cow::Borrowed(name),
            value: Cow::Borrowed(content),
        });
    }
    true
}

/// A parsed JSON document that borrows its strings from the body wherever they have no
/// escapes. Objects keep the key order and duplicate-key rule of `serde_json::Value` (keys
/// sorted, the last duplicate wins), so fields come out in the same order as before.
#[derive(Debug)]
pub(crate) enum Json<'a> {
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
    Array(Vec<Json<'a>>),
    Str(Cow<'a, str>),
    Num(serde_json::Number),
    /// `null`, `true`, `false`: counted, never inspected.
    Other,
}

impl<'a> Json<'a> {
    /// Parses a document with serde_json's parser (same syntax, limits and errors as
    /// `serde_json::from_slice::<Value>`), without copying strings it can borrow.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Json<'a>, serde_json::Error> {
        // Read from bytes, serde_json validates the UTF-8 of every string it meets, one
        // call per key and value; read from text (the same parser, `StrRead` delegates to
        // `SliceRead` and only skips that validation) it does not. One pass over a whole
        // body with std's ASCII fast path is cheaper, and a body that is not UTF-8 is read
        // from bytes as before, so its error is the same.
        match std::str::from_utf8(body) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(body),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Json<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Json<'de>, E> {
        Ok(Json::Other)
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Other)
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        // `Value` turns a non-finite float into null.
        Ok(serde_json::Number::from_f64(v).map_or(Json::Other, Json::Num))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        // Room for a typical API object without regrowing.
        let mut entries: Vec<(Cow<'de, str>, Json<'de>)> = Vec::with_capacity(8);
        // serde_json reads an object key as a string (borrowed when it has no escapes), so
        // the value visitor reads keys too.
        while let Some(k) = map.next_key::<Json<'de>>()? {
            let Json::Str(k) = k else {
                return Err(serde::de::Error::custom("object key is not a string"));
            };
            entries.push((k, map.next_value()?));
        }
        // `Value`'s map is ordered by key and keeps the value of the last duplicate. A stable
        // sort keeps duplicates in document order; each run then keeps its last value.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Ok(Json::Object(entries))
    }
}

/// Limits hit while walking JSON.
#[derive(Debug, Default)]
pub(crate) struct JsonStats {
    pub(crate) elements: usize,
    pub(crate) too_deep: bool,
}

/// Every key and scalar of a JSON document, depth-limited. Keys are reported with target
/// `body:<path>` and name = the key; scalars with the target of the key that holds them.
pub(crate) fn json<'a>(
    v: &'a Json<'a>,
    max_depth: usize,
    stats: &mut JsonStats,
    out: &mut Vec<Field<'a>>,
    max_fields: usize,
) {
    let target: Rc<str> = Rc::from("body:");
    let mut scratch = String::new();
    json_walk(
        v,
        &target,
        0,
        max_depth,
        stats,
        out,
        max_fields,
        &mut scratch,
        None,
    );
}

/// [`json`] below a node whose target (`body:<path>`) is already built: each key builds its
/// child's target once and every field under it shares it. `siblings` holds the targets
/// already built for the keys of earlier objects of the same array, which sit under the same
/// target: an array of orders builds `body:items.sku` once, not once per order.
// The walk's state is passed down explicitly; bundling it would only move the arguments.
#[allow(clippy::too_many_arguments)]
fn json_walk<'a>(
    v: &'a Json<'a>,
    target: &Rc<str>,
    depth: usize,
    max_depth: usize,
    stats: &mut JsonStats,
    out: &mut Vec<Field<'a>>,
    max_fields: usize,
    scratch: &mut String,
    mut siblings: Option<&mut Vec<(&'a str, Rc<str>)>>,
) {
    // Bounds the linear search; objects with more distinct keys build the rest each time.
    const SIBLING_KEYS: usize = 32;
    stats.elements += 1;
    if depth > max_depth {
        stats.too_deep = true;
        return;
    }
    if out.len() >= max_fields {
        return;
    }
    match v {
        Json::Object(map) => {
            for (k, child) in map {
                let k: &'a str = k;
                let known = siblings
                    .as_deref()
                    .and_then(|c| c.iter().find(|(key, _)| *key == k))
                    .map(|(_, t)| Rc::clone(t));
                let child_target = match known {
                    Some(t) => t,
                    None => {
                        // `body:` alone is the root: its keys are not prefixed with a dot.
                        // Built in a reused buffer: the `Rc` is then the only allocation.
                        scratch.clear();
                        if target.len() == "body:".len() {
                            scratch.push_str("body:");
                        } else {
                            scratch.push_str(target);
                            scratch.push('.');
                        }
                        scratch.push_str(k);
                        let t: Rc<str> = Rc::from(scratch.as_str());
                        if let Some(c) = siblings.as_deref_mut() {
                            if c.len() < SIBLING_KEYS {
                                c.push((k, Rc::clone(&t)));
                            }
                        }
                        t
                    }
                };
                out.push(Field {
                    target: Rc::clone(&child_target),
                    name: Cow::Borrowed(k),
                    value: Cow::Borrowed(""),
                });
                json_walk(
                    child,
                    &child_target,
                    depth + 1,
                    max_depth,
                    stats,
                    out,
                    max_fields,
                    scratch,
                    None,
                );
            }
        }
        Json::Array(items) => {
            let mut shared = Vec::new();
            for child in items {
                json_walk(
                    child,
                    target,
                    depth + 1,
                    max_depth,
                    stats,
                    out,
                    max_fields,
                    scratch,
                    Some(&mut shared),
                );
            }
        }
        Json::Str(s) => out.push(Field {
            target: Rc::clone(target),
            name: Cow::Borrowed(""),
            value: Cow::Borrowed(s),
        }),
        Json::Num(n) => out.push(Field {
            target: Rc::clone(target),
            name: Cow::Borrowed(""),
            value: Cow::Owned(n.to_string()),
        }),
        Json::Other => {}
    }
}

/// XML text and attribute values, without any entity expansion. Returns whether a DOCTYPE or
/// ENTITY declaration was seen (XXE).
/// A way an XML document makes its parser reach outside it without a DOCTYPE: schema
/// locations and schema includes pointing at URLs, or an encoding (UTF-7) that hides markup
/// from byte-level inspection.
pub(crate) fn xml_external_reference(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    let head = lower.get(..lower.len().min(256)).unwrap_or(&lower);
    if head.starts_with("<?xml") && (head.contains("\"utf-7\"") || head.contains("'utf-7'")) {
        return Some("utf-7 encoded document");
    }
    let remote = |attr: &str| {
        lower.match_indices(attr).any(|(i, _)| {
            lower
                .get(i + attr.len()..)
                .map(|r| r.trim_start_matches([' ', '=', '"', '\'']))
                .is_some_and(|r| {
                    r.starts_with("http:") || r.starts_with("https:") || r.starts_with("ftp:")
                })
        })
    };
    if remote("schemalocation") {
        return Some("remote schema location");
    }
    let include = [
        "<xs:include",
        "<xs:import",
        "<xs:redefine",
        "<xsd:include",
        "<xsd:import",
    ];
    if include.iter().any(|t| lower.contains(t)) && remote("namespace") {
        return Some("remote schema include");
    }
    None
}

pub(crate) fn xml(s: &str, out: &mut Vec<Field<'_>>, max: usize) -> bool {
    let target: Rc<str> = Rc::from("xml");
    let lower = s.to_ascii_lowercase();
    let doctype = lower.contains("<!doctype") || lower.contains("<!entity");
    let mut rest = s;
    while out.len() < max {
        let Some(lt) = rest.find('<') else {
            push_text(rest, &target, out);
            break;
        };
        push_text(rest.get(..lt).unwrap_or_default(), &target, out);
        let after = rest.get(lt..).unwrap_or_default();
        if let Some(cdata) = after.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            push_text(cdata.get(..end).unwrap_or_default(), &target, out);
            rest = cdata.get(end + 3..).unwrap_or_default();
            continue;
        }
        let Some(gt) = after.find('>') else {
            push_text(after, &target, out);
            break;
        };
        let tag = after.get(1..gt).unwrap_or_default();
        // Attribute values: each runs to the next quote of the kind that opened it.
        let mut attrs = tag;
        while let Some(open) = attrs.find(['"', '\'']) {
            let quote = attrs.get(open..open + 1).unwrap_or("\"");
            let value_and_rest = attrs.get(open + 1..).unwrap_or_default();
            let end = value_and_rest.find(quote).unwrap_or(value_and_rest.len());
            let value = value_and_rest.get(..end).unwrap_or_default();
            if !value.is_empty() {
                out.push(Field {
                    target: Rc::clone(&target),
                    name: Cow::Borrowed(""),
                    value: Cow::Owned(decode::html_entities(value)),
                });
            }
            attrs = value_and_rest.get(end + 1..).unwrap_or_default();
        }
        rest = after.get(gt + 1..).unwrap_or_default();
    }
    doctype
}

fn push_text(t: &str, target: &Rc<str>, out: &mut Vec<Field<'_>>) {
    let t = t.trim();
    if !t.is_empty() {
        out.push(Field {
            target: Rc::clone(target),
            name: Cow::Borrowed(""),
            value: Cow::Owned(decode::html_entities(t)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multipart_names_and_filenames() {
        let body = "--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\ndata\r\n--b--\r\n";
        let mut out = Vec::new();
        assert!(multipart(body, "b", &mut out, 100));
        assert!(out
            .iter()
            .any(|f| &*f.target == "body:note" && f.value == "hello"));
        assert!(out
            .iter()
            .any(|f| &*f.target == "body:filename" && f.value == "a.txt"));
    }

    #[test]
    fn walks_json_keys_and_values_with_a_depth_limit() {
        let v = Json::parse(br#"{"a":{"b":[1,"x"]},"c":[[[[1]]]]}"#).unwrap();
        let mut out = Vec::new();
        let mut stats = JsonStats::default();
        json(&v, 3, &mut stats, &mut out, 100);
        assert!(out
            .iter()
            .any(|f| &*f.target == "body:a.b" && f.value == "x"));
        assert!(stats.too_deep);
    }

    #[test]
    fn json_targets_join_nested_keys_with_dots_from_the_root() {
        let v = Json::parse(br#"{"a":{"b":"x","":{"c":1}},"items":[{"k":2},{"k":3}],"":{"d":4}}"#)
            .unwrap();
        let mut out = Vec::new();
        json(&v, 8, &mut JsonStats::default(), &mut out, 100);
        let mut got: Vec<(String, String, String)> = out
            .into_iter()
            .map(|f| {
                (
                    f.target.to_string(),
                    f.name.into_owned(),
                    f.value.into_owned(),
                )
            })
            .collect();
        got.sort();
        let want = [
            ("body:", "", ""),
            ("body:d", "d", ""),
            ("body:d", "", "4"),
            ("body:a", "a", ""),
            ("body:a.", "", ""),
            ("body:a..c", "c", ""),
            ("body:a..c", "", "1"),
            ("body:a.b", "b", ""),
            ("body:a.b", "", "x"),
            ("body:items", "items", ""),
            ("body:items.k", "k", ""),
            ("body:items.k", "", "2"),
            ("body:items.k", "k", ""),
            ("body:items.k", "", "3"),
        ];
        let mut want: Vec<(String, String, String)> = want
            .iter()
            .map(|(t, n, v)| ((*t).to_owned(), (*n).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    /// The walk over `serde_json::Value` that [`Json`] replaced: both must give the same
    /// fields in the same order (hits are reported in field order).
    fn value_walk(v: &serde_json::Value, target: &str, out: &mut Vec<(String, String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map {
                    let t = if target == "body:" {
                        format!("body:{k}")
                    } else {
                        format!("{target}.{k}")
                    };
                    out.push((t.clone(), k.clone(), String::new()));
                    value_walk(child, &t, out);
                }
            }
            serde_json::Value::Array(items) => {
                for child in items {
                    value_walk(child, target, out);
                }
            }
            serde_json::Value::String(s) => out.push((target.to_owned(), String::new(), s.clone())),
            serde_json::Value::Number(n) => {
                out.push((target.to_owned(), String::new(), n.to_string()));
            }
            _ => {}
        }
    }

    #[test]
    fn borrowed_json_gives_the_fields_of_a_serde_json_value_in_its_order() {
        let docs: [&[u8]; 7] = [
            br#"{"b":1,"a":2,"b":"dup","a\u0041":"esc\n\"q\"","\u00e9":[1e2,-0,1.50,-7]}"#,
            br#"{"z":{"y":{"x":[{"k":1,"k":2},{"k":"3","j":null}]}},"y":[true,false,null,{}]}"#,
            br#"{"n":[18446744073709551615,18446744073709551616,-9223372036854775809,1e-400]}"#,
            br#"{"":{"":""},"\ud83d\ude00":"\u00ff","B":"b","a":"A","aa":"","a.b":"c"}"#,
            br#"[1,"two",{"three":[3.0,0.30000000000000004]}]"#,
            br#""just a string""#,
            br#"  {"dup":{"x":1},"dup":{"y":2}}  "#,
        ];
        for doc in docs {
            let value: serde_json::Value = serde_json::from_slice(doc).unwrap();
            let mut want = Vec::new();
            value_walk(&value, "body:", &mut want);
            let tree = Json::parse(doc).unwrap();
            let mut out = Vec::new();
            json(&tree, 64, &mut JsonStats::default(), &mut out, 1000);
            let got: Vec<(String, String, String)> = out
                .into_iter()
                .map(|f| {
                    (
                        f.target.to_string(),
                        f.name.into_owned(),
                        f.value.into_owned(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn borrowed_json_rejects_what_serde_json_value_rejects() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        let docs: [&[u8]; 7] = [
            br#"{"a":1,}"#,
            br#"{"a":"\ud800"}"#,
            br#"{"a":1e400}"#,
            b"{\"a\":\"\xff\"}",
            br#"{"a":1} x"#,
            b"{\"a\":\"tab\there\"}",
            deep.as_bytes(),
        ];
        for doc in docs {
            let want = serde_json::from_slice::<serde_json::Value>(doc).map(|_| ());
            let got = Json::parse(doc).map(|_| ());
            // The same error, at the same place, whether the body was read as text or bytes.
            assert_eq!(
                got.map_err(|e| e.to_string()),
                want.map_err(|e| e.to_string()),
                "{}",
                String::from_utf8_lossy(doc)
            );
            assert!(Json::parse(doc).is_err());
        }
    }

    #[test]
    fn reads_xml_text_and_attributes_without_expanding_entities() {
        let mut out = Vec::new();
        let doctype = xml(
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a k=\"v1\">t &amp; u<![CDATA[<b>]]></a>",
            &mut out,
            100,
        );
        assert!(doctype);
        let values: Vec<&str> = out.iter().map(|f| &*f.value).collect();
        assert!(values.contains(&"v1"));
        assert!(values.contains(&"t & u"));
        assert!(values.contains(&"<b>"));
    }
}
