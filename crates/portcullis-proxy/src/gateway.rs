//! `impl ProxyHttp for Gateway`: the request pipeline. The order of the checks lives in
//! [`Gateway::request_filter`], one step per comment saying why it sits where it does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};
use portcullis_config::{HeaderOps, RouteAction};
use portcullis_core::{Deny, Identity, RequestView};
use portcullis_ratelimit::{Admission, InFlightGuard, Observation};
use portcullis_waf::{DlpOutcome, Findings};

use crate::access_log::{redact_query, AccessRecord};
use crate::metrics::{method_label, status_label};
use crate::respond::{failure_text, send_deny, send_direct};
use crate::routing::{normalize_path, RouteQuery};
use crate::runtime::Runtime;
use crate::state::Shared;

/// What the gateway knows about the listener a request arrived on.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    /// Listener name.
    pub name: String,
    /// Whether it terminates TLS (sets X-Forwarded-Proto).
    pub tls: bool,
}

/// The proxy: one per listener, sharing process state.
#[derive(Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
    listener: ListenerInfo,
}

impl Gateway {
    /// A gateway for one listener.
    #[must_use]
    pub fn new(shared: Arc<Shared>, listener: ListenerInfo) -> Self {
        Self { shared, listener }
    }
}

/// Per-request state.
#[derive(Debug)]
pub struct RequestCtx {
    runtime: Arc<Runtime>,
    started: Instant,
    request_id: String,
    /// The TCP peer.
    peer_ip: Option<IpAddr>,
    /// The client: the peer, or the address a trusted proxy forwarded for.
    client_ip: Option<IpAddr>,
    host: Option<String>,
    route: Option<usize>,
    tried: Vec<SocketAddr>,
    backend: Option<SocketAddr>,
    deny_reason: Option<&'static str>,
    deny_detail: Option<String>,
    /// Who the client is, once the route's authentication accepted it.
    identity: Option<Identity>,
    /// Rate-limit headers for the response (`RateLimit`, `RateLimit-Policy`).
    admission: Admission,
    /// The in-flight slot of the route and pool, released in `logging`.
    slot: Option<InFlightGuard>,
    /// WAF findings of the head, added to the body's score.
    waf_head: Findings,
    /// What the WAF found, for the access log.
    waf_summary: Option<String>,
    /// Request body held back until the WAF has seen its inspected prefix.
    body_held: Vec<u8>,
    /// The WAF has decided on the body (or there is nothing to decide).
    body_decided: bool,
    /// A deny decided after proxying began (body inspection), answered by `fail_to_proxy`.
    pending_deny: Option<Deny>,
    /// `fail_to_proxy` answered `pending_deny`: an expected verdict, not a proxy error.
    answered_pending_deny: bool,
    /// Response body held back for DLP, and the response content type.
    dlp_held: Vec<u8>,
    dlp_decided: bool,
    response_type: Option<String>,
}

impl RequestCtx {
    fn route(&self) -> Option<&portcullis_config::Route> {
        self.route.and_then(|i| self.runtime.routes.routes().get(i))
    }

    fn route_name(&self) -> &str {
        self.route().map_or("none", |r| r.name.as_str())
    }

    fn upstream_name(&self) -> Option<&str> {
        match &self.route()?.action {
            RouteAction::Proxy { upstream } => Some(upstream.as_str()),
            RouteAction::Direct(_) => None,
        }
    }
}

