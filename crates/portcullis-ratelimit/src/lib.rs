//! Rate limiting and abuse protection for Portcullis: local GCRA limiters with bounded memory,
//! Redis-shared limiters and plan quotas (one atomic Lua script on Redis's clock, with a timeout,
//! a circuit breaker and a per-policy fail-open or fail-closed choice), behavioural counters and
//! bans, IP allow/deny lists and in-flight limits. Every check takes a borrowed
//! [`RequestView`](portcullis_core::RequestView) and answers `Result<_, Deny>`; the crate must
//! not depend on Pingora, so all of it is testable without a network (Redis tests start their
//! own `redis-server`). State that must outlive a config reload lives in [`Shared`].

mod abuse;
mod concurrency;
mod gcra;
mod iplist;
mod limiter;
mod store;

use std::path::PathBuf;

pub use abuse::{Abuse, BanInfo, Observation};
pub use concurrency::{Concurrency, InFlightGuard};
pub use iplist::{read_list_file, IpLists, IpSet};
pub use limiter::{
    retry_after_secs, Admission, PolicyMetrics, RateLimiter, Shared, SharedOptions,
    DEFAULT_MAX_KEYS,
};
pub use store::RedisState;

/// Failures building or running the rate-limit machinery (never a request verdict: those are
/// [`Deny`](portcullis_core::Deny)).
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// A shared policy or shared bans without a `redis` section.
    #[error("{0}: `scope: shared` needs a top-level `redis` section")]
    NoRedis(String),
    /// The password environment variable is not set.
    #[error("environment variable {0} (redis.password_env) is not set")]
    MissingPassword(String),
    /// Redis refused, failed or timed out.
    #[error("redis: {0}")]
    Redis(String),
    /// An IP list file could not be read or has a bad line.
    #[error("{}:{line}: {message}", path.display())]
    ListFile {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when the file cannot be read).
        line: usize,
        /// What is wrong.
        message: String,
    },
}
