//! Behavioural protection in the manner of HAProxy stick tables: sliding counters per client,
//! fed from the logging hook, and rules that ban a client for a while. Bans are checked on
//! every request before anything expensive, so the check is one read-locked map lookup.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use portcullis_config::{AbuseCounter, AbuseRule, AbuseSpec, Scope};
use portcullis_core::{Deny, RequestView};

use crate::limiter::{retry_after_secs, Shared};
use crate::RateLimitError;

/// Most bans held (local and synced together); beyond it the soonest-expiring are dropped.
const MAX_BANS: usize = 100_000;
/// Recent 404 paths remembered per client, to count distinct ones.
const RECENT_PATHS: usize = 16;
const SHARDS: usize = 32;

/// What the logging hook reports about one finished request.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Client address after trusted-proxy processing.
    pub client_ip: IpAddr,
    /// Response status sent.
    pub status: u16,
    /// Request path.
    pub path: &'a str,
    /// Authentication was attempted and failed.
    pub auth_failed: bool,
    /// The WAF detected an attack (blocked or not).
    pub waf_hit: bool,
}

/// An active ban, as shown on the admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanInfo {
    /// The banned client.
    pub ip: IpAddr,
    /// The rule that banned it (`shared` when learnt from another gateway).
    pub rule: String,
    /// Time left.
    pub remaining: Duration,
}

#[derive(Debug, Clone)]
struct Ban {
    /// ns on the shared clock.
    until: u64,
    rule: String,
    /// ns when this node created or last saw it in Redis.
    seen: u64,
}

/// Process-wide ban table (kept across reloads).
#[derive(Debug, Default)]
pub(crate) struct BanTable {
    bans: RwLock<HashMap<IpAddr, Ban>>,
}

impl BanTable {
    fn insert(&self, ip: IpAddr, ban: Ban, now: u64) {
        let mut map = self.bans.write();
        if map.len() >= MAX_BANS && !map.contains_key(&ip) {
            map.retain(|_, b| b.until > now);
            if map.len() >= MAX_BANS {
                let soonest = map.iter().min_by_key(|(_, b)| b.until).map(|(k, _)| *k);
                if let Some(k) = soonest {
                    map.remove(&k);
                }
            }
        }
        match map.get_mut(&ip) {
            Some(cur) if cur.until >= ban.until => cur.seen = ban.seen,
            _ => {
                map.insert(ip, ban);
            }
        }
    }

    pub(crate) fn count_active(&self, now: u64) -> usize {
        self.bans.read().values().filter(|b| b.until > now).count()
    }

    fn active(&self, ip: IpAddr, now: u64) -> Option<u64> {
        self.bans
            .read()
            .get(&ip)
            .filter(|b| b.until > now)
            .map(|b| b.until - now)
    }
}

/// A two-bucket sliding window: the previous window's count weighted by how much of it still
/// overlaps the sliding window, plus the current count (HAProxy's `freq_ctr`).
#[derive(Debug, Clone, Copy, Default)]
struct Sliding {
    start: u64,
    curr: u32,
    prev: u32,
}

impl Sliding {
    fn add(&mut self, now: u64, window: u64) -> u64 {
        let elapsed = now.saturating_sub(self.start);
        if elapsed >= window.saturating_mul(2) {
            *self = Self {
                start: now,
                curr: 0,
                prev: 0,
            };
        } else if elapsed >= window {
            self.prev = self.curr;
            self.curr = 0;
            self.start = self.start.saturating_add(window);
        }
        self.curr = self.curr.saturating_add(1);
        let into = now.saturating_sub(self.start).min(window);
        let weight = u128::from(window - into);
        let prev = u128::from(self.prev) * weight / u128::from(window.max(1));
        u64::try_from(prev).unwrap_or(u64::MAX) + u64::from(self.curr)
    }
}

#[derive(Debug, Clone)]
struct Client {
    last_seen: u64,
    counters: Vec<Sliding>,
    recent_404: [u64; RECENT_PATHS],
    next_404: usize,
}

