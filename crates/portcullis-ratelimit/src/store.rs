//! The Redis side: a lazily connected connection manager, a short timeout on every call, a
//! circuit breaker, and the Lua scripts (GCRA and bans) that run atomically on Redis's clock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use portcullis_config::RedisSpec;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, Script};

use crate::gcra::{Gcra, Outcome};
use crate::RateLimitError;

/// GCRA over several limits of one request, all or nothing, on Redis time (microseconds).
/// KEYS = one key per limit; ARGV = interval, tolerance per limit. Returns, per limit,
/// `admitted (1/0), ahead_us` where `ahead` is `new_tat - now` when every limit admitted and
/// `tat - now` otherwise.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats = {}
local all = true
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local tol = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tats[i] = tat
  if tat - now > tol then all = false end
end
local out = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local tol = tonumber(ARGV[2 * i])
  local tat = tats[i]
  if all then
    local new = tat + interval
    redis.call('SET', KEYS[i], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 1)
    out[2 * i - 1] = 1
    out[2 * i] = new - now
  else
    out[2 * i - 1] = (tat - now <= tol) and 1 or 0
    out[2 * i] = tat - now
  end
end
return out
";

/// Adds a ban for ARGV[2] ms (keeps the longer one). KEYS[1] = ban set; ARGV[1] = member.
const BAN_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[2])
local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if cur == nil or cur < until_ms then
  redis.call('ZADD', KEYS[1], until_ms, ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return 1
";

/// Drops expired bans and returns `member, remaining_ms` pairs (at most ARGV[1] of them).
const BANS_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local r = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #r, 2 do
  out[#out + 1] = r[i]
  out[#out + 1] = tostring(tonumber(r[i + 1]) - now)
end
return out
";

/// One event of a behavioural rule, counted across gateways in a two-bucket sliding window on
/// Redis time (one hash per rule and client, expiring after two windows); over the threshold
/// the client is added to the ban set as by `BAN_LUA`. KEYS = counter hash, ban set; ARGV =
/// window ms, threshold, ban ms, member. Returns 1 when it banned.
const HIT_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = tonumber(ARGV[1])
local b = math.floor(now / w)
local v = redis.call('HMGET', KEYS[1], 'b', 'c', 'p')
local vb = tonumber(v[1])
local c = tonumber(v[2]) or 0
local p = tonumber(v[3]) or 0
if vb == nil or vb < b - 1 then
  c = 0
  p = 0
elseif vb == b - 1 then
  p = c
  c = 0
end
c = c + 1
redis.call('HSET', KEYS[1], 'b', b, 'c', c, 'p', p)
redis.call('PEXPIRE', KEYS[1], 2 * w)
local total = math.floor(p * (w - (now - b * w)) / w) + c
if total <= tonumber(ARGV[2]) then return 0 end
local ban_ms = tonumber(ARGV[3])
local until_ms = now + ban_ms
local cur = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[4]))
if cur == nil or cur < until_ms then
  redis.call('ZADD', KEYS[2], until_ms, ARGV[4])
end
if redis.call('PTTL', KEYS[2]) < ban_ms then redis.call('PEXPIRE', KEYS[2], ban_ms) end
return 1
";

/// Largest tolerance sent to Redis, in µs: Lua numbers are doubles, exact below 2^53.
const MAX_LUA_US: u64 = 1 << 50;

/// Redis health as seen by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisState {
    /// No `redis` section in the config.
    Disabled,
    /// Not connected yet (or the connection attempt failed; it is retried on use).
    Connecting,
    /// Connected and the breaker is closed.
    Up,
    /// The breaker is open: Redis is skipped until the cool-down ends.
    BreakerOpen,
}

pub(crate) struct RedisStore {
    spec: RedisSpec,
    conn: ArcSwapOption<ConnectionManager>,
    connecting: AtomicBool,
    failures: AtomicU32,
    /// Monotonic ns (see [`crate::Shared::now_ns`]) until which the breaker stays open.
    open_until: AtomicU64,
    probing: AtomicBool,
    gcra: Script,
    ban: Script,
    bans: Script,
    hit: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.spec.url)
            .field("failures", &self.failures.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why a Redis call did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    NotConnected,
    BreakerOpen,
    Timeout,
    Error,
}

impl RedisStore {
    pub(crate) fn new(spec: RedisSpec) -> Self {
        Self {
            spec,
            conn: ArcSwapOption::empty(),
            connecting: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            gcra: Script::new(GCRA_LUA),
            ban: Script::new(BAN_LUA),
            bans: Script::new(BANS_LUA),
            hit: Script::new(HIT_LUA),
        }
    }

