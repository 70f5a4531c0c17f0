//! The floor under Portcullis: a minimal Pingora reverse proxy with none of the gateway in it (one
//! `ProxyHttp` whose only hook picks the backend from a round-robin `LoadBalancer`, Pingora's
//! default settings, one worker thread, the gateway's allocator). `make bench` runs it as the
//! `pingora-bare` scenario beside nginx and Portcullis plain, so the part of Portcullis' cost that
//! is Pingora's own is measured, not guessed (docs/performance.md).
//!
//! ```sh
//! cargo build --release -j2 -p portcullis-proxy --example bare_pingora
//! target/release/examples/bare_pingora 127.0.0.1:8080 127.0.0.1:9001
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use async_trait::async_trait;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::proxy::{http_proxy_service, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::upstreams::peer::HttpPeer;

struct Bare(LoadBalancer<RoundRobin>);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        let backend = self
            .0
            .select(b"", 256)
            .ok_or_else(|| pingora::Error::new_str("no backend"))?;
        let addr = *backend
            .addr
            .as_inet()
            .ok_or_else(|| pingora::Error::new_str("not an inet backend"))?;
        Ok(Box::new(HttpPeer::new(addr, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, backend] = args.as_slice() else {
        eprintln!("usage: bare_pingora LISTEN_ADDR BACKEND_ADDR");
        std::process::exit(2);
    };
    // SIGTERM exits at once: the bench stops it, nothing is in flight that must finish.
    let conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let lb = LoadBalancer::try_from_iter([backend.as_str()]).expect("backend address");
    let mut service = http_proxy_service(&server.configuration, Bare(lb));
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever();
}
