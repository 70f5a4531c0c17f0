//! What changes the runtime while the process runs: the config directory watcher, SIGHUP, and
//! the active health checker.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::state::{Shared, StartError};

enum Trigger {
    /// Something changed on disk.
    Files,
    /// SIGHUP: reload even if nothing seems to have changed.
    Signal,
}

/// Starts the reload thread: SIGHUP always reloads; with `watch`, changes in the config
/// directory (including Kubernetes' `..data` symlink swap) reload after `debounce`.
pub(crate) fn spawn_reloader(
    shared: Arc<Shared>,
    path: &Path,
    watch: bool,
    debounce: Duration,
) -> Result<(), StartError> {
    let (tx, rx) = mpsc::channel::<Trigger>();
    let mut signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]).map_err(|source| {
            StartError::Io {
                what: "SIGHUP handler",
                source,
            }
        })?;
    let sig_tx = tx.clone();
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                if sig_tx.send(Trigger::Signal).is_err() {
                    return;
                }
            }
        })
        .map_err(|source| StartError::Io {
            what: "signal thread",
            source,
        })?;

    let watcher = if watch {
        // Watch the directory, not the files: ConfigMap updates replace a symlink.
        let dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            path.parent().map_or_else(|| ".".into(), Path::to_path_buf)
        };
        let file_tx = tx;
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = file_tx.send(Trigger::Files);
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        // Certificate directories too (a Kubernetes Secret mount swaps its `..data` symlink
        // there). Fixed at start: a directory first named by a later reload needs SIGHUP.
        let mut tls_dirs: Vec<_> = shared
            .runtime()
            .config
            .tls_files()
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .filter(|d| *d != dir)
            .collect();
        tls_dirs.sort();
        tls_dirs.dedup();
        for d in tls_dirs {
            if let Err(e) = watcher.watch(&d, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %d.display(), error = %e, "cannot watch certificate directory; reload with SIGHUP");
            }
        }
        Some(watcher)
    } else {
        None
    };

    std::thread::Builder::new()
        .name("reloader".into())
        .spawn(move || {
            let _watcher = watcher;
            yield_cpu_to_requests();
            while let Ok(first) = rx.recv() {
                let mut force = matches!(first, Trigger::Signal);
                // Debounce: editors and kubelet write in several steps.
                let deadline = Instant::now() + debounce;
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    match rx.recv_timeout(left) {
                        Ok(Trigger::Signal) => force = true,
                        Ok(Trigger::Files) => {}
                        Err(_) => break,
                    }
                }
                // Errors are logged and counted inside; the old runtime keeps serving.
                let _ = shared.reload(force);
            }
        })
        .map_err(|source| StartError::Io {
            what: "reload thread",
            source,
        })?;
    Ok(())
}

/// The nice value of the threads that rebuild or free a config. Parsing, validating and
/// compiling 10 000 routes takes about half a second of CPU; where that shares a core with
/// worker threads (a pinned or CPU-limited pod), the workers should win. At nice 10 a reload
/// still gets about a tenth of a saturated core, so it finishes under full load instead of
/// waiting for idle time.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`] (Linux keeps a nice value
/// per thread). Raising one's own nice value needs no privilege; if it fails anyway the thread
/// runs at the normal priority.
pub(crate) fn yield_cpu_to_requests() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICE) {
        tracing::debug!(error = %e, "cannot lower the priority of a background thread");
    }
}

/// Runs active health checks of every pool of the current runtime and exports their health.
#[derive(Debug)]
pub(crate) struct HealthChecker {
    shared: Arc<Shared>,
}

impl HealthChecker {
    /// A checker over the shared state.
    #[must_use]
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let tick = Duration::from_millis(100);
        loop {
            let runtime = self.shared.runtime();
            let now = Instant::now();
            let checks = runtime.pools.iter().map(|p| p.health_check_if_due(now));
            futures::future::join_all(checks).await;
            for pool in runtime.pools.iter() {
                for s in pool.status(Instant::now()) {
                    let up = i64::from(s.healthy && !s.ejected);
                    self.shared
                        .metrics
                        .backend_healthy
                        .with_label_values(&[pool.name(), &s.address.to_string()])
                        .set(up);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Keeps filter state fresh off the request path: JWKS refreshes and API-key file re-reads.
#[derive(Debug)]
pub(crate) struct FilterMaintenance {
    shared: Arc<Shared>,
}

impl FilterMaintenance {
    /// Maintenance over the shared state.
    #[must_use]
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl BackgroundService for FilterMaintenance {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let tick = Duration::from_secs(1);
        loop {
            self.shared.filters.auth.refresh_due().await;
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
