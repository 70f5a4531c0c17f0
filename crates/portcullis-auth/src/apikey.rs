//! API keys: only SHA-256 digests are stored; the presented key is hashed and compared with
//! every stored digest in constant time (no early exit, no hash-map probe on secret-derived
//! bytes). Keys come inline from the config or from a JSON file that is re-read when it changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use portcullis_config::{parse_key_hash, ApiKeyEntry};
use portcullis_core::Identity;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AuthError;

/// The stored form of an API key: `sha256:` followed by 64 lowercase hex digits. This is what
/// goes into the config (`api_keys.keys[].hash`) or a key file; the key itself never does.
///
/// The binary's `portcullis hash-key` prints this for a key read from stdin or its argument.
/// The exact bytes are hashed (no trimming): strip the trailing newline of `read_line` before
/// calling. Requests are matched the same way: SHA-256 of the presented key, compared in
/// constant time with every stored digest.
///
/// ```
/// let h = portcullis_auth::hash_api_key("foo");
/// assert_eq!(h, "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
/// ```
#[must_use]
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    consumer: String,
    hash: String,
    plan: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileDoc {
    List(Vec<FileKey>),
    Keys { keys: Vec<FileKey> },
}

fn parse_file(bytes: &[u8]) -> Result<Vec<ApiKeyEntry>, String> {
    let doc: FileDoc = serde_json::from_slice(bytes).map_err(|_| {
        "expected a JSON list of {consumer, hash, plan, scopes} (or {\"keys\": [...]})".to_owned()
    })?;
    let list = match doc {
        FileDoc::List(l) | FileDoc::Keys { keys: l } => l,
    };
    list.into_iter()
        .enumerate()
        .map(|(i, k)| {
            let sha256 = parse_key_hash(&k.hash).ok_or_else(|| {
                format!("entry {i}: hash is not sha256: followed by 64 hex digits")
            })?;
            if k.consumer.is_empty() {
                return Err(format!("entry {i}: consumer is empty"));
            }
            Ok(ApiKeyEntry {
                consumer: k.consumer,
                sha256,
                plan: k.plan,
                scopes: k.scopes,
            })
        })
        .collect()
}

/// A key file, shared across routes and reloads, re-read by the refresh loop when its
/// modification time changes. A bad edit keeps the previous keys.
#[derive(Debug)]
pub(crate) struct ApiKeyFile {
    path: PathBuf,
    entries: ArcSwap<Vec<ApiKeyEntry>>,
    modified: Mutex<Option<SystemTime>>,
}

impl ApiKeyFile {
    pub(crate) fn load(path: &Path) -> Result<Self, AuthError> {
        let f = Self {
            path: path.to_path_buf(),
            entries: ArcSwap::from_pointee(Vec::new()),
            modified: Mutex::new(None),
        };
        f.reload()?;
        Ok(f)
    }

    fn reload(&self) -> Result<(), AuthError> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let bytes = std::fs::read(&self.path).map_err(|e| AuthError::Read {
            path: self.path.clone(),
            source: e,
        })?;
        let entries = parse_file(&bytes).map_err(|detail| AuthError::KeyFile {
            path: self.path.clone(),
            detail,
        })?;
        self.entries.store(Arc::new(entries));
        *self.modified.lock() = modified;
        Ok(())
    }

    /// Re-reads the file if its modification time changed.
    pub(crate) fn reload_if_changed(&self) -> Result<bool, AuthError> {
        let now = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if now == *self.modified.lock() {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }
}

/// A route's API-key settings, compiled.
#[derive(Debug)]
pub(crate) struct ApiKeys {
    pub(crate) header: http::HeaderName,
    pub(crate) query: Option<String>,
    inline: Vec<ApiKeyEntry>,
    file: Option<Arc<ApiKeyFile>>,
}

impl ApiKeys {
    pub(crate) fn new(
        header: http::HeaderName,
        query: Option<String>,
        inline: Vec<ApiKeyEntry>,
        file: Option<Arc<ApiKeyFile>>,
    ) -> Self {
        Self {
            header,
            query,
            inline,
            file,
        }
    }

    /// The identity of a presented key, if it is one of ours.
    pub(crate) fn lookup(&self, presented: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let from_file = self.file.as_ref().map(|f| f.entries.load_full());
        let all = self
            .inline
            .iter()
            .chain(from_file.iter().flat_map(|v| v.iter()));
        let mut found: Option<&ApiKeyEntry> = None;
        for entry in all {
            // Every entry is compared, whatever matched before.
            if bool::from(entry.sha256.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        found.map(|e| Identity {
            method: "api_key",
            subject: Some(e.consumer.clone()),
            consumer: Some(e.consumer.clone()),
            plan: e.plan.clone(),
            scopes: e.scopes.clone(),
            roles: Vec::new(),
            claims: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_the_config_parser() {
        let h = hash_api_key("k-123");
        assert!(parse_key_hash(&h).is_some());
    }

    #[test]
    fn finds_a_key_by_its_hash_only() {
        let entry = ApiKeyEntry {
            consumer: "acme".into(),
            sha256: parse_key_hash(&hash_api_key("right")).unwrap(),
            plan: Some("pro".into()),
            scopes: vec!["read".into()],
        };
        let keys = ApiKeys::new(
            http::HeaderName::from_static("x-api-key"),
            None,
            vec![entry],
            None,
        );
        let id = keys.lookup("right").unwrap();
        assert_eq!(id.consumer.as_deref(), Some("acme"));
        assert_eq!(id.plan.as_deref(), Some("pro"));
        assert!(keys.lookup("wrong").is_none());
        assert!(keys.lookup("").is_none());
    }

    #[test]
    fn key_file_rejects_clear_text_keys() {
        let err = parse_file(br#"[{"consumer":"a","hash":"plain-key"}]"#).unwrap_err();
        assert!(!err.contains("plain-key"), "{err}");
    }
}
