//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/config`, `/bans`. Never bound on a
//! public listener: it has no authentication.

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

/// Reads one counter of a rate-limit policy.
type PolicyCounter = fn(&portcullis_ratelimit::PolicyMetrics) -> u64;

impl AdminApp {
    fn render_limits(&self, out: &mut Vec<u8>) {
        use std::sync::atomic::Ordering::Relaxed;
        let limits = &self.shared.filters.limits;
        let policies = limits.metrics();
        let families: [(&str, &str, PolicyCounter); 5] = [
            (
                "portcullis_ratelimit_allowed_total",
                "Requests a rate-limit policy admitted.",
                |m| m.allowed.load(Relaxed),
            ),
            (
                "portcullis_ratelimit_limited_total",
                "Requests a rate-limit policy refused with 429.",
                |m| m.limited.load(Relaxed),
            ),
            (
                "portcullis_ratelimit_redis_errors_total",
                "Redis calls of a policy that failed, timed out or were skipped by the breaker.",
                |m| m.redis_errors.load(Relaxed),
            ),
            (
                "portcullis_ratelimit_fail_open_total",
                "Decisions a shared policy took locally because Redis was unavailable.",
                |m| m.fail_open.load(Relaxed),
            ),
            (
                "portcullis_ratelimit_fail_closed_total",
                "Requests a shared policy refused with 503 because Redis was unavailable.",
                |m| m.fail_closed.load(Relaxed),
            ),
        ];
        for (name, help, get) in families {
            let samples: Vec<(String, u64)> = policies
                .iter()
                .map(|(label, m)| (label.clone(), get(m)))
                .collect();
            crate::metrics::render_family(out, (name, help, "counter"), "policy", &samples);
        }
        let redis_up = u64::from(matches!(
            limits.redis_state(),
            portcullis_ratelimit::RedisState::Up
        ));
        let (keys, _) = limits.local_keys();
        let rt = self.shared.runtime();
        let bans = rt
            .protection
            .abuse
            .as_ref()
            .map_or(0, |a| a.list_bans().len());
        let issued = rt.protection.abuse.as_ref().map_or(0, |a| a.bans_issued());
        crate::metrics::render_counters_typed(
            out,
            &[
                (
                    "portcullis_ratelimit_redis_up",
                    "1 when the shared rate-limit store is connected and its breaker closed.",
                    "gauge",
                    redis_up,
                ),
                (
                    "portcullis_ratelimit_local_keys",
                    "Keys tracked by the local rate-limit table.",
                    "gauge",
                    keys as u64,
                ),
                (
                    "portcullis_abuse_active_bans",
                    "Clients banned right now.",
                    "gauge",
                    bans as u64,
                ),
                (
                    "portcullis_abuse_bans_issued_total",
                    "Bans issued by behavioural rules in this config generation.",
                    "counter",
                    issued,
                ),
            ],
        );
    }

    /// `GET /bans` lists active bans; `DELETE /bans?ip=ADDRESS` lifts one (on every node when bans are
    /// shared).
    async fn bans(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let rt = self.shared.runtime();
        let Some(abuse) = rt.protection.abuse.clone() else {
            return reply(
                404,
                "application/json",
                br#"{"error":"no abuse section configured"}"#.to_vec(),
            );
        };
        let req = session.req_header();
        if req.method == http::Method::DELETE {
            let ip = req
                .uri
                .query()
                .and_then(|q| q.strip_prefix("ip="))
                .and_then(|v| v.parse::<std::net::IpAddr>().ok());
            let Some(ip) = ip else {
                return reply(
                    400,
                    "application/json",
                    br#"{"error":"expected DELETE /bans?ip=ADDRESS"}"#.to_vec(),
                );
            };
            return match abuse.unban(ip).await {
                Ok(lifted) => reply(
                    200,
                    "application/json",
                    serde_json::to_vec(
                        &serde_json::json!({"ip": ip.to_string(), "lifted": lifted}),
                    )
                    .unwrap_or_default(),
                ),
                Err(e) => reply(
                    502,
                    "application/json",
                    serde_json::to_vec(&serde_json::json!({"error": e.to_string()}))
                        .unwrap_or_default(),
                ),
            };
        }
        let list: Vec<_> = abuse
            .list_bans()
            .iter()
            .map(|b| serde_json::json!({"ip": b.ip.to_string(), "rule": b.rule, "remaining_seconds": b.remaining.as_secs()}))
            .collect();
        reply(
            200,
            "application/json",
            serde_json::to_vec_pretty(&serde_json::json!({"bans": list})).unwrap_or_default(),
        )
    }
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
                self.render_limits(&mut body);
                reply(200, "text/plain; version=0.0.4", body)
            }
            "/bans" => self.bans(session).await,
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
