//! Builds the Pingora server from a validated config: one proxy service per listener, the admin
//! service, the health checker, the reloader. Validation happened before anything binds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::apps::http_app::HttpServer;
use pingora::apps::HttpServerOptions;
use pingora::listeners::TcpSocketOptions;
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use pingora::server::{ExecutionPhase, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use portcullis_config::Config;

use crate::admin::AdminApp;
use crate::conn::{ClientGuard, ConnLimits};
use crate::gateway::{Gateway, ListenerInfo};
use crate::reload::{spawn_reloader, FilterMaintenance, HealthChecker};
use crate::state::{Shared, StartError};

fn whole_seconds(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Builds everything and serves until a signal ends the process (SIGTERM: drain, exit 0;
/// SIGINT: fast exit; SIGHUP: reload).
pub fn run(config_path: PathBuf, config: Config) -> Result<std::convert::Infallible, StartError> {
    let s = &config.server;
    // Pingora stops accepting on the signal, then waits `grace_period_seconds` before it tears
    // the runtimes down (cancelling what still runs). Our `grace_period` (keep accepting while
    // load balancers notice the pod is not ready) is spent in `DrainSignal` before Pingora hears
    // of the signal; our `graceful_shutdown_timeout` (in-flight requests finish) is Pingora's
    // grace period, cut short by the phase thread as soon as nothing is in flight.
    let drain_window = s.graceful_shutdown_timeout;
    let accept_window = s.grace_period;
    let conf = ServerConf {
        threads: s.threads,
        work_stealing: s.work_stealing,
        grace_period_seconds: Some(whole_seconds(drain_window)),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        ..ServerConf::default()
    };
    let (watch, debounce) = (s.watch_config, s.reload_debounce);
    let listeners = config.listeners.clone();
    let admin = config.admin.clone();

    // Pingora binds inside its listener threads and, when the port is taken, retries and then
    // panics while the process lives on. Binding here first turns that into a clear start-up
    // error (exit 1) before anything reports ready.
    for address in listeners
        .iter()
        .map(|l| l.address)
        .chain(admin.iter().map(|a| a.address))
    {
        preflight_bind(address).map_err(|source| StartError::Io {
            what: "bind listener",
            source: std::io::Error::new(source.kind(), format!("{address}: {source}")),
        })?;
    }
    let (header_timeout, max_connections) = (s.request_header_timeout, s.max_connections);
    let server_options = {
        let mut o = HttpServerOptions::default();
        o.keepalive_request_limit = u32::try_from(s.keepalive_requests).ok().filter(|&n| n > 0);
        o.h2_idle_timeout = Some(s.keepalive_timeout);
        o
    };
    let shared = Shared::new(config_path.clone(), config)?;
    let limits = ConnLimits {
        header_timeout,
        max_connections,
        open: Arc::default(),
        open_gauge: shared.metrics.client_connections.clone(),
        refused: shared.metrics.client_connections_refused.clone(),
        header_timeouts: shared.metrics.request_header_timeouts.clone(),
        tls_handshake_failures: shared.metrics.tls_handshake_failures.clone(),
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let conf = Arc::clone(&server.configuration);

    for l in &listeners {
        let gateway = Gateway::new(
            Arc::clone(&shared),
            ListenerInfo {
                name: l.name.clone(),
                tls: l.tls.is_some(),
            },
        );
        let mut proxy = http_proxy(&conf, gateway);
        let mut opts = server_options.clone();
        opts.h2c = l.h2c;
        proxy.server_options = Some(opts);
        // Connection cap, TLS termination (h2 and HTTP/1.1 through ALPN) and request-head
        // deadline in front of Pingora's HTTP code; Pingora itself only accepts TCP.
        let tls = shared.tls.termination(l).map_err(StartError::Tls)?;
        let mut svc = Service::new(
            format!("listener {}", l.name),
            ClientGuard::new(proxy, limits.clone(), tls),
        );
        // SO_REUSEPORT lets a new process bind while this one drains (rolling upgrades).
        let mut sock = TcpSocketOptions::default();
        sock.so_reuseport = Some(true);
        svc.add_tcp_with_settings(&l.address.to_string(), sock);
        server.add_service(svc);
    }
    if let Some(admin) = &admin {
        let mut svc = Service::new(
            "admin".to_owned(),
            HttpServer::new_app(AdminApp::new(Arc::clone(&shared))),
        );
        svc.threads = Some(1);
        let mut sock = TcpSocketOptions::default();
        sock.so_reuseport = Some(true);
        svc.add_tcp_with_settings(&admin.address.to_string(), sock);
        server.add_service(svc);
    }
    let mut checker = background_service("health checks", HealthChecker::new(Arc::clone(&shared)));
    checker.threads = Some(1);
    server.add_service(checker);
    let mut maintenance = background_service(
        "filter maintenance",
        FilterMaintenance::new(Arc::clone(&shared)),
    );
    maintenance.threads = Some(1);
    server.add_service(maintenance);

    spawn_reloader(Arc::clone(&shared), &config_path, watch, debounce)?;
    let probe_addresses: Vec<std::net::SocketAddr> = listeners.iter().map(|l| l.address).collect();
    let mut phases = server.watch_execution_phase();
    let phase_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("phases".into())
        .spawn(move || {
            while let Ok(phase) = phases.blocking_recv() {
                match phase {
                    ExecutionPhase::Running => {
                        // Pingora reports Running before every listener's socket is bound:
                        // ready only once each one accepts, or a load balancer (and the e2e
                        // tests) could send the first request to a port nobody listens on yet.
                        if wait_until_listening(&probe_addresses, Duration::from_secs(10)) {
                            phase_shared.set_ready();
                            tracing::info!("portcullis ready");
                        } else {
                            tracing::error!(
                                "a listener does not accept connections after 10s; not ready"
                            );
                        }
                    }
                    ExecutionPhase::GracefulTerminate
                    | ExecutionPhase::ShutdownStarted
                    | ExecutionPhase::GracefulUpgradeTransferringFds => phase_shared.set_draining(),
                    ExecutionPhase::ShutdownGracePeriod => {
                        exit_when_idle(&phase_shared, drain_window)
                    }
                    _ => {}
                }
            }
        })
        .map_err(|source| StartError::Io {
            what: "phase thread",
            source,
        })?;
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainSignal {
            shared: Arc::clone(&shared),
            accept_window,
        }),
    });
    std::process::exit(0)
}

/// Whether every address has a listening socket within `limit`. Probed by binding without
/// SO_REUSEPORT, which Linux refuses while a socket listens there: no connection is made, so
/// nothing reaches the gateway (or its log) for it.
fn wait_until_listening(addresses: &[std::net::SocketAddr], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    addresses.iter().all(|&address| loop {
        if is_listening(address) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    })
}

fn is_listening(address: std::net::SocketAddr) -> bool {
    let Ok(socket) = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    ) else {
        return false;
    };
    let _ = socket.set_reuse_address(true);
    matches!(socket.bind(&address.into()), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// Binds `address` the way the listener will (SO_REUSEPORT, so a draining predecessor that
/// also set it does not block us) and releases it at once.
fn preflight_bind(address: std::net::SocketAddr) -> std::io::Result<()> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())
}

