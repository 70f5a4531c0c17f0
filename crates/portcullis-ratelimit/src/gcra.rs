//! GCRA (generic cell rate algorithm) arithmetic and the bounded in-process table of
//! theoretical arrival times.
//!
//! A limit of `rate` per `period` with burst `B` has emission interval `T = period / rate` and
//! tolerance `τ = (B - 1) · T`. Each key stores one number, its theoretical arrival time `TAT`
//! (absent = a fresh key, read as `TAT = now`). A request at time `t` is admitted when
//! `max(TAT, t) - t <= τ`; an admitted request sets `TAT = max(TAT, t) + T`. So a fresh key
//! admits exactly `B` requests back to back, then one every `T`; a denied request changes
//! nothing and may retry after `max(TAT, t) - τ - t`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;

/// Emission interval and tolerance of one limit, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    pub(crate) interval: u64,
    pub(crate) tolerance: u64,
}

impl Gcra {
    pub(crate) fn new(limit: &portcullis_config::Limit) -> Self {
        let rate = u128::from(limit.rate.max(1));
        let interval = u64::try_from(limit.period.as_nanos() / rate)
            .unwrap_or(u64::MAX)
            .max(1);
        let tolerance = interval.saturating_mul(limit.burst.saturating_sub(1));
        Self {
            interval,
            tolerance,
        }
    }

    /// Decides a request at `now` for a key whose stored TAT is `tat`.
    pub(crate) fn decide(&self, tat: Option<u64>, now: u64) -> Verdict {
        let tat = tat.unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead <= self.tolerance {
            let new_tat = tat.saturating_add(self.interval);
            Verdict::Admit {
                new_tat,
                outcome: self.admitted(new_tat - now),
            }
        } else {
            Verdict::Deny(self.denied(ahead))
        }
    }

    /// Outcome of an admission that left the key `ahead` ns in the future.
    pub(crate) fn admitted(&self, ahead: u64) -> Outcome {
        let room = (self.tolerance + self.interval).saturating_sub(ahead);
        Outcome {
            admitted: true,
            remaining: room / self.interval,
            reset_ns: ahead,
            retry_after_ns: 0,
        }
    }

    /// Outcome of a denial of a key `ahead` ns in the future.
    pub(crate) fn denied(&self, ahead: u64) -> Outcome {
        Outcome {
            admitted: false,
            remaining: 0,
            reset_ns: ahead,
            retry_after_ns: ahead.saturating_sub(self.tolerance),
        }
    }
}

/// A decision before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Admit { new_tat: u64, outcome: Outcome },
    Deny(Outcome),
}

/// What one limit said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) admitted: bool,
    /// Requests that could still be admitted right now.
    pub(crate) remaining: u64,
    /// Until the key is back to a fresh state.
    pub(crate) reset_ns: u64,
    /// Until a denied request would be admitted (0 when admitted).
    pub(crate) retry_after_ns: u64,
}

/// Hashes are already uniformly distributed: the table uses them as they are.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<u64, u64, BuildHasherDefault<IdentityHasher>>;

/// Number of independently locked shards.
pub(crate) const SHARDS: usize = 64;

/// Key hash -> TAT (ns since the table's epoch), in [`SHARDS`] shards of at most
/// `capacity / SHARDS` entries. A full shard first drops the keys that are back to a fresh state
/// (TAT in the past: forgetting them changes nothing), then, if that freed less than an eighth,
/// the eighth with the earliest TATs (the keys closest to fresh).
pub(crate) struct LocalTable {
    shards: Vec<Mutex<Map>>,
    per_shard: usize,
}

impl std::fmt::Debug for LocalTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTable")
            .field("per_shard", &self.per_shard)
            .field("len", &self.len())
            .finish()
    }
}