/// Per-client counters for one set of rules (kept across reloads while the rules are unchanged).
#[derive(Debug)]
pub(crate) struct Tracker {
    shards: Vec<Mutex<HashMap<IpAddr, Client>>>,
    per_shard: usize,
}

/// Behavioural tracker and ban checker built from the `abuse` section.
pub struct Abuse {
    spec: AbuseSpec,
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
    bans_issued: AtomicU64,
}

impl std::fmt::Debug for Abuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Abuse")
            .field("rules", &self.spec.rules.len())
            .finish_non_exhaustive()
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

impl Abuse {
    /// Builds the tracker; counters survive a reload when the section is unchanged.
    pub fn from_spec(spec: &AbuseSpec, shared: &Arc<Shared>) -> Result<Self, RateLimitError> {
        if spec.scope == Scope::Shared && shared.redis().is_none() {
            return Err(RateLimitError::NoRedis("abuse".to_owned()));
        }
        let mut slot = shared.abuse_state.lock();
        let tracker = match &*slot {
            Some((old, t)) if old == spec => Arc::clone(t),
            _ => {
                let t = Arc::new(Tracker {
                    shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                    per_shard: spec.max_clients.div_ceil(SHARDS).max(1),
                });
                *slot = Some((spec.clone(), Arc::clone(&t)));
                t
            }
        };
        drop(slot);
        Ok(Self {
            spec: spec.clone(),
            shared: Arc::clone(shared),
            tracker,
            bans_issued: AtomicU64::new(0),
        })
    }

    /// Refuses a banned client (403 or 429 as configured, reason `banned`, with `Retry-After`
    /// set to the time the ban has left). A read lock and one hash lookup: call it before
    /// anything expensive.
    pub fn check(&self, req: &RequestView<'_>) -> Result<(), Deny> {
        self.check_ban(req.client_ip)
    }

    /// [`check`](Self::check) for an address.
    pub fn check_ban(&self, ip: IpAddr) -> Result<(), Deny> {
        match self.shared.bans.active(ip, self.shared.now_ns()) {
            None => Ok(()),
            Some(left) => {
                let secs = retry_after_secs(Duration::from_nanos(left)).max(1);
                Err(
                    Deny::new(self.spec.ban_status, "banned", "access temporarily blocked")
                        .with_header("Retry-After", secs.to_string()),
                )
            }
        }
    }

    /// Counts one finished request and bans the client when a rule fires. Never blocks. In
    /// shared scope each counted event is also counted in Redis (one script call per event, from
    /// a spawned task), so a client spreading its attempts over several gateways is banned when
    /// the combined count crosses the threshold; a ban is written to Redis for every gateway.
    pub fn observe(&self, ev: &Observation<'_>) {
        if self.spec.exempt.iter().any(|n| n.contains(&ev.client_ip)) || self.spec.rules.is_empty()
        {
            return;
        }
        let now = self.shared.now_ns();
        let (hits, fired) = self.count(ev, now);
        if self.shared.bans.active(ev.client_ip, now).is_some() {
            return;
        }
        if let Some(rule) = fired.and_then(|i| self.spec.rules.get(i)) {
            self.ban(ev.client_ip, &rule.name, rule.ban_for);
        } else if self.spec.scope == Scope::Shared && !hits.is_empty() {
            self.count_shared(ev.client_ip, hits);
        }
    }

