//! A bounded map from a token hash to a verdict, each entry with its own expiry (Unix seconds).
//! Keys are SHA-256 digests, never tokens, so a heap dump does not hold credentials.

use std::collections::HashMap;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// SHA-256 of `namespace || 0 || token`: one token verified under one policy.
pub(crate) fn token_key(namespace: &[u8], token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(namespace);
    h.update([0u8]);
    h.update(token.as_bytes());
    h.finalize().into()
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires_unix: u64,
}

/// Bounded TTL cache. When full, expired entries are purged; if it is still full the new entry
/// is not stored (a flood of distinct tokens costs verification, never memory).
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    capacity: usize,
    map: Mutex<HashMap<[u8; 32], Entry<V>>>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, key: &[u8; 32], now_unix: u64) -> Option<V> {
        let mut map = self.map.lock();
        match map.get(key) {
            Some(e) if e.expires_unix > now_unix => Some(e.value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&self, key: [u8; 32], value: V, expires_unix: u64, now_unix: u64) {
        if expires_unix <= now_unix || self.capacity == 0 {
            return;
        }
        let mut map = self.map.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, e| e.expires_unix > now_unix);
            if map.len() >= self.capacity {
                return;
            }
        }
        map.insert(
            key,
            Entry {
                value,
                expires_unix,
            },
        );
    }

    pub(crate) fn remove(&self, key: &[u8; 32]) {
        self.map.lock().remove(key);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_at_their_deadline() {
        let c = TtlCache::new(4);
        c.insert([1; 32], 7u32, 100, 50);
        assert_eq!(c.get(&[1; 32], 99), Some(7));
        assert_eq!(c.get(&[1; 32], 100), None);
    }

    #[test]
    fn stays_within_capacity_and_reuses_expired_slots() {
        let c = TtlCache::new(2);
        c.insert([1; 32], 1u32, 10, 0);
        c.insert([2; 32], 2, 100, 0);
        c.insert([3; 32], 3, 100, 0);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&[3; 32], 5), None);
        c.insert([3; 32], 3, 100, 20);
        assert_eq!(c.get(&[3; 32], 20), Some(3));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn namespaces_separate_the_same_token() {
        assert_ne!(token_key(b"a", "t"), token_key(b"b", "t"));
    }
}