impl LocalTable {
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(8);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
            per_shard,
        }
    }

    fn shard(&self, key: u64) -> Option<&Mutex<Map>> {
        // Inside a shard hashbrown takes the bucket from the low bits and the SIMD tag from the
        // top 7 bits; picking the shard from either would make one of them constant per shard.
        let idx = usize::try_from((key >> 40) & 0x3f).unwrap_or(0) % SHARDS;
        self.shards.get(idx)
    }

    /// Decides and, when admitted, stores atomically for this key.
    pub(crate) fn acquire(&self, key: u64, gcra: &Gcra, now: u64) -> Outcome {
        let Some(shard) = self.shard(key) else {
            return gcra.admitted(gcra.interval);
        };
        let mut map = shard.lock();
        match gcra.decide(map.get(&key).copied(), now) {
            Verdict::Admit { new_tat, outcome } => {
                if map.len() >= self.per_shard && !map.contains_key(&key) {
                    evict(&mut map, self.per_shard, now);
                }
                map.insert(key, new_tat);
                outcome
            }
            Verdict::Deny(outcome) => outcome,
        }
    }

    /// Gives back one admission (used when a later limit of the same request denies).
    pub(crate) fn release(&self, key: u64, gcra: &Gcra) {
        if let Some(shard) = self.shard(key) {
            if let Some(tat) = shard.lock().get_mut(&key) {
                *tat = tat.saturating_sub(gcra.interval);
            }
        }
    }

    /// Keys currently stored.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// The most keys the table holds.
    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }
}

fn evict(map: &mut Map, cap: usize, now: u64) {
    map.retain(|_, tat| *tat > now);
    let target = cap - cap / 8;
    if map.len() <= target {
        return;
    }
    let mut tats: Vec<u64> = map.values().copied().collect();
    let excess = map.len() - target;
    let (_, nth, _) = tats.select_nth_unstable(excess.saturating_sub(1));
    let threshold = *nth;
    let mut removed = 0usize;
    map.retain(|_, tat| {
        if removed < excess && *tat <= threshold {
            removed += 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(text: &str) -> Gcra {
        Gcra::new(&portcullis_config::parse_limit(text).unwrap())
    }

    #[test]
    fn fresh_key_admits_exactly_burst_back_to_back() {
        let g = limit("10/s burst 5");
        assert_eq!(g.interval, 100_000_000);
        assert_eq!(g.tolerance, 400_000_000);
        let t = LocalTable::new(1024);
        let admitted = (0..100)
            .filter(|_| t.acquire(7, &g, 1_000).admitted)
            .count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn denial_reports_the_exact_wait_and_retrying_then_succeeds() {
        let g = limit("10/s burst 5");
        let t = LocalTable::new(1024);
        let now = 5_000_000_000;
        for _ in 0..5 {
            assert!(t.acquire(1, &g, now).admitted);
        }
        let denied = t.acquire(1, &g, now);
        assert!(!denied.admitted);
        assert_eq!(denied.retry_after_ns, 100_000_000);
        assert!(!t.acquire(1, &g, now + denied.retry_after_ns - 1).admitted);
        let ok = t.acquire(1, &g, now + denied.retry_after_ns);
        assert!(ok.admitted);
        assert_eq!(ok.remaining, 0);
    }

    #[test]
    fn remaining_counts_down_from_burst_minus_one() {
        let g = limit("100/m burst 3");
        let t = LocalTable::new(64);
        let rem: Vec<u64> = (0..3).map(|_| t.acquire(9, &g, 0).remaining).collect();
        assert_eq!(rem, vec![2, 1, 0]);
    }

    #[test]
    fn full_table_evicts_instead_of_growing() {
        let g = limit("1/s burst 1");
        let t = LocalTable::new(SHARDS * 16);
        for k in 0..100_000u64 {
            let key = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            t.acquire(key, &g, k * 1_000);
        }
        assert!(t.len() <= t.capacity());
        assert_eq!(t.capacity(), SHARDS * 16);
    }
}