    pub(crate) fn spec(&self) -> &RedisSpec {
        &self.spec
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.spec.key_prefix)
    }

    pub(crate) fn state(&self, now: u64) -> RedisState {
        if self.conn.load().is_none() {
            RedisState::Connecting
        } else if self.open_until.load(Ordering::Acquire) > now {
            RedisState::BreakerOpen
        } else {
            RedisState::Up
        }
    }

    /// Starts connecting in the background unless a connection exists or is being made.
    /// Needs a Tokio runtime; without one it does nothing (and is retried on the next use).
    pub(crate) fn start_connect(self: &Arc<Self>) {
        if self.conn.load().is_some() || self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.connecting.store(false, Ordering::Release);
            return;
        };
        let this = Arc::clone(self);
        handle.spawn(async move {
            match this.connect().await {
                Ok(conn) => {
                    this.conn.store(Some(Arc::new(conn)));
                    tracing::info!(url = %this.spec.url, "connected to redis");
                }
                Err(e) => tracing::warn!(url = %this.spec.url, error = %e, "cannot connect to redis; retrying on use"),
            }
            this.connecting.store(false, Ordering::Release);
        });
    }

    async fn connect(&self) -> Result<ConnectionManager, RateLimitError> {
        let mut info = self
            .spec
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| RateLimitError::Redis(e.to_string()))?;
        if let Some(var) = &self.spec.password_env {
            let pw =
                std::env::var(var).map_err(|_| RateLimitError::MissingPassword(var.clone()))?;
            info.redis.password = Some(pw);
        }
        let client = redis::Client::open(info).map_err(|e| RateLimitError::Redis(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.spec.connect_timeout)
            .set_response_timeout(self.spec.timeout)
            .set_number_of_retries(1)
            .set_max_delay(1_000);
        let fut = ConnectionManager::new_with_config(client, config);
        match tokio::time::timeout(self.spec.connect_timeout, fut).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(RateLimitError::Redis(e.to_string())),
            Err(_) => Err(RateLimitError::Redis("connect timed out".to_owned())),
        }
    }

    /// A connection if Redis may be called now (breaker closed, or this caller is the probe).
    fn admit_call(self: &Arc<Self>, now: u64) -> Result<(ConnectionManager, bool), Unavailable> {
        let open_until = self.open_until.load(Ordering::Acquire);
        let mut probe = false;
        if open_until > now {
            return Err(Unavailable::BreakerOpen);
        }
        if open_until != 0 {
            // Cool-down over: exactly one caller probes, the others keep skipping.
            if self.probing.swap(true, Ordering::AcqRel) {
                return Err(Unavailable::BreakerOpen);
            }
            probe = true;
        }
        match self.conn.load_full() {
            Some(c) => Ok(((*c).clone(), probe)),
            None => {
                if probe {
                    self.probing.store(false, Ordering::Release);
                }
                self.start_connect();
                Err(Unavailable::NotConnected)
            }
        }
    }

    fn record(&self, ok: bool, probe: bool, now: u64) {
        if ok {
            self.failures.store(0, Ordering::Release);
            self.open_until.store(0, Ordering::Release);
        } else {
            let n = self
                .failures
                .fetch_add(1, Ordering::AcqRel)
                .saturating_add(1);
            if probe || n >= self.spec.failure_threshold {
                let cool = u64::try_from(self.spec.cooldown.as_nanos()).unwrap_or(u64::MAX);
                self.open_until
                    .store(now.saturating_add(cool).max(1), Ordering::Release);
                if !probe {
                    tracing::warn!(failures = n, "redis circuit breaker opened");
                }
            }
        }
        if probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    async fn call<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        now: u64,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, Unavailable> {
        let (mut conn, probe) = self.admit_call(now)?;
        let res = tokio::time::timeout(self.spec.timeout, inv.invoke_async::<T>(&mut conn)).await;
        let out = match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis call failed");
                Err(Unavailable::Error)
            }
            Err(_) => Err(Unavailable::Timeout),
        };
        self.record(out.is_ok(), probe, now);
        out
    }

    /// Runs GCRA for `keys` (one per limit) atomically on Redis.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        now: u64,
        keys: &[String],
        limits: &[Gcra],
    ) -> Result<Vec<Outcome>, Unavailable> {
        let mut inv = self.gcra.prepare_invoke();
        for (k, g) in keys.iter().zip(limits) {
            inv.key(k);
            inv.arg((g.interval / 1_000).max(1));
            inv.arg((g.tolerance / 1_000).min(MAX_LUA_US));
        }
        let raw: Vec<i64> = self.call(now, inv).await?;
        let all = raw.chunks(2).all(|c| c.first() == Some(&1));
        let mut out = Vec::with_capacity(limits.len());
        for (chunk, g) in raw.chunks(2).zip(limits) {
            let ahead_us = chunk.get(1).copied().unwrap_or(0).max(0);
            let ahead = u64::try_from(ahead_us).unwrap_or(0).saturating_mul(1_000);
            out.push(if all {
                g.admitted(ahead)
            } else if chunk.first() == Some(&1) {
                // This limit alone would admit; report its state without consuming.
                let mut o = g.admitted(ahead.saturating_add(g.interval));
                o.admitted = true;
                o
            } else {
                g.denied(ahead)
            });
        }
        if out.len() != limits.len() {
            return Err(Unavailable::Error);
        }
        Ok(out)
    }

    /// Writes a ban of `ttl` for `member` to the shared ban set.
    pub(crate) async fn ban(
        self: &Arc<Self>,
        now: u64,
        member: &str,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let mut inv = self.ban.prepare_invoke();
        inv.key(self.key("bans"));
        inv.arg(member);
        inv.arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        self.call::<i64>(now, inv).await.map(|_| ())
    }

    /// Counts one event of `rule` for `member` across gateways; true when it banned.
    pub(crate) async fn hit(
        self: &Arc<Self>,
        now: u64,
        rule: &str,
        member: &str,
        window: Duration,
        more_than: u64,
        ban_for: Duration,
    ) -> Result<bool, Unavailable> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut inv = self.hit.prepare_invoke();
        inv.key(self.key(&format!("abuse:{rule}:{member}")));
        inv.key(self.key("bans"));
        inv.arg(ms(window));
        inv.arg(more_than);
        inv.arg(ms(ban_for));
        inv.arg(member);
        self.call::<i64>(now, inv).await.map(|banned| banned == 1)
    }

    /// Removes a ban from the shared set.
    pub(crate) async fn unban(self: &Arc<Self>, now: u64, member: &str) -> Result<(), Unavailable> {
        let script = Script::new("return redis.call('ZREM', KEYS[1], ARGV[1])");
        let mut inv = script.prepare_invoke();
        inv.key(self.key("bans"));
        inv.arg(member);
        self.call::<i64>(now, inv).await.map(|_| ())
    }

    /// Every active shared ban with its remaining time.
    pub(crate) async fn bans(
        self: &Arc<Self>,
        now: u64,
        max: usize,
    ) -> Result<Vec<(String, Duration)>, Unavailable> {
        let mut inv = self.bans.prepare_invoke();
        inv.key(self.key("bans"));
        inv.arg(max);
        let raw: Vec<String> = self.call(now, inv).await?;
        Ok(raw
            .chunks(2)
            .filter_map(|c| match c {
                [member, ms] => ms
                    .parse::<u64>()
                    .ok()
                    .map(|ms| (member.clone(), Duration::from_millis(ms))),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RedisSpec {
        RedisSpec {
            url: "redis://127.0.0.1:1".into(),
            password_env: None,
            timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_millis(100),
            failure_threshold: 3,
            cooldown: Duration::from_secs(5),
            key_prefix: "t".into(),
        }
    }

    #[test]
    fn breaker_opens_after_threshold_and_one_probe_closes_it() {
        let s = Arc::new(RedisStore::new(spec()));
        s.record(false, false, 10);
        s.record(false, false, 10);
        assert_eq!(s.open_until.load(Ordering::Acquire), 0);
        s.record(false, false, 10);
        let until = s.open_until.load(Ordering::Acquire);
        assert_eq!(until, 10 + 5_000_000_000);
        assert_eq!(
            s.admit_call(until - 1).err(),
            Some(Unavailable::BreakerOpen)
        );
        // After the cool-down the (only) probe finds no connection: the breaker stays as is.
        assert_eq!(s.admit_call(until).err(), Some(Unavailable::NotConnected));
        // A failed probe reopens for a full cool-down; a good call closes.
        s.record(false, true, until);
        assert_eq!(s.open_until.load(Ordering::Acquire), until + 5_000_000_000);
        s.record(true, true, until);
        assert_eq!(s.open_until.load(Ordering::Acquire), 0);
    }
}
