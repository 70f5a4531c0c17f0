//! A YAML document as a tree of located nodes.
//!
//! Every file is first read into this tree so that any error found later (by serde on one item,
//! or by cross-field validation) can be pointed back at `line:col` through its YAML path alone.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One step of a YAML path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A YAML path such as `routes[2].match.path_prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    /// This path extended by a mapping key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A YAML node with the line and column where it starts (1-based).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) line: u64,
    pub(crate) col: u64,
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The key of a mapping entry as text (YAML allows non-string keys; config keys are text).
    pub(crate) fn key_text(&self) -> String {
        match &self.kind {
            Kind::Str(s) => s.clone(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::UInt(u) => u.to_string(),
            Kind::Float(x) => x.to_string(),
            Kind::Null => "~".to_owned(),
            Kind::Seq(_) | Kind::Map(_) => "<complex key>".to_owned(),
        }
    }

    /// The node a path leads to, or the deepest node on the way (errors point somewhere useful
    /// even when the path names a key that is missing).
    pub(crate) fn locate(&self, path: &[Seg]) -> (u64, u64) {
        let mut node = self;
        for seg in path {
            let next = match (seg, &node.kind) {
                (Seg::Key(k), Kind::Map(entries)) => entries
                    .iter()
                    .find(|(key, _)| key.key_text() == *k)
                    .map(|(_, v)| v),
                (Seg::Index(i), Kind::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        (node.line, node.col)
    }

    /// Where a mapping key sits (for "unknown field" errors), falling back to the mapping.
    pub(crate) fn locate_key(&self, path: &[Seg], key: &str) -> (u64, u64) {
        let mut node = self;
        for seg in path {
            let next = match (seg, &node.kind) {
                (Seg::Key(k), Kind::Map(entries)) => entries
                    .iter()
                    .find(|(kn, _)| kn.key_text() == *k)
                    .map(|(_, v)| v),
                (Seg::Index(i), Kind::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return (node.line, node.col),
            }
        }
        if let Kind::Map(entries) = &node.kind {
            if let Some((k, _)) = entries.iter().find(|(k, _)| k.key_text() == key) {
                return (k.line, k.col);
            }
        }
        (node.line, node.col)
    }

    /// The node as JSON, the neutral form serde reads each config item from.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::UInt(u) => Value::from(*u),
            Kind::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned: Spanned<Kind> = Spanned::deserialize(d)?;
        Ok(Node {
            line: spanned.referenced.line(),
            col: spanned.referenced.column(),
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            if entries.iter().any(|(k, _)| k.key_text() == key.key_text()) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{}` at line {} column {}",
                    key.key_text(),
                    key.line,
                    key.col
                )));
            }
            entries.push((key, value));
        }
        Ok(Kind::Map(entries))
    }
}

/// Parses YAML text into a located tree, with serde-saphyr's limits on aliases and nesting.
pub(crate) fn parse(text: &str) -> Result<Node, (u64, u64, String)> {
    if text.trim().is_empty() {
        return Ok(Node {
            line: 1,
            col: 1,
            kind: Kind::Map(Vec::new()),
        });
    }
    serde_saphyr::from_str::<Node>(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
        let msg = e.to_string();
        // serde-saphyr appends its own "at line X column Y"; we print the location up front.
        let msg = msg
            .split(" at line ")
            .next()
            .unwrap_or(&msg)
            .trim()
            .to_owned();
        (line, col, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_values() {
        let node = parse("a:\n  b:\n    - x: 1\n    - x: 2\n").unwrap();
        let path = [
            Seg::Key("a".into()),
            Seg::Key("b".into()),
            Seg::Index(1),
            Seg::Key("x".into()),
        ];
        assert_eq!(node.locate(&path), (4, 10));
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert!(err.2.contains("duplicate"), "{err:?}");
    }

    #[test]
    fn path_display_reads_like_yaml() {
        let p = YamlPath::default().key("routes").index(2).key("match");
        assert_eq!(p.to_string(), "routes[2].match");
    }
}