    fn count_shared(&self, ip: IpAddr, hits: Vec<usize>) {
        let (Some(store), Ok(handle)) =
            (self.shared.redis(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let rules: Vec<AbuseRule> = hits
            .into_iter()
            .filter_map(|i| self.spec.rules.get(i).cloned())
            .collect();
        let shared = Arc::clone(&self.shared);
        handle.spawn(async move {
            let member = ip.to_string();
            for rule in rules {
                let now = shared.now_ns();
                match store
                    .hit(now, &rule.name, &member, rule.within, rule.more_than, rule.ban_for)
                    .await
                {
                    Ok(false) => {}
                    Ok(true) => {
                        let now = shared.now_ns();
                        let ban = Ban {
                            until: now.saturating_add(ns(rule.ban_for)),
                            rule: rule.name.clone(),
                            seen: now,
                        };
                        shared.bans.insert(ip, ban, now);
                        tracing::info!(client_ip = %ip, rule = %rule.name, "client banned across gateways");
                        break;
                    }
                    Err(why) => {
                        tracing::debug!(client_ip = %ip, ?why, "cannot count abuse in redis");
                        break;
                    }
                }
            }
        });
    }

    /// Bans `ip` for `ttl` under `rule` (also used by the admin endpoint).
    pub fn ban(&self, ip: IpAddr, rule: &str, ttl: Duration) {
        let now = self.shared.now_ns();
        self.shared.bans.insert(
            ip,
            Ban {
                until: now.saturating_add(ns(ttl)),
                rule: rule.to_owned(),
                seen: now,
            },
            now,
        );
        self.bans_issued.fetch_add(1, Ordering::Relaxed);
        tracing::info!(client_ip = %ip, rule, ttl_secs = ttl.as_secs(), "client banned");
        if self.spec.scope == Scope::Shared {
            if let (Some(store), Ok(handle)) =
                (self.shared.redis(), tokio::runtime::Handle::try_current())
            {
                let member = ip.to_string();
                let shared = Arc::clone(&self.shared);
                handle.spawn(async move {
                    if let Err(why) = store.ban(shared.now_ns(), &member, ttl).await {
                        tracing::warn!(client_ip = %member, ?why, "cannot share ban through redis");
                    }
                });
            }
        }
    }

    /// Bans issued by this node since start.
    #[must_use]
    pub fn bans_issued(&self) -> u64 {
        self.bans_issued.load(Ordering::Relaxed)
    }

    /// Counts the event locally: the indexes of the rules it counts for, and the first rule
    /// whose local count went over its threshold.
    fn count(&self, ev: &Observation<'_>, now: u64) -> (Vec<usize>, Option<usize>) {
        let t = &self.tracker;
        let idx = usize::try_from(self.shared.hash(&ev.client_ip) >> 59).unwrap_or(0) % SHARDS;
        let Some(shard) = t.shards.get(idx) else {
            return (Vec::new(), None);
        };
        let mut shard = shard.lock();
        if shard.len() >= t.per_shard && !shard.contains_key(&ev.client_ip) {
            // Drop the least recently seen eighth.
            let mut seen: Vec<u64> = shard.values().map(|c| c.last_seen).collect();
            let k = (t.per_shard / 8).max(1).min(seen.len());
            let (_, nth, _) = seen.select_nth_unstable(k - 1);
            let cut = *nth;
            shard.retain(|_, c| c.last_seen > cut);
        }
        let client = shard.entry(ev.client_ip).or_insert_with(|| Client {
            last_seen: now,
            counters: vec![Sliding::default(); self.spec.rules.len()],
            recent_404: [0; RECENT_PATHS],
            next_404: 0,
        });
        client.last_seen = now;
        let new_404_path = if ev.status == 404 {
            let h = self.shared.hash(ev.path) | 1;
            if client.recent_404.contains(&h) {
                false
            } else {
                if let Some(slot) = client.recent_404.get_mut(client.next_404 % RECENT_PATHS) {
                    *slot = h;
                }
                client.next_404 = client.next_404.wrapping_add(1);
                true
            }
        } else {
            false
        };
        let mut fired = None;
        let mut hits = Vec::new();
        for (i, (rule, counter)) in self
            .spec
            .rules
            .iter()
            .zip(client.counters.iter_mut())
            .enumerate()
        {
            let hit = match rule.counter {
                AbuseCounter::Requests => true,
                AbuseCounter::ClientErrors => (400..500).contains(&ev.status),
                AbuseCounter::ServerErrors => (500..600).contains(&ev.status),
                AbuseCounter::NotFoundPaths => new_404_path,
                AbuseCounter::AuthFailures => ev.auth_failed,
                AbuseCounter::WafHits => ev.waf_hit,
            };
            if !hit {
                continue;
            }
            hits.push(i);
            if counter.add(now, ns(rule.within)) > rule.more_than && fired.is_none() {
                fired = Some(i);
            }
        }
        (hits, fired)
    }

    /// Active bans, longest remaining first (for the admin endpoint).
    #[must_use]
    pub fn list_bans(&self) -> Vec<BanInfo> {
        let now = self.shared.now_ns();
        let mut v: Vec<BanInfo> = self
            .shared
            .bans
            .bans
            .read()
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(ip, b)| BanInfo {
                ip: *ip,
                rule: b.rule.clone(),
                remaining: Duration::from_nanos(b.until - now),
            })
            .collect();
        v.sort_by(|a, b| b.remaining.cmp(&a.remaining).then(a.ip.cmp(&b.ip)));
        v
    }

    /// Lifts a ban here and, in shared mode, on every gateway. Returns whether one was active
    /// locally.
    pub async fn unban(&self, ip: IpAddr) -> Result<bool, RateLimitError> {
        let was = self.shared.bans.bans.write().remove(&ip).is_some();
        if self.spec.scope == Scope::Shared {
            if let Some(store) = self.shared.redis() {
                store
                    .unban(self.shared.now_ns(), &ip.to_string())
                    .await
                    .map_err(|why| RateLimitError::Redis(format!("{why:?}")))?;
            }
        }
        Ok(was)
    }

    /// Pulls the shared bans from Redis once: adds the ones made elsewhere and drops the ones
    /// lifted elsewhere. Returns how many shared bans are active.
    pub async fn sync_bans(&self) -> Result<usize, RateLimitError> {
        let Some(store) = self
            .shared
            .redis()
            .filter(|_| self.spec.scope == Scope::Shared)
        else {
            return Ok(0);
        };
        let now = self.shared.now_ns();
        let list = store
            .bans(now, MAX_BANS)
            .await
            .map_err(|why| RateLimitError::Redis(format!("{why:?}")))?;
        let mut fresh = HashMap::with_capacity(list.len());
        for (member, left) in &list {
            if let Ok(ip) = member.parse::<IpAddr>() {
                fresh.insert(ip, now.saturating_add(ns(*left)));
            }
        }
        // A ban this node made in the last two intervals may not have reached Redis yet.
        let grace = ns(self.spec.sync_interval).saturating_mul(2);
        let mut map = self.shared.bans.bans.write();
        map.retain(|ip, b| {
            b.until > now && (fresh.contains_key(ip) || now.saturating_sub(b.seen) < grace)
        });
        drop(map);
        for (ip, until) in fresh {
            let rule = self
                .shared
                .bans
                .bans
                .read()
                .get(&ip)
                .map_or_else(|| "shared".to_owned(), |b| b.rule.clone());
            self.shared.bans.insert(
                ip,
                Ban {
                    until,
                    rule,
                    seen: now,
                },
                now,
            );
        }
        Ok(list.len())
    }

    /// Spawns a task that calls [`sync_bans`](Self::sync_bans) every `sync_interval` until the
    /// tracker is dropped. Does nothing in local scope.
    pub fn spawn_sync(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.spec.scope != Scope::Shared {
            return None;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let every = self.spec.sync_interval;
        let handle = tokio::runtime::Handle::try_current().ok()?;
        Some(handle.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { break };
                if let Err(e) = this.sync_bans().await {
                    tracing::debug!(error = %e, "ban sync failed");
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_counter_weights_the_previous_window() {
        let w = 60_000_000_000;
        let mut s = Sliding::default();
        for _ in 0..10 {
            s.add(0, w);
        }
        // Halfway through the next window half of the previous ten still count.
        assert_eq!(s.add(w + w / 2, w), 5 + 1);
        // Two windows later everything is forgotten.
        assert_eq!(s.add(4 * w, w), 1);
    }
}
