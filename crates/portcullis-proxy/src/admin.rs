//! The admin listener: `/metrics`, `/healthz`, `/readyz`. Never bound on a public listener.

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::state::Shared;

/// The admin HTTP application.
#[derive(Debug)]
pub(crate) struct AdminApp {
    shared: Arc<Shared>,
}

impl AdminApp {
    /// An admin app over the shared state.
    #[must_use]
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_owned();
        match path.as_str() {
            "/metrics" => {
                let mut body = self.shared.metrics.render();
                let auth = self.shared.filters.auth.metrics().snapshot();
                crate::metrics::render_counters(&mut body, &auth);
                reply(200, "text/plain; version=0.0.4", body)
            }
            "/healthz" => reply(200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => {
                if self.shared.is_ready() {
                    reply(200, "text/plain", b"ready\n".to_vec())
                } else if self.shared.is_draining() {
                    reply(503, "text/plain", b"draining\n".to_vec())
                } else {
                    reply(503, "text/plain", b"starting\n".to_vec())
                }
            }
            "/config" => {
                let rt = self.shared.runtime();
                let body = serde_json::json!({
                    "generation": rt.generation,
                    "routes": rt.routes.routes().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
                    "upstreams": rt.pools.iter().map(|p| serde_json::json!({
                        "name": p.name(),
                        "backends": p.status(std::time::Instant::now()).iter().map(|s| serde_json::json!({
                            "address": s.address.to_string(), "weight": s.weight, "healthy": s.healthy, "ejected": s.ejected,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                });
                reply(
                    200,
                    "application/json",
                    serde_json::to_vec_pretty(&body).unwrap_or_default(),
                )
            }
            _ => reply(404, "text/plain", b"not found\n".to_vec()),
        }
    }
}
