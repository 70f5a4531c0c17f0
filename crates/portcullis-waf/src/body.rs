//! Request body parsers: each turns a body into (target, value) pairs for the detectors.
//! None of them allocates beyond the (already capped) body, recurses without a bound, or
//! expands XML entities.

use crate::decode;

/// A value found in a body, with the target name used in hits and exclusions.
pub(crate) struct Field {
    pub(crate) target: String,
    pub(crate) name: String,
    pub(crate) value: String,
}

/// Form-encoded pairs (`a=1&b=2`), names and values percent-decoded once.
pub(crate) fn urlencoded(s: &str, prefix: &str, out: &mut Vec<Field>, max: usize) {
    for pair in s.split('&').take(max) {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode::utf8_lenient(&decode::percent_decode(k.as_bytes(), true));
        let value = decode::utf8_lenient(&decode::percent_decode(v.as_bytes(), true));
        out.push(Field {
            target: join(prefix, ':', &name),
            name,
            value,
        });
    }
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

pub(crate) fn multipart(body: &str, boundary: &str, out: &mut Vec<Field>, max: usize) -> bool {
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
        let mut name = String::new();
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition") {
                if ambiguous_disposition(line) {
                    out.push(Field {
                        target: AMBIGUOUS_DISPOSITION.to_owned(),
                        name: String::new(),
                        value: line.to_owned(),
                    });
                }
                for p in line.split(';').skip(1) {
                    if let Some((k, v)) = p.trim().split_once('=') {
                        let v = v.trim().trim_matches('"').to_owned();
                        match k.trim().to_ascii_lowercase().as_str() {
                            "name" => name = v,
                            "filename" | "filename*" => out.push(Field {
                                target: "body:filename".to_owned(),
                                name: "filename".to_owned(),
                                value: v,
                            }),
                            _ => {}
                        }
                    }
                }
            } else if !line.trim().is_empty() {
                out.push(Field {
                    target: "body:part_header".to_owned(),
                    name: String::new(),
                    value: line.to_owned(),
                });
            }
        }
        out.push(Field {
            target: format!("body:{name}"),
            name,
            value: content.to_owned(),
        });
    }
    true
}

/// Limits hit while walking JSON.
#[derive(Debug, Default)]
pub(crate) struct JsonStats {
    pub(crate) elements: usize,
    pub(crate) too_deep: bool,
}

/// Every key and scalar of a JSON document, depth-limited. Keys are reported with target
/// `body:<path>` and name = the key; scalars with the target of the key that holds them.
pub(crate) fn json(
    v: &serde_json::Value,
    path: &str,
    depth: usize,
    max_depth: usize,
    stats: &mut JsonStats,
    out: &mut Vec<Field>,
    max_fields: usize,
) {
    let target = join("body", ':', path);
    json_walk(v, &target, depth, max_depth, stats, out, max_fields);
}

/// [`json`] below a node whose target (`body:<path>`) is already built: each key builds its
/// child's target once and its scalars clone it, so a document costs one allocation per
/// field.
fn json_walk(
    v: &serde_json::Value,
    target: &str,
    depth: usize,
    max_depth: usize,
    stats: &mut JsonStats,
    out: &mut Vec<Field>,
    max_fields: usize,
) {
    stats.elements += 1;
    if depth > max_depth {
        stats.too_deep = true;
        return;
    }
    if out.len() >= max_fields {
        return;
    }
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                // `body:` alone is the root: its keys are not prefixed with a dot.
                let child_target = if target.len() == "body:".len() {
                    join("body", ':', k)
                } else {
                    join(target, '.', k)
                };
                out.push(Field {
                    target: child_target.clone(),
                    name: k.clone(),
                    value: String::new(),
                });
                json_walk(
                    child,
                    &child_target,
                    depth + 1,
                    max_depth,
                    stats,
                    out,
                    max_fields,
                );
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                json_walk(child, target, depth + 1, max_depth, stats, out, max_fields);
            }
        }
        serde_json::Value::String(s) => out.push(Field {
            target: target.to_owned(),
            name: String::new(),
            value: s.clone(),
        }),
        serde_json::Value::Number(n) => out.push(Field {
            target: target.to_owned(),
            name: String::new(),
            value: n.to_string(),
        }),
        _ => {}
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

pub(crate) fn xml(s: &str, out: &mut Vec<Field>, max: usize) -> bool {
    let lower = s.to_ascii_lowercase();
    let doctype = lower.contains("<!doctype") || lower.contains("<!entity");
    let mut rest = s;
    while out.len() < max {
        let Some(lt) = rest.find('<') else {
            push_text(rest, out);
            break;
        };
        push_text(rest.get(..lt).unwrap_or_default(), out);
        let after = rest.get(lt..).unwrap_or_default();
        if let Some(cdata) = after.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            push_text(cdata.get(..end).unwrap_or_default(), out);
            rest = cdata.get(end + 3..).unwrap_or_default();
            continue;
        }
        let Some(gt) = after.find('>') else {
            push_text(after, out);
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
                    target: "xml".to_owned(),
                    name: String::new(),
                    value: decode::html_entities(value),
                });
            }
            attrs = value_and_rest.get(end + 1..).unwrap_or_default();
        }
        rest = after.get(gt + 1..).unwrap_or_default();
    }
    doctype
}

fn push_text(t: &str, out: &mut Vec<Field>) {
    let t = t.trim();
    if !t.is_empty() {
        out.push(Field {
            target: "xml".to_owned(),
            name: String::new(),
            value: decode::html_entities(t),
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
            .any(|f| f.target == "body:note" && f.value == "hello"));
        assert!(out
            .iter()
            .any(|f| f.target == "body:filename" && f.value == "a.txt"));
    }

    #[test]
    fn walks_json_keys_and_values_with_a_depth_limit() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a":{"b":[1,"x"]},"c":[[[[1]]]]}"#).unwrap();
        let mut out = Vec::new();
        let mut stats = JsonStats::default();
        json(&v, "", 0, 3, &mut stats, &mut out, 100);
        assert!(out.iter().any(|f| f.target == "body:a.b" && f.value == "x"));
        assert!(stats.too_deep);
    }

    #[test]
    fn json_targets_join_nested_keys_with_dots_from_the_root() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"a":{"b":"x","":{"c":1}},"items":[{"k":2},{"k":3}],"":{"d":4}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        json(&v, "", 0, 8, &mut JsonStats::default(), &mut out, 100);
        let mut got: Vec<(String, String, String)> = out
            .into_iter()
            .map(|f| (f.target, f.name, f.value))
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

    #[test]
    fn reads_xml_text_and_attributes_without_expanding_entities() {
        let mut out = Vec::new();
        let doctype = xml(
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a k=\"v1\">t &amp; u<![CDATA[<b>]]></a>",
            &mut out,
            100,
        );
        assert!(doctype);
        let values: Vec<&str> = out.iter().map(|f| f.value.as_str()).collect();
        assert!(values.contains(&"v1"));
        assert!(values.contains(&"t & u"));
        assert!(values.contains(&"<b>"));
    }
}