/// Accepts an inbound request id only when it is short and plain, so it is safe to log and echo.
fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The request host, lowercased, without port: from the absolute-form URI or the Host header.
/// One allocation (the lowercase copy); runs on every request.
fn request_host(req: &RequestHeader) -> Option<String> {
    let raw = match req.uri.host() {
        Some(h) => h,
        None => req.headers.get(http::header::HOST)?.to_str().ok()?,
    };
    let host: std::borrow::Cow<'_, str> = if raw.starts_with('[') {
        match raw.find(']').and_then(|end| raw.get(..=end)) {
            Some(h) => h.into(),
            // An unclosed bracket: closed, as the route table would write it.
            None => format!("{raw}]").into(),
        }
    } else {
        raw.split(':').next().unwrap_or("").into()
    };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

impl Gateway {
    /// Records WAF findings that did not block (detect mode, or below the threshold).
    /// Returns the access-log summary.
    fn note_waf(&self, route: &str, findings: &Findings, action: &str) -> String {
        self.shared
            .metrics
            .waf_findings
            .with_label_values(&[route, action])
            .inc();
        format!("score={} rules={}", findings.score, findings.summary())
    }

    async fn deny(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        deny: Deny,
    ) -> pingora::Result<bool> {
        tracing::info!(request_id = %ctx.request_id, route = ctx.route_name(), reason = deny.reason, status = deny.status, "request denied");
        self.shared
            .metrics
            .denied
            .with_label_values(&[ctx.route_name(), deny.reason])
            .inc();
        ctx.deny_reason = Some(deny.reason);
        ctx.deny_detail = deny.log_detail.clone();
        send_deny(session, &deny, &ctx.request_id).await?;
        Ok(true)
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    /// No downstream modules. Pingora's default adds a response-compression module at level 0
    /// (off): it compresses nothing, yet costs every request a boxed context and two boxed
    /// async header filters. Portcullis never compresses responses (nor does this change what
    /// reaches the client: a module at level 0 passes headers and body through untouched).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            runtime: self.shared.runtime(),
            started: Instant::now(),
            request_id: String::new(),
            peer_ip: None,
            client_ip: None,
            host: None,
            route: None,
            tried: Vec::new(),
            backend: None,
            deny_reason: None,
            deny_detail: None,
            identity: None,
            admission: Admission::default(),
            slot: None,
            waf_head: Findings::default(),
            waf_summary: None,
            body_held: Vec::new(),
            body_decided: false,
            pending_deny: None,
            answered_pending_deny: false,
            dlp_held: Vec::new(),
            dlp_decided: false,
            response_type: None,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        self.shared.metrics.in_flight.inc();
        // Pingora keeps an HTTP/1.1 connection open between requests for as long as the client
        // asks (forever by default); ours is bounded. Connections that are to close stay closed.
        let server = &ctx.runtime.config.server;
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(whole_seconds(server.keepalive_timeout)));
        }
        session.set_read_timeout(Some(server.client_body_timeout));
        let inbound = session
            .req_header()
            .headers
            .get("x-request-id")
            .map(http::HeaderValue::as_bytes);
        ctx.request_id = match inbound {
            Some(v) if valid_request_id(v) => String::from_utf8_lossy(v).into_owned(),
            _ => uuid::Uuid::new_v4().simple().to_string(),
        };
        ctx.peer_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(SocketAddr::ip);
        let trusted = &ctx.runtime.config.server.trusted_proxies;
        ctx.client_ip = match ctx.peer_ip {
            Some(peer) if trusted.iter().any(|n| n.contains(&peer)) => Some(
                crate::headers::client_behind_proxies(&session.req_header().headers, trusted)
                    .unwrap_or(peer),
            ),
            other => other,
        };
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        // -1. Framing nobody may interpret two ways (CL+TE, duplicate lengths, odd codings, no
        // Host): refused and the connection closed, before anything reads the body.
        if let Some(deny) = crate::framing::check(session.req_header()) {
            session.set_keepalive(None);
            return self.deny(session, ctx, deny).await;
        }
        let req = session.req_header();
        ctx.host = request_host(req);
        // 1. Route match: everything after depends on the route's policy; unknown -> 404.
        let path = normalize_path(req.uri.path());
        let query = RouteQuery {
            host: ctx.host.as_deref(),
            path: &path,
            method: req.method.as_str(),
            headers: &req.headers,
        };
        ctx.route = ctx.runtime.routes.lookup(&query);
        // The runtime is kept alive by this Arc for the whole request; borrowing the route from
        // it (not from ctx) leaves ctx free for the deny path.
        let rt = Arc::clone(&ctx.runtime);
        let client_ip = ctx.client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // 0. An active ban refuses a client before anything else, matched route or not: a banned
        // scanner must not even learn which paths exist.
        if let Some(abuse) = &rt.protection.abuse {
            if let Err(deny) = abuse.check_ban(client_ip) {
                return self.deny(session, ctx, deny).await;
            }
        }
        let Some(index) = ctx.route else {
            let (code, message) = failure_text(404);
            return self.deny(session, ctx, Deny::new(404, code, message)).await;
        };
        let route = &rt.routes.routes()[index];
        if let RouteAction::Direct(direct) = &route.action {
            send_direct(
                session,
                direct.status,
                &direct.headers,
                &direct.body,
                &ctx.request_id,
            )
            .await?;
            return Ok(true);
        }
        let filters = &rt.filters[index];
        let req = session.req_header();
        let view = RequestView {
            method: req.method.as_str(),
            path: req.uri.path(),
            query: req.uri.query(),
            host: ctx.host.as_deref(),
            headers: &req.headers,
            client_ip,
            route: &route.name,
        };
        // 2. IP allow/deny lists: a set lookup, cheaper than anything after it.
        if let Err(deny) = rt.protection.lists.check(&view) {
            return self.deny(session, ctx, deny).await;
        }
        // 3. Per-client rate limits before any crypto or body inspection, so a flood costs one
        // table lookup per request.
        if let Some(limiter) = &filters.limiter {
            match limiter.check(&view).await {
                Ok(a) => ctx.admission = a,
                Err(deny) => return self.deny(session, ctx, deny).await,
            }
        }
        // 4. WAF on the head: pure CPU, microseconds; before authentication so an injection in a
        // token or key header never reaches the verifier, and its findings seed the body's score.
        if let Some(waf) = &filters.waf {
            match waf.check_head(&view) {
                Ok(findings) => {
                    if !findings.hits.is_empty() {
                        ctx.waf_summary = Some(self.note_waf(&route.name, &findings, "detected"));
                    }
                    ctx.waf_head = findings;
                }
                Err(deny) => {
                    self.shared
                        .metrics
                        .waf_findings
                        .with_label_values(&[&route.name, "blocked"])
                        .inc();
                    return self.deny(session, ctx, deny).await;
                }
            }
        }
        // 5-6. Authentication, then authorization: after the cheap checks (they never spend
        // crypto on a client that is already refused), before per-consumer limits (which key on
        // the identity). A route without `auth` is anonymous.
        if let Some(auth) = &filters.auth {
            match auth
                .check(&view, crate::tls::client_identity(session).as_ref())
                .await
            {
                Ok(identity) => ctx.identity = identity,
                Err(deny) => return self.deny(session, ctx, deny).await,
            }
        }
        // 7. Per-consumer limits and plan quotas: they need the identity.
        if let Some(limiter) = &filters.limiter {
            match limiter.check_identity(&view, ctx.identity.as_ref()).await {
                Ok(a) => ctx.admission = std::mem::take(&mut ctx.admission).merge(a),
                Err(deny) => return self.deny(session, ctx, deny).await,
            }
        }
        // 8. In-flight limits last: a slot is only taken by a request that will be proxied.
        match rt.protection.gates.enter(&route.name, ctx.upstream_name()) {
            Ok(slot) => ctx.slot = Some(slot),
            Err(deny) => return self.deny(session, ctx, deny).await,
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if ctx.body_decided {
            return Ok(());
        }
        let rt = Arc::clone(&ctx.runtime);
        let Some(index) = ctx.route else {
            return Ok(());
        };
        let Some(waf) = rt.filters.get(index).and_then(|f| f.waf.as_ref()) else {
            ctx.body_decided = true;
            return Ok(());
        };
        let limit = waf.body_inspect_limit();
        if limit == 0 || (ctx.body_held.is_empty() && body.is_none() && end_of_stream) {
            ctx.body_decided = true;
            return Ok(());
        }
        // Hold chunks back (nothing reaches the backend) until the inspected prefix is complete;
        // memory is bounded by the route's inspect cap.
        let mut rest = Bytes::new();
        if let Some(chunk) = body.take() {
            let room = limit.saturating_sub(ctx.body_held.len());
            if chunk.len() > room {
                ctx.body_held.extend_from_slice(&chunk[..room]);
                rest = chunk.slice(room..);
            } else {
                ctx.body_held.extend_from_slice(&chunk);
            }
        }
        let truncated = !rest.is_empty() || (ctx.body_held.len() >= limit && !end_of_stream);
        if !truncated && !end_of_stream {
            // An empty chunk, not None: to Pingora, None means the body ended.
            *body = Some(Bytes::new());
            return Ok(());
        }
        ctx.body_decided = true;
        let route = &rt.routes.routes()[index];
        let req = session.req_header();
        let view = RequestView {
            method: req.method.as_str(),
            path: req.uri.path(),
            query: req.uri.query(),
            host: ctx.host.as_deref(),
            headers: &req.headers,
            client_ip: ctx.client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            route: &route.name,
        };
        let head = std::mem::take(&mut ctx.waf_head);
        match waf.check_body(&view, &head, &ctx.body_held, truncated) {
            Ok(findings) => {
                if !findings.hits.is_empty() {
                    ctx.waf_summary = Some(self.note_waf(&route.name, &findings, "detected"));
                }
                let mut out = std::mem::take(&mut ctx.body_held);
                out.extend_from_slice(&rest);
                *body = Some(Bytes::from(out));
                Ok(())
            }
            Err(deny) => {
                self.shared
                    .metrics
                    .waf_findings
                    .with_label_values(&[&route.name, "blocked"])
                    .inc();
                let status = deny.status;
                ctx.pending_deny = Some(deny);
                // The backend got the head but never a complete body: the request is aborted.
                Err(Error::explain(
                    ErrorType::HTTPStatus(status),
                    "request body refused by the WAF",
                ))
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let pool = ctx
            .upstream_name()
            .and_then(|name| ctx.runtime.pools.get(name))
            .cloned()
            .ok_or_else(|| {
                Error::explain(ErrorType::HTTPStatus(503), "route has no upstream pool")
            })?;
        let Some(addr) = pool.select(&ctx.tried, Instant::now()) else {
            ctx.deny_reason = Some("no_healthy_backend");
            return Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "no healthy backend",
            ));
        };
        if !ctx.tried.is_empty() {
            self.shared
                .metrics
                .retries
                .with_label_values(&[pool.name()])
                .inc();
        }
        ctx.tried.push(addr);
        ctx.backend = Some(addr);
        Ok(pool.peer(addr))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let Some(pool) = ctx
            .upstream_name()
            .and_then(|n| ctx.runtime.pools.get(n))
            .cloned()
        else {
            return e;
        };
        if let Some(addr) = peer._address.as_inet() {
            let label = addr.to_string();
            self.shared
                .metrics
                .connect_failures
                .with_label_values(&[pool.name(), &label])
                .inc();
            pool.record_connect_failure(*addr, Instant::now());
        }
        // Nothing reached the backend, so another backend may be tried whatever the method (as
        // nginx does for connect errors). Retry only when an untried healthy backend exists:
        // otherwise the client gets this connect failure (502), not a misleading 503.
        let attempts = u32::try_from(ctx.tried.len()).unwrap_or(u32::MAX);
        let another = pool.select(&ctx.tried, Instant::now()).is_some();
        e.set_retry(attempts <= pool.retries() && another);
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        crate::headers::strip_hop_by_hop(upstream);
        // An absolute-form target names the host and the Host header is ignored (RFC 9112
        // 3.2.2); the route was chosen by that host. The backend gets origin-form and that host
        // as Host, so it cannot pick another virtual host than the one the policy was for.
        crate::headers::to_origin_form(upstream)?;
        // X-Forwarded-For gets the hop this gateway saw: the TCP peer.
        let host = upstream.headers.get(http::header::HOST).cloned();
        crate::headers::set_forwarding(
            upstream,
            ctx.peer_ip,
            if self.listener.tls { "https" } else { "http" },
            host.as_ref(),
        )?;
        upstream.insert_header("x-request-id", ctx.request_id.as_str())?;
        // Identity headers are the gateway's word: inbound copies never pass, on any route.
        let auth = ctx
            .route
            .and_then(|i| ctx.runtime.filters.get(i))
            .and_then(|f| f.auth.as_ref());
        match auth {
            Some(auth) => {
                for name in auth.strip_headers() {
                    upstream.remove_header(name);
                }
                if let Some(identity) = &ctx.identity {
                    for (name, value) in auth.upstream_headers(identity) {
                        upstream.insert_header(name, value)?;
                    }
                }
            }
            None => {
                for name in portcullis_auth::default_identity_headers() {
                    upstream.remove_header(&name);
                }
            }
        }
        // Response DLP reads the body: ask the backend for an uncompressed one.
        let dlp = ctx
            .route
            .and_then(|i| ctx.runtime.filters.get(i))
            .and_then(|f| f.waf.as_ref());
        if dlp.is_some_and(|w| w.response_inspect_limit() > 0) {
            upstream.remove_header(&http::header::ACCEPT_ENCODING);
        }
        if let Some(route) = ctx.route() {
            apply_request_ops(upstream, &route.request_headers)?;
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let (Some(addr), Some(pool)) = (
            ctx.backend,
            ctx.upstream_name().and_then(|n| ctx.runtime.pools.get(n)),
        ) {
            pool.record_success(addr);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // Draining: tell keep-alive clients to open their next request on a new connection
        // (which reaches the successor), instead of racing the close of an idle one.
        if self.shared.is_draining() {
            session.set_keepalive(None);
        }
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        for (name, value) in &ctx.admission.headers {
            resp.insert_header(*name, value.as_str())?;
        }
        let dlp = ctx
            .route
            .and_then(|i| ctx.runtime.filters.get(i))
            .and_then(|f| f.waf.as_ref())
            .is_some_and(|w| w.response_inspect_limit() > 0);
        if !dlp {
            // Nothing will read the body: no content type to keep.
            ctx.dlp_decided = true;
        } else if resp
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| v != "identity")
        {
            // A compressed body the backend sent anyway cannot be inspected; say so in the log.
            ctx.dlp_decided = true;
        } else {
            ctx.response_type = resp
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
        if let Some(route) = ctx.route() {
            apply_response_ops(resp, &route.response_headers)?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        if ctx.dlp_decided {
            return Ok(None);
        }
        let rt = Arc::clone(&ctx.runtime);
        let Some(index) = ctx.route else {
            return Ok(None);
        };
        let Some(waf) = rt.filters.get(index).and_then(|f| f.waf.as_ref()) else {
            ctx.dlp_decided = true;
            return Ok(None);
        };
        let limit = waf.response_inspect_limit();
        if limit == 0 {
            ctx.dlp_decided = true;
            return Ok(None);
        }
        let mut rest = Bytes::new();
        if let Some(chunk) = body.take() {
            let room = limit.saturating_sub(ctx.dlp_held.len());
            if chunk.len() > room {
                ctx.dlp_held.extend_from_slice(&chunk[..room]);
                rest = chunk.slice(room..);
            } else {
                ctx.dlp_held.extend_from_slice(&chunk);
            }
        }
        if rest.is_empty() && ctx.dlp_held.len() < limit && !end_of_stream {
            return Ok(None);
        }
        ctx.dlp_decided = true;
        let held = std::mem::take(&mut ctx.dlp_held);
        let route = rt.routes.routes()[index].name.as_str();
        let mut out = match waf.inspect_response(ctx.response_type.as_deref(), &held) {
            DlpOutcome::Pass => held,
            DlpOutcome::Masked(masked) => {
                self.shared
                    .metrics
                    .dlp
                    .with_label_values(&[route, "masked"])
                    .inc();
                masked
            }
            DlpOutcome::Block(deny) => {
                // The status line is already on its way: cut the response instead of leaking it.
                self.shared
                    .metrics
                    .dlp
                    .with_label_values(&[route, "blocked"])
                    .inc();
                ctx.deny_reason = Some(deny.reason);
                return Err(Error::explain(
                    ErrorType::HTTPStatus(deny.status),
                    "response blocked by DLP",
                ));
            }
        };
        out.extend_from_slice(&rest);
        *body = Some(Bytes::from(out));
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(deny) = ctx.pending_deny.take() {
            ctx.answered_pending_deny = true;
            let status = deny.status;
            // The rest of the body is unread: the connection cannot carry another request.
            session.set_keepalive(None);
            if session.response_written().is_none() {
                if let Err(write_err) = self.deny(session, ctx, deny).await {
                    tracing::debug!(error = %write_err, "could not send error response");
                }
            }
            return FailToProxy {
                error_code: status,
                can_reuse_downstream: false,
            };
        }
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    ErrorType::ReadTimedout => 408,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let (reason, message) = failure_text(code);
            if ctx.deny_reason.is_none() {
                ctx.deny_reason = Some(reason);
            }
            let deny = Deny::new(code, reason, message);
            if let Err(write_err) = send_deny(session, &deny, &ctx.request_id).await {
                tracing::debug!(error = %write_err, "could not send error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Pingora logs every failed request at ERROR. A body the WAF refused is a verdict (access
    /// log, `portcullis_denied_total`), and a client that went away or sent garbage is the
    /// client's problem: both at debug. Backend and internal failures stay at ERROR.
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, e: &Error) -> bool {
        let quiet = ctx.answered_pending_deny || e.esource() == &ErrorSource::Downstream;
        if quiet {
            tracing::debug!(error = %e, request_id = %ctx.request_id, "request ended early");
        }
        quiet
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let m = &self.shared.metrics;
        m.in_flight.dec();
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        let route = ctx.route_name();
        let elapsed = ctx.started.elapsed();
        let seconds = elapsed.as_secs_f64();
        match ctx.runtime.route_metrics.get(m, ctx.route, route) {
            Some(handles) => handles.observe(m, req.method.as_str(), status, seconds),
            None => {
                m.requests
                    .with_label_values(&[
                        route,
                        method_label(req.method.as_str()),
                        &status_label(status),
                    ])
                    .inc();
                m.latency.with_label_values(&[route]).observe(seconds);
            }
        }
        if let Some(slot) = ctx.slot.take() {
            if let Some(upstream) = ctx.upstream_name() {
                let failed = status == 0 || status >= 500;
                ctx.runtime
                    .protection
                    .gates
                    .record(upstream, elapsed, failed);
            }
            drop(slot);
        }
        if let (Some(abuse), Some(client_ip)) = (&ctx.runtime.protection.abuse, ctx.client_ip) {
            let reason = ctx.deny_reason.unwrap_or("");
            abuse.observe(&Observation {
                client_ip,
                status,
                path: req.uri.path(),
                // The client's fault only: an unreachable identity provider is not a failure.
                auth_failed: (reason.starts_with("auth_") && reason != "auth_unavailable")
                    || reason == "insufficient_scope",
                // Blocked or only detected: both are an attack attempt.
                waf_hit: reason.starts_with("waf") || ctx.waf_summary.is_some(),
            });
        }
        let cfg = &ctx.runtime.config.access_log;
        if !cfg.enabled {
            return;
        }
        let path = redact_query(req.uri.path(), req.uri.query(), &cfg.redact_query_params);
        let record = AccessRecord {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            request_id: &ctx.request_id,
            client: ctx.client_ip,
            method: req.method.as_str(),
            host: ctx.host.as_deref(),
            path: &path,
            status,
            route: ctx.route().map(|r| r.name.as_str()),
            upstream: ctx.upstream_name(),
            backend: ctx.backend,
            bytes_in: session.body_bytes_read(),
            bytes_out: session.body_bytes_sent(),
            latency_ms: elapsed.as_secs_f64() * 1000.0,
            deny_reason: ctx.deny_reason,
            deny_detail: ctx.deny_detail.as_deref(),
            waf: ctx.waf_summary.as_deref(),
            subject: ctx.identity.as_ref().and_then(|i| i.subject.as_deref()),
            consumer: ctx.identity.as_ref().and_then(|i| i.consumer.as_deref()),
            attempts: ctx.tried.len(),
            user_agent: req
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
            error: e.map(|e| e.etype().as_str()),
        };
        self.shared.access_log.write(&record);
    }
}

fn apply_request_ops(req: &mut RequestHeader, ops: &HeaderOps) -> pingora::Result<()> {
    for name in &ops.remove {
        req.remove_header(name.as_str());
    }
    for (name, value) in &ops.set {
        req.insert_header(name.clone(), value.as_str())?;
    }
    for (name, value) in &ops.add {
        req.append_header(name.clone(), value.as_str())?;
    }
    Ok(())
}

fn apply_response_ops(resp: &mut ResponseHeader, ops: &HeaderOps) -> pingora::Result<()> {
    for name in &ops.remove {
        resp.remove_header(name.as_str());
    }
    for (name, value) in &ops.set {
        resp.insert_header(name.clone(), value.as_str())?;
    }
    for (name, value) in &ops.add {
        resp.append_header(name.clone(), value.as_str())?;
    }
    Ok(())
}

/// Pingora counts keep-alive in whole seconds; a sub-second setting still means "some".
fn whole_seconds(d: std::time::Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_plain_request_ids() {
        assert!(valid_request_id(b"abc-123_x.y:z"));
        assert!(!valid_request_id(b""));
        assert!(!valid_request_id(b"a b"));
        assert!(!valid_request_id(b"a\r\nX-Injected: 1"));
        assert!(!valid_request_id(&[b'a'; 129]));
    }

    #[test]
    fn host_is_lowercased_without_port() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("host", "API.Example.com:8443").unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("api.example.com"));
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("host", "[::1]:80").unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("[::1]"));
    }

    #[test]
    fn host_edge_cases_keep_their_meaning() {
        let with_host = |h: &str| {
            let mut req = RequestHeader::build("GET", b"/", None).unwrap();
            req.insert_header("host", h).unwrap();
            request_host(&req)
        };
        assert_eq!(with_host("Example.COM.").as_deref(), Some("example.com"));
        assert_eq!(with_host("[::1").as_deref(), Some("[::1]"));
        assert_eq!(with_host("[2001:DB8::1]").as_deref(), Some("[2001:db8::1]"));
        assert_eq!(with_host(":80"), None);
        assert_eq!(with_host("."), None);
        let req = RequestHeader::build("GET", b"/", None).unwrap();
        assert_eq!(request_host(&req), None);
    }
}
