//! Process state shared by every listener: the current runtime behind an `ArcSwap`, metrics, the
//! access log, readiness, and the reload procedure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use portcullis_config::{Config, ConfigError};

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::runtime::{BuildError, FilterState, Runtime};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A runtime could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A thread or watcher could not be started.
    #[error("{what}")]
    Io {
        /// What was being started.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The config watcher could not be started.
    #[error("config watcher: {0}")]
    Watch(#[from] notify::Error),
    /// Process-wide filter state could not be created.
    #[error("filters: {0}")]
    Filter(String),
    /// A TLS listener's certificates or client CA could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Why a reload was refused; the previous runtime keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config is invalid.
    #[error("invalid config:\n{0}")]
    Invalid(#[from] ConfigError),
    /// The new config could not be compiled.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The new certificates or client CAs could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Shared process state.
#[derive(Debug)]
pub struct Shared {
    runtime: ArcSwap<Runtime>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Access-log writer.
    pub access_log: AccessLog,
    /// Filter state kept across reloads.
    pub filters: FilterState,
    /// Certificates and client CAs of the TLS listeners, swapped on reload.
    pub(crate) tls: crate::tls::TlsListeners,
    config_path: PathBuf,
    ready: AtomicBool,
    draining: AtomicBool,
    /// Serialises reloads and remembers the digest of the files last loaded.
    reload_lock: Mutex<u64>,
}

impl Shared {
    /// Builds the first runtime from an already validated config.
    pub fn new(config_path: PathBuf, config: Config) -> Result<Arc<Shared>, StartError> {
        let metrics = Metrics::new()?;
        let access_log =
            AccessLog::start(metrics.access_log_dropped.clone()).map_err(|source| {
                StartError::Io {
                    what: "access log thread",
                    source,
                }
            })?;
        let filters = FilterState::new()?;
        let tls = crate::tls::TlsListeners::new(&config, &metrics)?;
        let digest = files_digest(&config_path, &config.tls_files());
        let runtime = Runtime::build(config, None, &filters)?;
        metrics.last_reload_success.set(unix_now());
        Ok(Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            access_log,
            filters,
            tls,
            config_path,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            reload_lock: Mutex::new(digest),
        }))
    }

    /// The current runtime (requests keep the one they started with).
    #[must_use]
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Marks the listeners as up.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Marks the process as draining (after SIGTERM): /readyz turns 503.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Ready to receive traffic: config loaded, listeners up, not draining.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// Whether a SIGTERM drain is under way.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Reloads the config from disk. `force` reloads even if the files did not change (SIGHUP).
    /// On failure the previous runtime keeps serving; the error is logged and counted.
    /// Blocking (file I/O, DNS): call it off the request path.
    pub fn reload(&self, force: bool) -> Result<Option<u64>, ReloadError> {
        let mut last_digest = self.reload_lock.lock();
        // Certificates count as config: a changed file on disk reloads like a changed YAML.
        let digest = files_digest(&self.config_path, &self.runtime().config.tls_files());
        if !force && digest == *last_digest {
            return Ok(None);
        }
        let started = Instant::now();
        let result = self.try_reload();
        self.metrics
            .reload_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(done) => {
                *last_digest = digest;
                drop(last_digest);
                self.metrics.reloads.with_label_values(&["ok"]).inc();
                self.metrics.last_reload_success.set(unix_now());
                tracing::info!(
                    generation = done.generation,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    load_ms = done.load.as_millis() as u64,
                    build_ms = done.build.as_millis() as u64,
                    "config reloaded"
                );
                retire(done.previous);
                Ok(Some(done.generation))
            }
            Err(e) => {
                self.metrics.reloads.with_label_values(&["failed"]).inc();
                match &e {
                    ReloadError::Invalid(errors) => {
                        for d in &errors.diagnostics {
                            tracing::error!(error = %d, "config reload rejected");
                        }
                    }
                    ReloadError::Build(b) => tracing::error!(error = %b, "config reload rejected"),
                    ReloadError::Tls(t) => tracing::error!(error = %t, "config reload rejected"),
                }
                Err(e)
            }
        }
    }

    fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        let load_started = Instant::now();
        let config = portcullis_config::load_path(&self.config_path)?;
        let load = load_started.elapsed();
        let previous = self.runtime.load_full();
        let old = &previous.config;
        // `trusted_proxies`, `keepalive_timeout` and `client_body_timeout` are read per request
        // from the runtime, so they apply on reload.
        let restart_only = |s: &portcullis_config::Server| portcullis_config::Server {
            trusted_proxies: Vec::new(),
            keepalive_timeout: std::time::Duration::ZERO,
            client_body_timeout: std::time::Duration::ZERO,
            ..s.clone()
        };
        if restart_only(&old.server) != restart_only(&config.server)
            || crate::tls::listeners_need_restart(&old.listeners, &config.listeners)
            || old.admin != config.admin
        {
            tracing::warn!("changes to `server`, `listeners` or `admin` take effect after a restart; routes, upstreams and policies were reloaded");
        }
        // Staged first: a certificate rustls refuses fails the whole reload, old ones keep serving.
        let tls = self.tls.stage(&config)?;
        let build_started = Instant::now();
        let runtime = Runtime::build(config, Some(&previous), &self.filters)?;
        let build = build_started.elapsed();
        let generation = runtime.generation;
        self.runtime.store(Arc::new(runtime));
        self.tls.commit(tls);
        // Forget health series of pools that no longer exist; the health checker refills them.
        self.metrics.backend_healthy.reset();
        Ok(Reloaded {
            generation,
            load,
            build,
            previous,
        })
    }
}

/// A successful reload: what the log line reports, and the runtime it replaced.
struct Reloaded {
    generation: u64,
    /// Reading, parsing and validating the files (regexes compiled here).
    load: Duration,
    /// Compiling the runtime: route table, pools, filters.
    build: Duration,
    previous: Arc<Runtime>,
}

/// How long the reload thread waits for requests of the replaced generation before leaving the
/// last of them to free it.
const RETIRE_WAIT: Duration = Duration::from_secs(10);

/// Frees a replaced runtime on a thread of its own once requests that started on it have
/// finished. Freeing a big generation (10 000 routes, thousands of compiled regexes) is real
/// work; without this the last request to finish on the old generation would do it on a worker
/// thread, in front of every request queued behind it. Requests that outlive
/// `RETIRE_WAIT` (long polls, WebSockets) still free it themselves. The reload thread does not
/// wait, so the next reload is not delayed.
fn retire(previous: Arc<Runtime>) {
    let spawned = std::thread::Builder::new()
        .name("retire".into())
        .spawn(move || {
            crate::reload::yield_cpu_to_requests();
            let deadline = Instant::now() + RETIRE_WAIT;
            while Arc::strong_count(&previous) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(previous);
        });
    if let Err(e) = spawned {
        // The runtime was moved into the closure and freed with it: the last request frees it.
        tracing::warn!(error = %e, "cannot start a thread to free the replaced config");
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// A digest of the config files' and TLS files' names and contents, to skip reloads that change
/// nothing.
fn files_digest(path: &std::path::Path, tls_files: &[PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Ok(files) = portcullis_config::config_files(path) {
        for f in files {
            f.hash(&mut h);
            std::fs::read(&f).unwrap_or_default().hash(&mut h);
        }
    }
    for f in tls_files {
        f.hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}