/// Waits until no request is in flight (then exits 0 at once) or the drain window ends (then
/// returns and Pingora tears the runtimes down, cancelling what is left).
fn exit_when_idle(shared: &Shared, window: Duration) {
    let deadline = Instant::now() + window;
    let mut idle_polls = 0;
    while Instant::now() < deadline {
        if shared.metrics.in_flight.get() <= 0 {
            idle_polls += 1;
            // Twice in a row, so a request between its head and its counter is not cut.
            if idle_polls >= 2 {
                tracing::info!("drained: no request in flight; exiting");
                // Lets the access-log thread write the last lines.
                std::thread::sleep(Duration::from_millis(100));
                std::process::exit(0);
            }
        } else {
            idle_polls = 0;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    tracing::warn!(
        in_flight = shared.metrics.in_flight.get(),
        "drain window over; cancelling what is left"
    );
}

/// The process signals: SIGTERM marks the gateway not ready, keeps accepting for the accept
/// window (`server.grace_period`), then starts Pingora's graceful shutdown; SIGINT exits fast,
/// also during the accept window; SIGQUIT is treated as SIGTERM (no socket hand-over).
struct DrainSignal {
    shared: Arc<Shared>,
    accept_window: Duration,
}

#[async_trait::async_trait]
impl ShutdownSignalWatch for DrainSignal {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
        ) else {
            tracing::error!("cannot install signal handlers; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = quit.recv() => {}
            _ = int.recv() => return ShutdownSignal::FastShutdown,
        }
        self.shared.set_draining();
        tracing::info!(accept_window = ?self.accept_window, "SIGTERM: not ready; still accepting for the accept window");
        tokio::select! {
            () = tokio::time::sleep(self.accept_window) => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => ShutdownSignal::FastShutdown,
        }
    }
}
