//! Builds the Pingora server from a validated config: one proxy service per listener, the admin
//! service, the health checker, the reloader. Validation happened before anything binds.

use std::path::PathBuf;
use std::sync::Arc;

use pingora::apps::http_app::HttpServer;
use pingora::apps::HttpServerOptions;
use pingora::listeners::TcpSocketOptions;
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;
use pingora::server::{ExecutionPhase, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use portcullis_config::Config;

use crate::admin::AdminApp;
use crate::gateway::{Gateway, ListenerInfo};
use crate::reload::{spawn_reloader, HealthChecker};
use crate::state::{Shared, StartError};

fn whole_seconds(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Builds everything and serves until a signal ends the process (SIGTERM: drain, exit 0;
/// SIGINT: fast exit; SIGHUP: reload).
pub fn run(config_path: PathBuf, config: Config) -> Result<std::convert::Infallible, StartError> {
    let s = &config.server;
    let mut conf = ServerConf::default();
    conf.threads = s.threads;
    conf.work_stealing = s.work_stealing;
    conf.grace_period_seconds = Some(whole_seconds(s.grace_period));
    conf.graceful_shutdown_timeout_seconds = Some(whole_seconds(s.graceful_shutdown_timeout));
    conf.upstream_keepalive_pool_size = s.upstream_keepalive_pool_size;
    let (watch, debounce) = (s.watch_config, s.reload_debounce);
    let listeners = config.listeners.clone();
    let admin = config.admin.clone();

    let shared = Shared::new(config_path.clone(), config)?;
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let conf = Arc::clone(&server.configuration);

    for l in &listeners {
        let gateway = Gateway::new(Arc::clone(&shared), ListenerInfo { name: l.name.clone(), tls: false });
        let mut svc = http_proxy_service_with_name(&conf, gateway, &format!("listener {}", l.name));
        if l.h2c {
            if let Some(app) = svc.app_logic_mut() {
                let mut opts = HttpServerOptions::default();
                opts.h2c = true;
                app.server_options = Some(opts);
            }
        }
        // SO_REUSEPORT lets a new process bind while this one drains (rolling upgrades).
        let mut sock = TcpSocketOptions::default();
        sock.so_reuseport = Some(true);
        svc.add_tcp_with_settings(&l.address.to_string(), sock);
        server.add_service(svc);
    }
    if let Some(admin) = &admin {
        let mut svc = Service::new("admin".to_owned(), HttpServer::new_app(AdminApp::new(Arc::clone(&shared))));
        svc.threads = Some(1);
        let mut sock = TcpSocketOptions::default();
        sock.so_reuseport = Some(true);
        svc.add_tcp_with_settings(&admin.address.to_string(), sock);
        server.add_service(svc);
    }
    let mut checker = background_service("health checks", HealthChecker::new(Arc::clone(&shared)));
    checker.threads = Some(1);
    server.add_service(checker);

    spawn_reloader(Arc::clone(&shared), &config_path, watch, debounce)?;
    let mut phases = server.watch_execution_phase();
    let phase_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("phases".into())
        .spawn(move || {
            while let Ok(phase) = phases.blocking_recv() {
                match phase {
                    ExecutionPhase::Running => {
                        phase_shared.set_ready();
                        tracing::info!("portcullis ready");
                    }
                    ExecutionPhase::GracefulTerminate
                    | ExecutionPhase::ShutdownStarted
                    | ExecutionPhase::GracefulUpgradeTransferringFds => phase_shared.set_draining(),
                    _ => {}
                }
            }
        })
        .map_err(|source| StartError::Io { what: "phase thread", source })?;
    server.run_forever()
}
